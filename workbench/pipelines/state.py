"""What succeeded last, for skipping unchanged steps, and one run of a pipeline at a time."""

from __future__ import annotations

import fcntl
import hashlib
import json
from contextlib import contextmanager
from typing import Iterator

from workbench.damaged import report, set_aside
from workbench.errors import Busy
from workbench.home import subdir
from workbench.pipelines.outputs import write_json
from workbench.pipelines.spec import Step
from workbench.procs import LockHeld, pid_lock


class PipelineBusy(Busy):
    """The pipeline is already running (from the scheduler or another terminal)."""


class StepState:
    """`pipelines/state.json` in the workbench home: per pipeline and step, the digest of the last
    success, its recorded outputs and its MLflow run. Writers take a file lock."""

    def __init__(self):
        folder = subdir("pipelines")
        self.path = folder / "state.json"
        self.lock = folder / "state.lock"

    def get(self, pipeline: str, step: str) -> dict | None:
        return self._read().get(pipeline, {}).get(step)

    def put(self, pipeline: str, step: str, entry: dict) -> None:
        with open(self.lock, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # waits: writers of other steps finish in a moment
            state = self._read()
            state.setdefault(pipeline, {})[step] = entry
            write_json(self.path, state)

    def _read(self) -> dict:
        try:
            state = json.loads(self.path.read_text())
            if isinstance(state, dict) and all(isinstance(v, dict) for v in state.values()):
                return state
            problem = "not a mapping of pipelines to steps"
        except FileNotFoundError:
            return {}
        except (ValueError, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        kept = set_aside(self.path)
        report("pipeline state", self.path, problem, kept, "every step runs again instead of being skipped")
        return {}


def step_digest(step: Step, parameters: dict, upstream: dict[str, dict]) -> str:
    """What decides whether a step would do the same work again: its notebook's cells (not their
    outputs or metadata, which change when someone merely opens it), parameters, upstream outputs."""
    notebook = json.loads(step.notebook_text)
    cells = [(c.get("cell_type"), c["source"] if isinstance(c["source"], str) else "".join(c["source"]))
             for c in notebook.get("cells", [])]
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
    payload = json.dumps({"cells": cells, "kernel": kernel, "parameters": parameters, "upstream": upstream},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


@contextmanager
def exclusive(pipeline: str) -> Iterator[None]:
    """One run of a pipeline at a time on this workbench home, whoever starts it."""
    try:
        with pid_lock(subdir("pipelines") / f"{pipeline}.lock"):
            yield
    except LockHeld as exc:  # only taking the lock raises it: the run itself takes no pid_lock
        raise PipelineBusy(f"pipeline {pipeline!r} is already running ({exc.holder or 'another process'})") from None
