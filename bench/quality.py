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
    "fashion-cnn": (["--task", "images", "--dataset", "fashion-mnist", "--model", "cnn", "--epochs", "5"], 0.92),
    "fashion-resnet": (["--task", "images", "--dataset", "fashion-mnist", "--model", "resnet", "--epochs", "5"],
                       0.93),
    "fashion-resnet-augmented": (["--task", "images", "--dataset", "fashion-mnist", "--model", "resnet",
                                  "--epochs", "10", "--augment", "true"], 0.93),
    "fashion-resnet-regularized": (["--task", "images", "--dataset", "fashion-mnist", "--model", "resnet",
                                    "--epochs", "10", "--dropout", "0.3", "--l2", "0.0005"], 0.93),
    "digits-cnn": (["--task", "images", "--dataset", "digits", "--model", "cnn", "--epochs", "10"], 0.98),
    "speech-ds-cnn": (["--task", "speech", "--model", "ds-cnn", "--epochs", "30"], 0.90),
    "fortunes-bow": (["--task", "text", "--model", "bow", "--epochs", "10", "--dropout", "0.5"], None),
    "fortunes-cnn1d": (["--task", "text", "--model", "cnn1d", "--epochs", "10", "--dropout", "0.5"], None),
    "fortunes-lstm": (["--task", "text", "--model", "lstm", "--epochs", "10", "--dropout", "0.5"], None),
    "fortunes-transformer": (["--task", "text", "--model", "transformer", "--epochs", "10", "--dropout", "0.3"],
                             None),
}


def run_case(flags: list[str]) -> tuple[dict[str, float], float]:
    home = Path(tempfile.mkdtemp(prefix="wb-quality-"))
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workbench", "train", "--in-process", *flags],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    minutes = (time.perf_counter() - started) / 60
    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run.data.metrics, minutes


def main(names: list[str]) -> None:
    print("| case | command flags | test accuracy | test macro-F1 | goal | classical baseline accuracy | minutes |")
    print("|---|---|---|---|---|---|---|")
    for name in names or CASES:
        flags, goal = CASES[name]
        metrics, minutes = run_case(flags)
        goal_text = f"≥ {goal}" if goal else "beat the baseline"
        print(f"| {name} | `{' '.join(flags)}` | {metrics['test_accuracy']:.4f} | {metrics['test_macro_f1']:.4f} | "
              f"{goal_text} | {metrics['baseline_test_accuracy']:.4f} | {minutes:.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
