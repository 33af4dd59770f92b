"""Scaling out on the real engines: tuning workers, the tracking server under load, a pipeline on Dask.

    .venv/bin/python bench/scaling.py [tuning] [server] [dask]      (default: all three)

tuning  `workbench tune --workers N` for N = 1, 2, 4 on the journal and on PostgreSQL: the same study
        (images/digits/MODEL, TRIALS trials of EPOCHS epochs, random sampler, no pruning, batch size
        fixed so that every trial costs the same), each case in a fresh home. Workers are pinned to
        their share of the cores (`workbench tune` does that). Wall time from the command's start to
        its exit (process starts and data loading included), and trials per hour in steady state:
        finished trials over the span from the first trial's start to the last one's end, read
        from the study's own timestamps.
server  `workbench server` on PostgreSQL (4 server workers); WRITERS processes each log LOGS metrics
        one `log_metric` call at a time, as a training loop does. Metrics accepted per second over
        the writing phase, the p50 and p95 latency of a call, and the metrics missing when every
        run's history is read back.
dask    a pipeline of STEPS independent training steps (train.ipynb, images/digits/mlp) run by
        `workbench pipeline run --executor local --max-parallel 2` and by `--executor dask` on a
        2-worker LocalCluster (one thread each): wall time of each.

Prints Markdown tables. Settings: MODEL (default cnn), TRIALS (16), EPOCHS (4), WRITERS (8), LOGS (250), STEPS (4).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from local_postgres import local_postgres  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKBENCH = [sys.executable, "-m", "workbench"]
MODEL = os.environ.get("MODEL", "cnn")
TRIALS = int(os.environ.get("TRIALS", 16))
EPOCHS = int(os.environ.get("EPOCHS", 4))
WRITERS = int(os.environ.get("WRITERS", 8))
LOGS = int(os.environ.get("LOGS", 250))
STEPS = int(os.environ.get("STEPS", 4))


def workbench(home: Path, *args: str, timeout: int = 3600) -> float:
    """Run `workbench ARGS` in `home`; its wall time in seconds (exits on failure)."""
    started = time.perf_counter()
    result = subprocess.run([*WORKBENCH, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "WORKBENCH_HOME": str(home)})
    if result.returncode:
        raise SystemExit(f"workbench {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def steady_rate(storage: str, study_name: str) -> float:
    """Completed trials per hour between the first one's start and the last one's end (a worker's
    surplus trial, refused because the others had already filled the count, does no work)."""
    import optuna
    from optuna.trial import TrialState

    from workbench.tuning.storage import open_storage

    trials = [t for t in optuna.load_study(study_name=study_name, storage=open_storage(storage)).trials
              if t.state == TrialState.COMPLETE]
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return len(trials) * 3600 / span.total_seconds()


def bench_tuning(create_database) -> None:
    print(f"\n### Tuning workers: {TRIALS} trials of images/digits/{MODEL}, {EPOCHS} epochs each "
          f"({os.cpu_count()} cores)\n")
    print("| storage | workers | wall time to the trials, s | vs 1 worker | trials per hour, steady state | vs 1 worker |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        space = Path(scratch) / "space.yaml"
        space.write_text("batch_size: {type: categorical, choices: [128]}\n")
        for kind in ("journal", "postgresql"):
            first = None
            for workers in (1, 2, 4):
                home = Path(scratch) / f"{kind}-{workers}"
                (home / "optuna").mkdir(parents=True)
                storage = (create_database(f"optuna_{workers}") if kind == "postgresql"
                           else f"journal:{home}/optuna/journal.log")
                study = f"scaling-{workers}"
                seconds = workbench(home, "tune", "--task", "images", "--dataset", "digits", "--model", MODEL,
                                    "--epochs", str(EPOCHS), "--trials", str(TRIALS), "--workers", str(workers),
                                    "--sampler", "random", "--pruner", "none", "--search-space", str(space),
                                    "--study", study, "--storage", storage)
                rate = steady_rate(storage, study)
                first = first or (seconds, rate)
                print(f"| {kind} | {workers} | {seconds:.1f} | {first[0] / seconds:.2f}x | {rate:.0f} | "
                      f"{rate / first[1]:.2f}x |", flush=True)


def _write_metrics(url: str, experiment_id: str, index: int, queue) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    run_id = client.create_run(experiment_id, run_name=f"writer-{index}").info.run_id
    latencies, started = [], time.time()
    for step in range(LOGS):
        before = time.perf_counter()
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        latencies.append(time.perf_counter() - before)
    with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints the run's link on ending it
        client.set_terminated(run_id)
    queue.put((run_id, started, time.time(), latencies))


def bench_server(create_database) -> None:
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as scratch:
        home, log = Path(scratch) / "home", Path(scratch) / "server.log"
        port = free_port()
        with log.open("w") as out:
            server = subprocess.Popen([*WORKBENCH, "server", "--backend", create_database("tracking"), "--port",
                                       str(port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                      env={**os.environ, "WORKBENCH_HOME": str(home)}, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while "now logs to it" not in log.read_text():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"workbench server did not start:\n{log.read_text()}")
                time.sleep(0.5)
            url = f"http://127.0.0.1:{port}"
            experiment = MlflowClient(url).create_experiment("load")
            queue = multiprocessing.get_context("spawn").Queue()
            writers = [multiprocessing.get_context("spawn").Process(target=_write_metrics,
                                                                    args=(url, experiment, i, queue))
                       for i in range(WRITERS)]
            for writer in writers:
                writer.start()
            results = [queue.get(timeout=1800) for _ in writers]
            for writer in writers:
                writer.join()
            first, last = min(r[1] for r in results), max(r[2] for r in results)
            latencies = sorted(x for r in results for x in r[3])
            stored = sum(len(MlflowClient(url).get_metric_history(r[0], "loss")) for r in results)
            sent = WRITERS * LOGS
            print(f"\n### Tracking server on PostgreSQL: {WRITERS} processes x {LOGS} `log_metric` calls\n")
            print("| metrics sent | accepted per second | latency p50, ms | latency p95, ms | missing on read-back |")
            print("|---|---|---|---|---|")
            print(f"| {sent} | {sent / (last - first):.0f} | {1000 * statistics.median(latencies):.1f} | "
                  f"{1000 * latencies[int(0.95 * len(latencies))]:.1f} | {sent - stored} |", flush=True)
        finally:
            subprocess.run([*WORKBENCH, "server", "--forget"], cwd=ROOT, capture_output=True,
                           env={**os.environ, "WORKBENCH_HOME": str(home)})
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bench_dask() -> None:
    from distributed import Client, LocalCluster

    print(f"\n### A pipeline of {STEPS} independent training steps (images/digits/mlp, 3 epochs)\n")
    print("| executor | wall time, s |")
    print("|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        pipeline = Path(scratch) / "independent.yaml"
        steps = "".join(f"  seed{s}:\n    notebook: train.ipynb\n    parameters: {{task: images, dataset: digits, "
                        f"model: mlp, epochs: 3, seed: {s}}}\n" for s in range(STEPS))
        pipeline.write_text(f"name: independent\nsteps:\n{steps}")
        local = workbench(Path(scratch) / "local", "pipeline", "run", str(pipeline), "--max-parallel", "2")
        print(f"| local processes, 2 at a time | {local:.1f} |", flush=True)
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
                Client(cluster):
            dask = workbench(Path(scratch) / "dask", "pipeline", "run", str(pipeline), "--executor", "dask",
                             "--address", cluster.scheduler_address)
        print(f"| Dask LocalCluster, 2 workers x 1 thread | {dask:.1f} |", flush=True)


def main(parts: list[str]) -> None:
    parts = parts or ["tuning", "server", "dask"]
    print(f"machine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M')}")
    with local_postgres() as create_database:
        if "tuning" in parts:
            bench_tuning(create_database)
        if "server" in parts:
            bench_server(create_database)
    if "dask" in parts:
        bench_dask()


if __name__ == "__main__":
    main(sys.argv[1:])
