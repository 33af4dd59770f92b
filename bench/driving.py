"""Driving quality: offline steering error against predicting zero, closed-loop laps against the expert.

    .venv/bin/python bench/driving.py                  # all cases
    .venv/bin/python bench/driving.py pilotnet         # one case

The CarRacing tracks are recorded once (by the expert, into DRIVING_BENCH_DATA, default
.workbench/data) and shared by every case; each case then runs `workbench train --in-process`
in a fresh process with its own workbench home and reads its metrics back from MLflow.
Goals: test RMSE <= 30% of the predict-zero baseline, and in closed loop (one full lap on each
held-out track) tile coverage >= 95% of the expert's on the same tracks.
Prints a Markdown table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DRIVING_BENCH_DATA", ROOT / ".workbench" / "data")).resolve()
TRACKS, SEED = 24, 42
CASES = {  # name: flags (24 tracks, one lap each; 5 held-out test tracks driven for a full lap)
    "pilotnet": ["--model", "pilotnet", "--epochs", "6"],
    "cnn": ["--model", "cnn", "--epochs", "6"],
    "cnn-lstm": ["--model", "cnn-lstm", "--epochs", "4", "--frame-stack", "3"],
    "unet": ["--model", "unet", "--epochs", "5"],
}


def record() -> float:
    """Minutes spent recording the tracks that are not cached yet."""
    started = time.perf_counter()
    code = ("from workbench.data import driving; "
            f"driving.record_tracks(driving.track_seeds({TRACKS}, {SEED}), 0)")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "WORKBENCH_HOME": str(DATA.parent)},
                   check=True, cwd=ROOT)
    return (time.perf_counter() - started) / 60


def run_case(flags: list[str]) -> tuple[dict[str, float], float]:
    home = Path(tempfile.mkdtemp(prefix="wb-driving-"))
    (home / "data").symlink_to(DATA, target_is_directory=True)
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workbench", "train", "--in-process", "--task", "driving",
                    "--tracks", str(TRACKS), "--seed", str(SEED), *flags],
                   env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    minutes = (time.perf_counter() - started) / 60
    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run.data.metrics, minutes


def main(names: list[str]) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"recording {TRACKS} tracks (cached in {DATA}): {record():.1f} min", flush=True)
    print("| case | flags | test RMSE | predict-zero RMSE | ratio (goal ≤ 0.30) | predict-mean RMSE | "
          "closed-loop coverage | expert coverage | coverage ratio (goal ≥ 0.95) | worst track ratio | "
          "laps finished in 1500 steps | minutes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names or CASES:
        flags = CASES[name]
        m, minutes = run_case(flags)
        if name == "unet":
            print(f"| {name} | `{' '.join(flags)}` | test mean IoU {m['test_mean_iou']:.4f}, road IoU "
                  f"{m['test_road_iou']:.4f} | average-mask mean IoU {m['baseline_prior_test_mean_iou']:.4f} | "
                  f"| | | | | | | {minutes:.1f} |", flush=True)
            continue
        print(f"| {name} | `{' '.join(flags)}` | {m['test_rmse']:.4f} | {m['baseline_zero_test_rmse']:.4f} | "
              f"{m['test_rmse_over_baseline_zero']:.3f} | {m['baseline_mean_test_rmse']:.4f} | "
              f"{m['closed_loop_coverage']:.3f} | {m['closed_loop_expert_coverage']:.3f} | "
              f"{m['closed_loop_coverage_ratio']:.3f} | {m['closed_loop_worst_coverage_ratio']:.3f} | "
              f"{m['closed_loop_laps_finished']:.0f} of {m['closed_loop_tracks']:.0f} "
              f"(expert {m['closed_loop_expert_laps_finished']:.0f}) | {minutes:.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
