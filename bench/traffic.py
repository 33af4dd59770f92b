"""Vehicle detection, lane segmentation and the closed loop on held-out highway scenes.

    .venv/bin/python bench/traffic.py                 # all cases
    .venv/bin/python bench/traffic.py detect-random   # one case
    TRAFFIC_SCENES=/tmp/scenes .venv/bin/python bench/traffic.py   # recordings kept there for the next time

Each case runs `workbench train --in-process` in a fresh home (the scenes are recorded once into a
shared cache first and copied in, so the minutes are training and testing) and reads the metrics
back from MLflow. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fresh_run import train_in_fresh_home

CASES = {  # name: (flags, picture)
    "detect-random": (["--task", "traffic", "--model", "centernet"], "random"),
    "detect-plain": (["--task", "traffic", "--model", "centernet", "--randomize", "false",
                      "--closed-loop-steps", "-1"], "plain"),
    "lanes-random": (["--task", "lanes", "--model", "unet"], "random"),
}
GOALS = "mAP@0.5 ≥ 0.90 and mAP@[.5:.95] ≥ baseline + 0.20; lanes mean IoU ≥ 0.90; collisions/km ≤ 1.2 × true boxes'"


def record(cache: Path, randomize: bool) -> float:
    """Minutes to record the default scenes into `cache` (nothing when they are there already)."""
    started = time.perf_counter()
    code = ("from workbench.tasks.traffic import load_scenes; from workbench.tasks.configure import make_config; "
            f"load_scenes(make_config(task='traffic', randomize={randomize}))")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "WORKBENCH_HOME": str(cache)})
    return (time.perf_counter() - started) / 60


def main(patterns: list[str]) -> None:
    names = [n for n in CASES if not patterns or any(fnmatch.fnmatch(n, p) for p in patterns)]
    # TRAFFIC_SCENES=DIR keeps the recordings for later invocations
    cache = Path(os.environ.get("TRAFFIC_SCENES") or tempfile.mkdtemp(prefix="wb-traffic-scenes-"))
    recorded = {}
    rows = []
    for name in names:
        flags, picture = CASES[name]
        if picture not in recorded:
            recorded[picture] = record(cache, picture == "random")
        home = Path(tempfile.mkdtemp(prefix=f"wb-traffic-{name}-"))
        shutil.copytree(cache / "data", home / "data")
        _, client, run, minutes = train_in_fresh_home(flags, "", home)
        m = run.data.metrics
        epochs = f"{len(client.get_metric_history(run.info.run_id, 'epoch_seconds'))} of {run.data.params['epochs']}"
        if flags[1] == "lanes":
            result = (f"mean IoU {m['test_mean_iou']:.4f} (ego lane {m['test_iou_ego_lane']:.3f}, other lanes "
                      f"{m['test_iou_other_lanes']:.3f}, off-road {m['test_iou_off_road']:.3f})")
            baseline = f"average mask {m['baseline_prior_test_mean_iou']:.4f}"
        else:
            result = f"mAP@0.5 {m['test_map50']:.4f}, mAP@[.5:.95] {m['test_map']:.4f}"
            baseline = f"blobs {m['baseline_test_map50']:.4f} / {m['baseline_test_map']:.4f}"
            if "closed_loop_km" in m:
                result += (f"; closed loop: {m['closed_loop_collisions']:.0f} collisions in {m['closed_loop_km']:.2f} km "
                           f"at {m['closed_loop_mean_speed_kmh']:.0f} km/h")
                baseline += (f"; true boxes: {m['closed_loop_true_boxes_collisions']:.0f} in "
                             f"{m['closed_loop_true_boxes_km']:.2f} km at "
                             f"{m['closed_loop_true_boxes_mean_speed_kmh']:.0f} km/h")
        rows.append(f"| {name} | `{' '.join(flags)}` | {result} | {baseline} | {epochs} | "
                    f"{minutes:.1f} (+{recorded[picture]:.1f} recording) |")
        print(rows[-1], flush=True)
    print(f"\nGoals: {GOALS}\n")
    print("| case | command flags | test (held-out scenes) | baseline, same frames | epochs run | minutes |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
