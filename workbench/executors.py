"""Where one attempt of a pipeline step runs: a process on this machine, or a task on a Dask cluster.

Both run the same function, `run_attempt`. It starts `python -m workbench.executors` (papermill
on the `workbench` kernel) as a child process, kills the child and every process it started when
the step's timeout passes, attaches the executed notebook (.ipynb and .html) and the log to the
step's MLflow run, ends runs the killed kernel left RUNNING, and returns what the notebook
recorded. On Dask it runs inside a worker, so worker machines need the workbench installed and the
MLflow tracking store reachable (a tracking server, not the laptop's SQLite file).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from workbench.home import PROJECT_ROOT, executed_notebooks
from workbench.pipeline_outputs import (OUTPUTS_ENV, PIPELINE_RUN_ENV, PIPELINE_RUN_TAG, PIPELINE_TAG, STEP_RUN_ENV,
                                        STEP_TAG, read_outputs)

GPU_RESOURCE = "GPU"  # the Dask worker resource a `gpu: true` step asks for
STOP_POLL_SECONDS = 1.0


class ExecutorError(ValueError):
    """An executor that cannot be used as asked (bad flags, unreachable cluster)."""


def run_attempt(spec: dict[str, Any], should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run one attempt of a step; returns {"error", "outputs", "executed", "timed_out", "seconds"}."""
    from mlflow.tracking import MlflowClient

    if should_stop is None and spec.get("stop_event"):
        should_stop = _dask_event(spec["stop_event"])
    folder = executed_notebooks() / "pipelines" / spec["pipeline"] / spec["pipeline_run_id"]
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{spec['step']}-attempt{spec['attempt']}"
    files = {name: folder / f"{stem}{suffix}" for name, suffix in (
        ("input", ".input.ipynb"), ("executed", ".ipynb"), ("log", ".log"), ("outputs", ".outputs.json"),
        ("result", ".result.json"), ("spec", ".spec.json"))}
    for name in ("executed", "outputs", "result"):
        files[name].unlink(missing_ok=True)
    files["input"].write_text(spec["notebook_text"])
    files["spec"].write_text(json.dumps({
        "input": str(files["input"]), "executed": str(files["executed"]), "result": str(files["result"]),
        "parameters": spec["parameters"]}))

    began = time.monotonic()
    timeout = spec.get("timeout")
    error, timed_out = None, False
    with open(files["log"], "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "workbench.executors", str(files["spec"])],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                                   env=_step_environment(spec, files["outputs"]), start_new_session=True)
        while process.poll() is None:
            try:
                process.wait(STOP_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            if process.poll() is not None:
                break
            if timeout and time.monotonic() - began > timeout:
                kill_tree(process)
                error, timed_out = f"timed out after {timeout:g} s: the step's processes were killed", True
            elif should_stop is not None and should_stop():
                kill_tree(process)
                error = "interrupted: the step's processes were killed"
    if error is None:
        error = _result_error(files["result"], process.returncode, files["log"])
    for name in ("input", "spec", "result"):  # kept: the executed notebook, its log and outputs
        files[name].unlink(missing_ok=True)

    client = MlflowClient(spec["tracking_uri"])
    html = _attach(client, spec["step_run_id"], files["executed"], files["log"])
    if error:
        close_orphaned_runs(client, spec["step_run_id"], f"pipeline step {spec['step']}: {error}")
    return {"error": error, "outputs": read_outputs(files["outputs"]) if error is None else {},
            "executed": str(files["executed"]) if files["executed"].exists() else None,
            "html": str(html) if html else None, "timed_out": timed_out, "seconds": time.monotonic() - began}


def _step_environment(spec: dict, outputs: Path) -> dict[str, str]:
    """What the step's kernel inherits: where to record outputs, and MLflow's run context, which
    makes every run the notebook starts (mlflow.start_run) a child of the step run."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    context = json.loads(env.get("MLFLOW_RUN_CONTEXT") or "{}")
    context.update({"mlflow.parentRunId": spec["step_run_id"], PIPELINE_TAG: spec["pipeline"],
                    PIPELINE_RUN_TAG: spec["pipeline_run_id"], STEP_TAG: spec["step"]})
    env.update({OUTPUTS_ENV: str(outputs), PIPELINE_RUN_ENV: spec["pipeline_run_id"],
                STEP_RUN_ENV: spec["step_run_id"], "MLFLOW_TRACKING_URI": spec["tracking_uri"],
                "MLFLOW_RUN_CONTEXT": json.dumps(context)})
    return env


def _result_error(result: Path, returncode: int, log: Path) -> str | None:
    try:
        return json.loads(result.read_text())["error"]
    except (FileNotFoundError, ValueError, KeyError):
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        return f"step process exited with code {returncode}" + (": " + " | ".join(tail) if tail else "")


def kill_tree(process: subprocess.Popen) -> None:
    """Kill a step process, its process group and every descendant (the kernel runs in a session
    of its own, so the group alone would miss it)."""
    import psutil

    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in descendants:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()
    psutil.wait_procs(descendants, timeout=10)


def _attach(client, run_id: str, executed: Path, log: Path) -> Path | None:
    from workbench.notebooks import to_html

    html = None
    if executed.exists():
        try:
            html = to_html(executed)
        except Exception:  # a half-written notebook from a killed attempt still gets attached as .ipynb
            html = None
        for path in (executed, html):
            if path:
                client.log_artifact(run_id, str(path), "notebook")
    if log.exists():
        client.log_artifact(run_id, str(log), "logs")
    return html


def close_orphaned_runs(client, step_run_id: str, reason: str) -> None:
    """End FAILED the runs under a step that a killed kernel could not end (training runs, studies)."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = [step_run_id]
    while parents:
        parent = parents.pop()
        for run in client.search_runs(experiments, f"tags.`mlflow.parentRunId` = '{parent}'"):
            parents.append(run.info.run_id)
            if run.info.status == "RUNNING":
                if "error" not in run.data.tags:
                    client.set_tag(run.info.run_id, "error", reason[:5000])
                client.set_terminated(run.info.run_id, "FAILED")


def _dask_event(name: str) -> Callable[[], bool]:
    from distributed import Event

    event = Event(name)
    return event.is_set


# ---- executors -----------------------------------------------------------------------------------

class LocalExecutor:
    """Each attempt a child process of this one."""

    def describe(self) -> str:
        return "local processes"

    def run(self, spec: dict, should_stop: Callable[[], bool]) -> dict:
        return run_attempt(spec, should_stop)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Each attempt a task on an existing Dask distributed cluster; `gpu: true` steps ask for the
    `GPU` worker resource (`dask worker tcp://HOST:8786 --resources GPU=1`)."""

    def __init__(self, address: str):
        from distributed import Client

        self.address = address
        try:
            self.client = Client(address, timeout="15s")
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(f"--address {address}: cannot reach a Dask scheduler there ({exc})") from None

    def describe(self) -> str:
        workers = len(self.client.scheduler_info(n_workers=-1)["workers"])
        return f"Dask cluster {self.address} ({workers} workers)"

    def run(self, spec: dict, should_stop: Callable[[], bool]) -> dict:
        from distributed import Event

        resources = {GPU_RESOURCE: 1} if spec.get("gpu") else None
        if resources and not self._offers(GPU_RESOURCE):
            return {"error": f"no worker of {self.address} offers the {GPU_RESOURCE} resource this step needs "
                             f"(gpu: true); start GPU workers with `dask worker {self.address} "
                             f"--resources {GPU_RESOURCE}=1`"}
        stop_name = f"workbench-stop-{spec['pipeline_run_id']}"
        future = self.client.submit(run_attempt, {**spec, "stop_event": stop_name}, resources=resources,
                                    key=f"{spec['pipeline']}-{spec['step']}-{spec['attempt']}-{uuid.uuid4().hex[:8]}",
                                    pure=False, retries=0)
        stopping = False
        while True:
            try:
                return future.result(timeout=STOP_POLL_SECONDS)
            except TimeoutError:
                if should_stop() and not stopping:
                    Event(stop_name, client=self.client).set()  # the worker kills the step's processes
                    stopping = True
            except Exception as exc:  # the worker died, or the task could not be run
                return {"error": f"the Dask task failed: {type(exc).__name__}: {exc}"}

    def _offers(self, resource: str) -> bool:
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return any(w.get("resources", {}).get(resource) for w in workers)

    def close(self) -> None:
        self.client.close()


def make_executor(kind: str, address: str | None):
    if kind == "local":
        if address:
            raise ExecutorError("--address names a Dask scheduler: use it with --executor dask")
        return LocalExecutor()
    if kind == "dask":
        if not address:
            raise ExecutorError("--executor dask needs --address tcp://HOST:8786 (a running Dask scheduler)")
        return DaskExecutor(address)
    raise ExecutorError(f"--executor {kind!r}: allowed: local, dask")


# ---- the step process ----------------------------------------------------------------------------

def _step_process(spec_path: str) -> int:
    """Inside the child: execute the notebook with papermill, write whether it failed."""
    from workbench.notebooks import execute

    spec = json.loads(Path(spec_path).read_text())
    error = execute(spec["input"], spec["parameters"], Path(spec["executed"]), cell_timeout=None, echo=True)
    Path(spec["result"]).write_text(json.dumps({"error": error}))
    return 0 if error is None else 1


if __name__ == "__main__":
    from workbench.executors import _step_process as _run  # the importable module, not a copy as __main__

    sys.exit(_run(sys.argv[1]))
