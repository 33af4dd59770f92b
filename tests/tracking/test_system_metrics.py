"""Every run samples CPU, memory and disk into its System metrics; one option turns it off."""

import time

import keras
import pytest

import workbench
from conftest import client, run_cli

pytestmark = pytest.mark.slow


class SlowEpochs(keras.callbacks.Callback):
    """Long enough epochs that the 2-second sampler takes several samples, on any machine."""

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(1.5)


def test_a_run_logs_system_metrics_every_few_seconds(home):
    result = workbench.train(task="images", dataset="digits", model="mlp", epochs=3, verbose=0,
                             callbacks=[SlowEpochs()])
    c = client(home)
    names = set(c.get_run(result.run_id).data.metrics)
    for name in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
                 "system/disk_usage_percentage"):
        assert name in names, names
    samples = c.get_metric_history(result.run_id, "system/cpu_utilization_percentage")
    assert len(samples) >= 2 and all(0 <= s.value <= 100 * 64 for s in samples)
    memory = c.get_metric_history(result.run_id, "system/system_memory_usage_megabytes")
    assert all(m.value > 0 for m in memory)


def test_system_metrics_off_with_one_option(home):
    result = run_cli("train", "--in-process", "--dataset", "digits", "--model", "mlp", "--epochs", "1",
                     "--system-metrics", "false")
    assert result.returncode == 0, result.stderr[-2000:]
    c = client(home)
    [run] = c.search_runs([c.get_experiment_by_name("workbench-images").experiment_id])
    assert run.data.params["system_metrics"] == "False"
    assert not [k for k in run.data.metrics if k.startswith("system/")]
