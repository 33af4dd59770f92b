"""The closed loop at length: a trained traffic detector drives fresh highway scenes beside the
same rule fed the true boxes, long enough to count collisions.

    .venv/bin/python bench/traffic_loop.py MODEL_URI [SCENES] [SECONDS] [FIRST_SEED] [MIN_SCORE] [REMEMBER]

MODEL_URI is the logged model of a `workbench train --task traffic` run (`models:/m-...`, with
MLFLOW_TRACKING_URI pointing at that run's store). Scenes use seeds FIRST_SEED.. (default 900000,
far from any recorded scene), each driven for SECONDS simulated seconds or until a collision, on
one process per core. MIN_SCORE: the detector's boxes the rule sees (default: the logged model's).
REMEMBER: 1 (default) lets the rule see the tracked cars, 0 only each frame's boxes. Prints both
totals with a 95% interval for each collision rate, how often the rule chose otherwise than the
true boxes would have made it choose, and those two choices at each collision; and, as it goes,
one line per scene.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

_detector = None


def _drive_both(job: tuple) -> tuple:
    global _detector
    import mlflow

    from workbench.tasks.traffic_loop import drive

    uri, seed, seconds, min_score, remember = job
    if _detector is None:
        _detector = mlflow.pyfunc.load_model(uri).unwrap_python_model().served
        if min_score:
            _detector.settings["min_score"] = min_score
    learned = drive("highway", seed, seconds, True, lambda frame: _detector.detect([frame])[0][0], remember)
    truth = drive("highway", seed, seconds, True, remember=remember)
    return learned, truth


def rate_interval(events: int, km: float) -> str:
    """Collisions per km with an exact (Garwood) 95% Poisson interval."""
    from scipy.stats import chi2

    low = chi2.ppf(0.025, 2 * events) / 2 if events else 0.0
    high = chi2.ppf(0.975, 2 * events + 2) / 2
    return f"{events / km:.3f} per km (95%: {low / km:.3f}-{high / km:.3f})"


def main(uri: str, scenes: int = 40, seconds: int = 120, first_seed: int = 900_000, min_score: float = 0.0,
         remember: int = 1) -> None:
    from workbench.tasks.traffic_loop import summary

    started = time.perf_counter()
    jobs = [(uri, first_seed + i, seconds, min_score, bool(remember)) for i in range(scenes)]
    pairs = []
    with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        # one line per scene as it ends, so a run stopped early still shows what it drove
        for learned, truth in pool.map(_drive_both, jobs):
            pairs.append((learned, truth))
            print(f"scene {learned.seed}: detector {learned.distance_m:.0f} m{' COLLIDED' if learned.collided else ''}"
                  f"; true boxes {truth.distance_m:.0f} m{' COLLIDED' if truth.collided else ''}", flush=True)
    for name, drives in (("detector", [p[0] for p in pairs]), ("true boxes", [p[1] for p in pairs])):
        totals = summary(drives)
        print(f"| {name} | {scenes} | {totals['km']:.1f} | {totals['collisions']:.0f} | "
              f"{rate_interval(int(totals['collisions']), totals['km'])} | {totals['mean_speed_kmh']:.0f} | "
              f"{totals['choices_unlike_true_boxes']:.1%} |")
        crashes = [f"{d.seed}: {d.last_choices[0]} (true boxes: {d.last_choices[1]})" for d in drives if d.collided]
        print("  last choice before each collision:", "; ".join(crashes) or "none")
    print(f"\n{(time.perf_counter() - started) / 60:.1f} minutes")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:5]), *(float(a) for a in sys.argv[5:6]),
         *(int(a) for a in sys.argv[6:7]))
