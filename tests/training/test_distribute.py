"""tf.distribute on CPU through the real code paths: mirrored over logical CPUs, multi-worker
over two local processes, `auto` (strategy, and precision measured on a CPU), impossible requests, and
GPU and CPU slots."""

import json
import os

import keras
import pytest

from conftest import ROOT, _free_port, all_runs, run_cli
from workbench.tasks.configure import make_config
from workbench.distribute import choose_precision, cpu_slots, gpu_slots
from workbench.precision import choose_cpu_precision, native_bfloat16

pytestmark = pytest.mark.slow
QUICK = ["--dataset", "digits", "--model", "mlp", "--epochs", "2"]


def test_mirrored_over_two_logical_cpus_logs_one_run_with_two_replicas(home):
    result = run_cli("train", "--in-process", "--strategy", "mirrored", *QUICK, env={"WORKBENCH_LOGICAL_CPUS": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = all_runs(home)
    assert run.info.status == "FINISHED"
    assert run.data.tags["strategy"] == "mirrored" and run.data.tags["replicas"] == "2"
    assert run.data.tags["devices"].count("CPU") >= 2
    assert run.data.metrics["global_batch_size"] == 128  # 64 per replica


@pytest.mark.slow
def test_two_local_workers_train_the_same_steps_and_only_the_chief_logs(home):
    import re
    import subprocess
    import sys

    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    command = [sys.executable, "-m", "workbench", "train", "--in-process", "--strategy", "multiworker",
               *QUICK]

    def worker(index: int) -> subprocess.Popen:
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "TF_CONFIG": tf_config},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    workers = [worker(0), worker(1)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    steps = [re.findall(r"^(\d+)/(\d+) - ", out, re.M) for out in outputs]
    assert steps[0] and steps[0] == steps[1], steps  # same steps per epoch, both epochs, on both workers
    assert "not the chief" in outputs[1]
    (run,) = all_runs(home)  # one run, from the chief
    assert run.info.status == "FINISHED" and run.data.tags["strategy"] == "multiworker"
    assert run.data.metrics["replicas"] == 2 and run.data.metrics["test_accuracy"] > 0.3


def test_only_the_chief_of_a_cluster_logs(monkeypatch):
    from workbench.distribute import is_chief

    cluster = {"worker": ["a:1", "b:1"]}
    for index, chief in ((0, True), (1, False)):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        assert is_chief() is chief
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {**cluster, "chief": ["c:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not is_chief()
    monkeypatch.delenv("TF_CONFIG")
    assert is_chief()


def test_auto_picks_the_default_strategy_here_and_says_why(home):
    import workbench

    result = workbench.train("images", dataset="digits", model="mlp", epochs=1, verbose=0)
    (run,) = all_runs(home)
    assert run.info.run_id == result.run_id
    assert run.data.tags["strategy"] == "default" and run.data.params["strategy"] == "auto"
    assert "no TPU and no GPU" in run.data.tags["strategy_reason"]
    assert run.data.tags["precision_policy"] == "float32"
    # a one-epoch run is too short to measure bfloat16 for, on any CPU
    expected = "too few to pay for measuring bfloat16" if native_bfloat16() else "no native bfloat16"
    assert expected in run.data.tags["precision_reason"]


def test_auto_precision_on_a_cpu_measures_bfloat16_once_and_keeps_the_answer(home):
    from workbench.tasks import get_task

    if not native_bfloat16():
        pytest.skip("this CPU has no native bfloat16: auto is float32 without measuring")
    config = make_config(task="images", dataset="digits", model="cnn", batch_size=32)
    task = get_task("images")
    data = task.data_for(config)
    precision, reason = choose_cpu_precision(config, task, data, training_steps=10**6)
    assert precision in ("float32", "mixed_bfloat16")
    assert "a probe of this model measured bfloat16 at" in reason
    cache = home / "precision.json"
    ((key, measured),) = json.loads(cache.read_text()).items()
    assert " at 0x" not in key, "the key must read the same in the next process: no object addresses"
    assert measured["float32"] > 0 and measured["mixed_bfloat16"] > 0
    written = cache.stat().st_mtime_ns
    assert choose_cpu_precision(config, task, data, training_steps=10**6) == (precision, reason)
    assert cache.stat().st_mtime_ns == written, "the second run reads the answer instead of measuring again"
    # another model: measured anew, and the dtype policy and layer names are left as they were
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.layers.Dense(1)  # so that the next name has a number: dense_N
        before = keras.layers.Dense(1).name
        choose_cpu_precision(config.replace(model="mlp"), task, data, training_steps=10**6)
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert int(keras.layers.Dense(1).name.rsplit("_", 1)[1]) == int(before.rsplit("_", 1)[1]) + 1
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert len(json.loads(cache.read_text())) == 2


@pytest.mark.parametrize("flags, message", [
    (["--strategy", "tpu"], "no TPU was found"),
    (["--precision", "mixed_float16"], "float16 math needs a GPU"),
    (["--strategy", "mirrored"], "needs 2 or more devices"),
    (["--strategy", "multiworker"], "set TF_CONFIG"),
])
def test_impossible_requests_are_clear_errors_before_any_run(home, flags, message):
    result = run_cli("train", "--in-process", *flags, *QUICK, env={"TF_CONFIG": ""})
    assert result.returncode == 2 and message in result.stderr, result.stderr[-1500:]
    assert all_runs(home) == []


def test_xla_and_steps_per_execution_are_used_and_logged(home):
    result = run_cli("train", "--in-process", "--jit-compile", "true", "--steps-per-execution", "4", *QUICK)
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = all_runs(home)
    assert run.data.params["jit_compile"] == "True" and run.data.params["steps_per_execution"] == "4"
    assert run.data.metrics["test_accuracy"] > 0.5


def test_precision_auto_follows_the_hardware():
    assert choose_precision("auto", "default", []) == "float32"
    assert choose_precision("auto", "tpu", []) == "mixed_bfloat16"
    assert choose_precision("mixed_bfloat16", "default", []) == "mixed_bfloat16"


def test_cpu_slots_split_the_cores_between_workers():
    assert cpu_slots([0, 1], 1) == [{0, 1}]
    assert cpu_slots([0, 1], 2) == [{0}, {1}]
    assert cpu_slots([0, 1], 4) == [{0}, {1}, {0}, {1}]  # more workers than cores: one core each, shared
    assert cpu_slots([2, 3, 4, 5, 6, 7], 4) == [{2}, {3, 4}, {5}, {6, 7}]  # every core used, none twice


def test_gpu_slots_give_each_process_its_own_gpus():
    assert gpu_slots(["0", "1", "2", "3"], 4) == ["0", "1", "2", "3"]
    assert gpu_slots(["0", "1"], 4) == ["0", "1", "0", "1"]  # more workers than GPUs: share round robin
    assert gpu_slots(["0", "1", "2", "3"], 2, per_worker=2) == ["0,1", "2,3"]
    assert gpu_slots([], 3) == ["", "", ""]  # CPU only
    assert make_config(task="images", jit_compile="yes").jit_compile is True
