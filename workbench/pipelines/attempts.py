"""One attempt of a pipeline step: the runner hands an executor an Attempt and gets an Outcome.

`run_attempt` starts `python -m workbench.pipelines.attempts` (papermill on the `workbench`
kernel) as a child process, kills the child and every process it started when the step's timeout
passes or the pipeline stops, attaches the executed notebook (.ipynb and .html) and the log to
the step's MLflow run, and returns what the notebook recorded. It runs where the executor puts
it: in the runner's process, or in a Dask worker on another machine, so both dataclasses travel
as plain dicts (`dataclasses.asdict`, `from_dict`) across processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench import handoff
from workbench.home import PROJECT_ROOT, executed_notebooks
from workbench.pipelines.outputs import OUTPUTS_ENV, read_outputs
from workbench.procs import die_with_parent, kill_tree

PIPELINE_RUN_ENV = "WORKBENCH_PIPELINE_RUN_ID"  # MLflow run of the whole pipeline run
STOP_POLL_SECONDS = 1.0


@dataclass
class Attempt:
    """What an executor needs to run one attempt of a step, wherever it runs it."""

    pipeline: str
    step: str
    number: int  # 1 for the first attempt
    notebook_text: str
    parameters: dict[str, Any]  # resolved: no references left
    timeout: float | None
    gpu: bool
    tracking_uri: str
    pipeline_run_id: str
    step_run_id: str
    run_tags: dict[str, str]  # for the runs the notebook starts: they nest under the step run

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        return cls(**data)


@dataclass
class Outcome:
    """How an attempt ended."""

    error: str | None = None  # None: the notebook ran to the end
    outputs: dict[str, Any] = field(default_factory=dict)  # what it recorded, when it succeeded
    executed: str | None = None  # the executed notebook, on the machine it ran on

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**data)


def run_folder(pipeline: str, pipeline_run_id: str) -> Path:
    """Where the executed notebooks of a pipeline run go."""
    return executed_notebooks() / "pipelines" / pipeline / pipeline_run_id


def run_attempt(attempt: Attempt, should_stop: Callable[[], bool] | None = None) -> Outcome:
    """Run one attempt to its end. Runs its killed kernel left RUNNING are the runner's to close:
    it reaches the tracking store whatever machine this ran on."""
    folder = run_folder(attempt.pipeline, attempt.pipeline_run_id)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{attempt.step}-attempt{attempt.number}"
    files = {name: folder / f"{stem}{suffix}" for name, suffix in (
        ("input", ".input.ipynb"), ("executed", ".ipynb"), ("log", ".log"), ("outputs", ".outputs.json"),
        ("result", ".result.json"), ("spec", ".spec.json"))}
    for name in ("executed", "outputs", "result"):
        files[name].unlink(missing_ok=True)
    files["input"].write_text(attempt.notebook_text)
    files["spec"].write_text(json.dumps({
        "input": str(files["input"]), "executed": str(files["executed"]), "result": str(files["result"]),
        "parameters": attempt.parameters}))

    began = time.monotonic()
    error = None
    with open(files["log"], "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "workbench.pipelines.attempts", str(files["spec"])],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                                   env=_step_environment(attempt, files["outputs"]), start_new_session=True,
                                   preexec_fn=die_with_parent)  # a runner killed outright takes its step along
        while process.poll() is None:
            try:
                process.wait(STOP_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            if process.poll() is not None:
                break
            if attempt.timeout and time.monotonic() - began > attempt.timeout:
                kill_tree(process)
                error = f"timed out after {attempt.timeout:g} s: the step's processes were killed"
            elif should_stop is not None and should_stop():
                kill_tree(process)
                error = "interrupted: the step's processes were killed"
    if error is None:
        error = _result_error(files["result"], process.returncode, files["log"])
    for name in ("input", "spec", "result"):  # kept: the executed notebook, its log and outputs
        files[name].unlink(missing_ok=True)

    from workbench.notebooks import attach

    attach(attempt.step_run_id, files["executed"], logs=[files["log"]], uri=attempt.tracking_uri)
    return Outcome(error, read_outputs(files["outputs"]) if error is None else {},
                   str(files["executed"]) if files["executed"].exists() else None)


def _step_environment(attempt: Attempt, outputs: Path) -> dict[str, str]:
    """What the step's kernel inherits: where to record outputs, and MLflow's run context, which
    makes every run the notebook starts (mlflow.start_run) a child of the step run."""
    env = handoff.under_step(dict(os.environ), attempt.step_run_id, attempt.run_tags)
    return {**env, OUTPUTS_ENV: str(outputs), PIPELINE_RUN_ENV: attempt.pipeline_run_id,
            "MLFLOW_TRACKING_URI": attempt.tracking_uri}


def _result_error(result: Path, returncode: int, log: Path) -> str | None:
    try:
        return json.loads(result.read_text())["error"]
    except (FileNotFoundError, ValueError, KeyError):
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        return f"step process exited with code {returncode}" + (": " + " | ".join(tail) if tail else "")


# ---- the step process -----------------------------------------------------------------------------

def _step_process(spec_path: str) -> int:
    """Inside the child: execute the notebook with papermill, write whether it failed."""
    from workbench.notebooks import execute

    spec = json.loads(Path(spec_path).read_text())
    error = execute(spec["input"], spec["parameters"], Path(spec["executed"]), cell_timeout=None, echo=True)
    Path(spec["result"]).write_text(json.dumps({"error": error}))
    return 0 if error is None else 1


if __name__ == "__main__":
    from workbench.pipelines.attempts import _step_process as _run  # the importable module, not a copy as __main__

    sys.exit(_run(sys.argv[1]))
