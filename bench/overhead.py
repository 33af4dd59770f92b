"""What the workbench costs on top of plain Keras, and the notebook path on top of in-process.

    .venv/bin/python bench/overhead.py [EPOCHS] [REPEATS]

1. Seconds per epoch: bench/plain_keras.py against `workbench train --in-process` (MLflow logging
   on), same model and data (Fashion-MNIST cnn). Steady state = epochs after the first.
2. Fixed overhead: wall time of `workbench train` (papermill notebook) minus
   `workbench train --in-process` on a tiny job, next to a bare `papermill` run of a one-cell
   notebook on the same kernel. Medians over REPEATS.
Everything runs in one invocation, on the same machine, so the ratios compare like with like.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from mlflow.tracking import MlflowClient

BENCH = Path(__file__).resolve().parent
PY = sys.executable


def fresh_env() -> tuple[dict, Path]:
    home = Path(tempfile.mkdtemp(prefix="wb-overhead-"))
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env, home


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def plain_keras(epochs: int) -> list[float]:
    out = subprocess.run([PY, str(BENCH / "plain_keras.py"), str(epochs)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["epoch_seconds"]


def workbench_in_process(epochs: int) -> list[float]:
    env, home = fresh_env()
    timed([PY, "-m", "workbench", "train", "--in-process", "--dataset", "fashion-mnist", "--model", "cnn",
           "--epochs", str(epochs)], env)
    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("workbench-images").experiment_id])
    points = client.get_metric_history(run.info.run_id, "epoch_seconds")
    return [p.value for p in sorted(points, key=lambda p: p.step)]


def fixed_overheads(repeats: int) -> dict[str, float]:
    tiny = ["--task", "images", "--dataset", "digits", "--model", "mlp", "--epochs", "1"]
    notebook = Path(tempfile.mkdtemp()) / "one_cell.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), notebook)
    papermill = Path(PY).parent / "papermill"
    samples = {"notebook": [], "in_process": [], "bare_papermill": []}
    for _ in range(repeats):
        env, _ = fresh_env()
        samples["in_process"].append(timed([PY, "-m", "workbench", "train", "--in-process", *tiny], env))
        env, _ = fresh_env()
        samples["notebook"].append(timed([PY, "-m", "workbench", "train", *tiny], env))
        samples["bare_papermill"].append(timed([str(papermill), "-k", "workbench", str(notebook),
                                                str(notebook.with_name("out.ipynb"))], env))
    return {k: statistics.median(v) for k, v in samples.items()}


def main(epochs: int = 3, repeats: int = 3) -> None:
    plain = plain_keras(epochs)
    ours = workbench_in_process(epochs)
    steady = lambda s: statistics.mean(s[1:]) if len(s) > 1 else s[0]  # noqa: E731
    print("## Seconds per epoch (Fashion-MNIST, cnn, batch 64)")
    print("| | epoch seconds | steady-state s/epoch |")
    print("|---|---|---|")
    print(f"| plain Keras script | {', '.join(f'{s:.1f}' for s in plain)} | {steady(plain):.2f} |")
    print(f"| workbench --in-process (MLflow on) | {', '.join(f'{s:.1f}' for s in ours)} | {steady(ours):.2f} |")
    print(f"\nratio workbench / plain Keras (steady state): {steady(ours) / steady(plain):.3f} (goal ≤ 1.05)\n")
    fixed = fixed_overheads(repeats)
    added = fixed["notebook"] - fixed["in_process"]
    print(f"## Fixed overhead (digits, mlp, 1 epoch; median of {repeats})")
    print("| path | wall seconds |")
    print("|---|---|")
    for name in ("in_process", "notebook", "bare_papermill"):
        print(f"| {name} | {fixed[name]:.1f} |")
    print(f"\nnotebook path adds {added:.1f} s over in-process = {added / fixed['bare_papermill']:.2f}x "
          f"a bare papermill run (goal ≤ 1.3x)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)
