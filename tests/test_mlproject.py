"""`mlflow run` drives the same CLI through the MLproject entry point."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, all_runs

pytestmark = pytest.mark.slow


def test_mlflow_run_trains_through_the_train_entry_point(home, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db"}
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    result = subprocess.run(
        [str(mlflow_cli), "run", str(ROOT), "-e", "train", "-P", "task=images", "-P", "dataset=digits",
         "-P", "epochs=1", "--env-manager", "local"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = all_runs(home)
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "1" and run.data.params["dataset"] == "digits"
    assert "test_accuracy" in run.data.metrics
    assert any(tag.startswith("mlflow.project") for tag in run.data.tags)
