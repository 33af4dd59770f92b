"""The plugin task through the workbench's own doors: registry, config, training, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import workbench
from workbench.tasks import get_task, task_names

REPOSITORY = Path(__file__).resolve().parents[3]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "home"


def workbench_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          timeout=900, cwd=REPOSITORY, env={**os.environ, **(env or {})})


def test_the_entry_points_register_the_task_and_its_datasets():
    assert "tabular" in task_names()
    task = get_task("tabular")
    assert task.dataset_names() == ["breast-cancer", "wine"]  # its own, then the one added by entry point
    config = workbench.make_config(task="tabular", dataset="wine", hidden_units="16")
    assert config.hidden_units == 16 and config.to_dict()["hidden_units"] == 16
    with pytest.raises(workbench.ConfigError, match="hidden_units"):
        workbench.make_config(task="tabular", hidden_units=0)


def test_the_plugin_dataset_is_split_without_leaks():
    data = workbench.load_data(task="tabular", dataset="wine")
    assert data.class_names == ["class_0", "class_1", "class_2"] and data.input_shape == (13,)
    assert sum(data.sizes().values()) == 178
    assert abs(float(data.x_train.mean())) < 1e-4  # standardized on the training split only
    assert abs(float(data.x_test.mean())) > 1e-4


def test_training_beside_the_baseline(home):
    result = workbench.train(task="tabular", dataset="wine", epochs=2, hidden_units=8, verbose=0)
    assert 0 <= result.metrics["test_accuracy"] <= 1 and "baseline_test_accuracy" in result.metrics
    assert [layer.units for layer in result.model.layers if hasattr(layer, "units")] == [8, 8, 3]
    run = MlflowClient(f"sqlite:///{home}/mlflow.db").get_run(result.run_id)
    assert run.data.params["hidden_units"] == "8" and run.info.status == "FINISHED"


def test_the_command_trains_it_through_the_notebook(home):
    result = workbench_cli("train", "--task", "tabular", "--epochs", "2", "--hidden-units", "16")
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("workbench-tabular").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["hidden_units"] == "16"
    assert any(a.path == "notebook" for a in client.list_artifacts(run.info.run_id))


def test_two_packages_claiming_one_task_name_are_one_clear_error(home, tmp_path):
    # A second installed distribution whose entry point claims the name `tabular` too.
    dist = tmp_path / "site" / "impostor-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: impostor\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[workbench.tasks]\ntabular = impostor:Task\n")
    result = workbench_cli("train", "--task", "tabular", "--epochs", "1",
                           env={"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "'tabular' is claimed by both" in result.stderr and "impostor:Task" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (home / "mlflow.db").exists() or not MlflowClient(f"sqlite:///{home}/mlflow.db").search_runs(
        [e.experiment_id for e in MlflowClient(f"sqlite:///{home}/mlflow.db").search_experiments()])


def test_a_pipeline_step_trains_the_plugin_task_with_its_own_option(home, tmp_path):
    pipeline = tmp_path / "tabular.yaml"
    pipeline.write_text("name: tabular\nsteps:\n  train:\n    notebook: train.ipynb\n"
                        "    parameters: {task: tabular, dataset: wine, epochs: 2, hidden_units: 12}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(pipeline.read_text().replace("hidden_units: 12", "hidden_units: 0"))
    refused = workbench_cli("pipeline", "validate", str(bad))
    assert refused.returncode == 2 and "hidden_units" in refused.stderr  # checked before anything runs

    result = workbench_cli("pipeline", "run", str(pipeline))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("workbench-tabular").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["hidden_units"] == "12"
    assert "test_accuracy" in run.data.metrics and "baseline_test_accuracy" in run.data.metrics
