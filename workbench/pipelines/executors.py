"""Where the attempts of pipeline steps run: processes on this machine, or tasks on a Dask cluster.

On Dask, each attempt runs `run_attempt` inside a worker, so worker machines need the workbench
installed and the MLflow tracking store reachable (a tracking server, not the laptop's SQLite file).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, Callable, Protocol

from workbench.errors import BadInput
from workbench.pipelines.attempts import STOP_POLL_SECONDS, Attempt, Outcome, run_attempt

GPU_RESOURCE = "GPU"  # the Dask worker resource a `gpu: true` step asks for


class ExecutorError(BadInput):
    """An executor that cannot be used as asked (bad flags, unreachable cluster)."""


class Executor(Protocol):
    def describe(self) -> str:
        """Where attempts run, for the log and the pipeline run's tags."""

    def run(self, attempt: Attempt, should_stop: Callable[[], bool]) -> Outcome:
        """Run one attempt to its end; once `should_stop()` is true, kill it and return."""

    def close(self) -> None:
        """Let go of what the executor holds (a connection to the cluster)."""


class LocalExecutor:
    """Each attempt a child process of this one."""

    def describe(self) -> str:
        return "local processes"

    def run(self, attempt: Attempt, should_stop: Callable[[], bool]) -> Outcome:
        return run_attempt(attempt, should_stop)

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

    def run(self, attempt: Attempt, should_stop: Callable[[], bool]) -> Outcome:
        from distributed import Event

        resources = {GPU_RESOURCE: 1} if attempt.gpu else None
        if resources and not self._offers(GPU_RESOURCE):
            return Outcome(error=f"no worker of {self.address} offers the {GPU_RESOURCE} resource this step needs "
                                 f"(gpu: true); start GPU workers with `dask worker {self.address} "
                                 f"--resources {GPU_RESOURCE}=1`")
        stop_name = f"workbench-stop-{attempt.pipeline_run_id}"
        future = self.client.submit(_on_worker, dataclasses.asdict(attempt), stop_name, resources=resources,
                                    key=f"{attempt.pipeline}-{attempt.step}-{attempt.number}-{uuid.uuid4().hex[:8]}",
                                    pure=False, retries=0)
        stopping = False
        while True:
            try:
                return Outcome.from_dict(future.result(timeout=STOP_POLL_SECONDS))
            except TimeoutError:
                if should_stop() and not stopping:
                    Event(stop_name, client=self.client).set()  # the worker kills the step's processes
                    stopping = True
            except Exception as exc:  # the worker died, or the task could not be run
                return Outcome(error=f"the Dask task failed: {type(exc).__name__}: {exc}")

    def _offers(self, resource: str) -> bool:
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return any(w.get("resources", {}).get(resource) for w in workers)

    def close(self) -> None:
        self.client.close()


def _on_worker(attempt: dict[str, Any], stop_event: str) -> dict[str, Any]:
    """What a Dask worker runs: plain dicts in and out, the stop signal a distributed Event."""
    from distributed import Event

    return dataclasses.asdict(run_attempt(Attempt.from_dict(attempt), Event(stop_event).is_set))


def make_executor(kind: str, address: str | None) -> Executor:
    if kind == "local":
        if address:
            raise ExecutorError("--address names a Dask scheduler: use it with --executor dask")
        return LocalExecutor()
    if kind == "dask":
        if not address:
            raise ExecutorError("--executor dask needs --address tcp://HOST:8786 (a running Dask scheduler)")
        return DaskExecutor(address)
    raise ExecutorError(f"--executor {kind!r}: allowed: local, dask")
