"""Test accuracy and wall-clock minutes of the image models, trained as a user would.

    .venv/bin/python bench/quality.py            # all cases
    .venv/bin/python bench/quality.py digits-cnn # one case

Each case runs `workbench train --in-process` in a fresh process with its own workbench home
and reads the test accuracy back from MLflow. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

CASES = {  # name: (flags, goal)
    "fashion-cnn": (["--dataset", "fashion-mnist", "--model", "cnn", "--epochs", "5"], 0.92),
    "fashion-resnet": (["--dataset", "fashion-mnist", "--model", "resnet", "--epochs", "5"], 0.93),
    "digits-cnn": (["--dataset", "digits", "--model", "cnn", "--epochs", "10"], 0.98),
}


def run_case(flags: list[str]) -> tuple[dict[str, float], float]:
    home = Path(tempfile.mkdtemp(prefix="wb-quality-"))
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workbench", "train", "--in-process", "--task", "images", *flags],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    minutes = (time.perf_counter() - started) / 60
    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    experiment = client.get_experiment_by_name("workbench-images")
    (run,) = client.search_runs([experiment.experiment_id])
    return run.data.metrics, minutes


def main(names: list[str]) -> None:
    print("| case | command flags | test accuracy | goal | baseline (logistic regression) | minutes |")
    print("|---|---|---|---|---|---|")
    for name in names or CASES:
        flags, goal = CASES[name]
        metrics, minutes = run_case(flags)
        print(f"| {name} | `{' '.join(flags)}` | {metrics['test_accuracy']:.4f} | ≥ {goal} | "
              f"{metrics['baseline_test_accuracy']:.4f} | {minutes:.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
