"""One `workbench train --in-process` in a home of its own, as the benches run their cases."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train_in_fresh_home(flags: list[str], prefix: str, home: Path | None = None):
    """(home, MLflow client, the run, minutes); exits with the log's tail when training fails."""
    from mlflow.tracking import MlflowClient

    home = home or Path(tempfile.mkdtemp(prefix=prefix))
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    log = home / "train.log"
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "workbench", "train", "--in-process", *flags],
                              env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"{' '.join(flags)} failed (exit {done.returncode}):\n{log.read_text()[-3000:]}")
    minutes = (time.perf_counter() - started) / 60
    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return home, client, run, minutes
