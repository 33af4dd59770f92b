"""Pipelines: a YAML file of notebook steps (a DAG), validated whole, then run step by step.

    name: quickstart
    parameters: {epochs: 2}                  # defaults; `-p epochs=3` overrides
    schedule: "0 2 * * *"                    # optional, for `workbench schedule add`
    steps:
      tune:
        notebook: tune.ipynb                 # in notebooks/, or a path relative to the repository
        parameters: {trials: 10, config: {task: images, epochs: "${params.epochs}"}}
        timeout: 2h                          # per attempt; the step's processes are killed
        retries: 1
      train:
        notebook: train.ipynb
        needs: [tune]
        parameters: {learning_rate: "${steps.tune.outputs.best_config.learning_rate}"}

Every step runs its notebook with papermill in its own process (on this machine or on a Dask
cluster, see `workbench.executors`). A step is skipped as UNCHANGED when its notebook, its
resolved parameters and its upstream outputs equal those of its last success; the outputs
recorded then are handed downstream again. Each pipeline run is an MLflow parent run with one
child run per step; runs a step's notebook creates nest under the step run.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from workbench.home import NOTEBOOKS_DIR, PROJECT_ROOT, executed_notebooks, subdir
from workbench.pipeline_outputs import (CACHED_FROM_TAG, KIND_TAG, PIPELINE_RUN_TAG, PIPELINE_TAG, STEP_STATUS_TAG,
                                        STEP_TAG)

TOP_LEVEL_FIELDS = ("name", "description", "parameters", "schedule", "experiment", "steps")
STEP_FIELDS = ("notebook", "parameters", "needs", "retries", "timeout", "gpu")
DEFAULT_EXPERIMENT = "workbench-pipelines"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REFERENCE = re.compile(r"\$\{([^}]*)\}")
REFERENCE_FORMS = ("${params.NAME}", "${steps.STEP.outputs.NAME}", "${steps.STEP.outputs.NAME.KEY}",
                   "${steps.STEP.run_id}", "${pipeline.run_id}", "${pipeline.name}", "${pipeline.date}")

# Step statuses. UNCHANGED: not run, outputs of its last success reused. SKIPPED: an upstream step
# did not succeed. KILLED: the pipeline was interrupted.
FINISHED, FAILED, UNCHANGED, SKIPPED, KILLED = "FINISHED", "FAILED", "UNCHANGED", "SKIPPED", "KILLED"
PENDING = "PENDING"
SUCCEEDED = (FINISHED, UNCHANGED)


class PipelineError(ValueError):
    """A pipeline file or a request that cannot run; the message names the file and the field."""


class PipelineBusy(RuntimeError):
    """The pipeline is already running (from the scheduler or another terminal)."""


# ---- the file format ----------------------------------------------------------------------------

@dataclass
class Step:
    name: str
    notebook: Path
    notebook_text: str  # the content read at validation: what runs is what was hashed
    parameters: dict[str, Any]
    needs: list[str]
    retries: int = 0
    timeout: float | None = None
    gpu: bool = False
    notebook_defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pipeline:
    name: str
    path: Path
    parameters: dict[str, Any]
    steps: dict[str, Step]  # in topological order
    description: str = ""
    schedule: str | None = None
    experiment: str = DEFAULT_EXPERIMENT

    @property
    def label(self) -> str:
        return display_path(self.path)


_NOT_LITERAL = object()  # a notebook default that is an expression: any value is accepted
_DEFERRED = object()  # a reference known only while the pipeline runs


def load_pipeline(path: str | Path, overrides: dict[str, str] | None = None) -> Pipeline:
    """Read and check a whole pipeline file; raises PipelineError naming the file and field."""
    path = Path(path)
    label = display_path(path)
    if not path.is_file():
        raise PipelineError(f"{label}: no such pipeline file")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PipelineError(f"{label}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise PipelineError(f"{label}: expected a mapping with {', '.join(TOP_LEVEL_FIELDS)}")

    def fail(where: str, message: str) -> PipelineError:
        return PipelineError(f"{label}: {where}: {message}")

    _known_fields(document, TOP_LEVEL_FIELDS, "pipeline", fail)
    name = document.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise fail("name", f"{name!r}: required, the pipeline's name (letters, digits, '.', '-' and '_')")
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(isinstance(k, str) and IDENTIFIER.match(k) for k in parameters):
        raise fail("parameters", "a mapping of parameter names (letters, digits, _) to default values")
    parameters = dict(parameters)
    for key, raw in (overrides or {}).items():
        if key not in parameters:
            raise fail(f"-p {key}", f"unknown pipeline parameter; this pipeline declares: "
                       f"{', '.join(parameters) or 'none'}")
        value = raw if isinstance(parameters[key], str) or not isinstance(raw, str) else _parse_value(raw)
        problem = type_problem(value, parameters[key])
        if problem:
            raise fail(f"-p {key}", problem)
        parameters[key] = value
    schedule = document.get("schedule")
    if schedule is not None:
        check_cron(schedule, lambda message: fail("schedule", message))
    experiment = document.get("experiment", DEFAULT_EXPERIMENT)
    if not isinstance(experiment, str) or not experiment.strip():
        raise fail("experiment", "an MLflow experiment name")

    raw_steps = document.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        raise fail("steps", "a mapping of step names to steps (notebook, parameters, needs, ...)")
    steps = {}
    for step_name, raw in raw_steps.items():
        if not isinstance(step_name, str) or not NAME.match(step_name):
            raise fail(f"steps.{step_name}", "step names use letters, digits, '.', '-' and '_'")
        steps[step_name] = _load_step(step_name, raw, parameters,
                                      lambda where, message, s=step_name: fail(f"step '{s}'", f"{where}: {message}"
                                                                              if where else message))
    for step in steps.values():
        unknown = [n for n in step.needs if n not in steps]
        if unknown:
            raise fail(f"step '{step.name}'", f"needs: unknown step {unknown[0]!r}; steps: {', '.join(steps)}")
    order = topological_order(steps, lambda cycle: fail("steps", "needs form a cycle: " + " -> ".join(cycle)))
    pipeline = Pipeline(name, path.resolve(), parameters, {n: steps[n] for n in order},
                        str(document.get("description") or ""), schedule, experiment)
    for step in pipeline.steps.values():
        _check_config(step, parameters, lambda message, s=step.name: fail(f"step '{s}'", message))
    return pipeline


def _known_fields(mapping: dict, allowed: tuple[str, ...], what: str, fail) -> None:
    for key in mapping:
        if key not in allowed:
            raise fail(str(key), f"unknown {what} field; allowed: {', '.join(allowed)}")


def _load_step(name: str, raw: Any, pipeline_parameters: dict, fail) -> Step:
    if not isinstance(raw, dict):
        raise fail("", f"expected a mapping with {', '.join(STEP_FIELDS)}")
    for key in raw:
        if key not in STEP_FIELDS:
            raise fail(str(key), f"unknown step field; allowed: {', '.join(STEP_FIELDS)}")
    notebook = find_notebook(raw.get("notebook"), lambda message: fail("notebook", message))
    text = notebook.read_text()
    defaults = notebook_parameters(notebook, text, lambda message: fail("notebook", message))
    needs = raw.get("needs") or []
    needs = [needs] if isinstance(needs, str) else needs
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise fail("needs", "a list of step names")
    if name in needs:
        raise fail("needs", f"a step cannot need itself ({name})")
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise fail("parameters", "a mapping of notebook parameter names to values")
    for key, value in parameters.items():
        if defaults is None:
            raise fail(f"parameters.{key}", f"{display_path(notebook)} has no cell tagged 'parameters' "
                       "to receive it")
        if key not in defaults:
            raise fail(f"parameters.{key}", f"unknown parameter of {display_path(notebook)}; its parameters "
                       f"cell defines: {', '.join(defaults) or 'nothing'}")
        _check_references(f"parameters.{key}", value, needs, pipeline_parameters, fail)
        known = substitute(value, lambda ref: pipeline_parameters[ref[1]] if ref[0] == "params" else _DEFERRED)
        problem = type_problem(known, defaults[key])
        if problem:
            raise fail(f"parameters.{key}", problem)
    retries = raw.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise fail("retries", f"{retries!r}: an integer >= 0 (attempts after the first)")
    timeout = parse_duration(raw.get("timeout"), lambda message: fail("timeout", message))
    gpu = raw.get("gpu", False)
    if not isinstance(gpu, bool):
        raise fail("gpu", f"{gpu!r}: true or false")
    return Step(name, notebook, text, dict(parameters), list(dict.fromkeys(needs)), retries, timeout, gpu,
                defaults or {})


def find_notebook(value: Any, fail) -> Path:
    """A notebook in notebooks/ by name, or a path relative to the repository (or absolute)."""
    if not isinstance(value, str) or not value.strip():
        raise fail("required: a notebook in notebooks/ (e.g. train.ipynb) or a path relative to the repository")
    for candidate in (NOTEBOOKS_DIR / value, PROJECT_ROOT / value):
        if candidate.suffix == ".ipynb" and candidate.is_file():
            return candidate.resolve()
    available = ", ".join(sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")))
    raise fail(f"{value!r} not found in notebooks/ ({available}) nor relative to the repository root "
               f"{PROJECT_ROOT}")


def notebook_parameters(path: Path, text: str, fail) -> dict[str, Any] | None:
    """Names assigned in the cell tagged `parameters`, with their literal defaults; None without one."""
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError, TypeError):
        raise fail(f"{display_path(path)} is not a notebook (JSON with cells)") from None
    for cell in cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
            try:
                tree = ast.parse("\n".join(lines))
            except SyntaxError as exc:
                raise fail(f"{display_path(path)}: the parameters cell is not valid Python: {exc}") from None
            found = {}
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else \
                    [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
                for target in targets:
                    if isinstance(target, ast.Name):
                        try:
                            found[target.id] = ast.literal_eval(node.value)
                        except ValueError:
                            found[target.id] = _NOT_LITERAL
            return found
    return None


def type_problem(value: Any, default: Any) -> str | None:
    """Why `value` cannot replace `default` (same kind of value; ints pass for floats), or None."""
    if value is _DEFERRED or default is None or default is _NOT_LITERAL:
        return None
    kinds = ((bool, "a boolean (true/false)"), (int, "an integer"), (float, "a number"), (str, "a string"),
             ((list, tuple), "a list"), (dict, "a mapping"))
    wanted = next((name for kind, name in kinds if isinstance(default, kind)), None)
    if wanted is None:
        return None
    ok = {
        "a boolean (true/false)": isinstance(value, bool),
        "an integer": isinstance(value, int) and not isinstance(value, bool),
        "a number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "a string": isinstance(value, str),
        "a list": isinstance(value, (list, tuple)),
        "a mapping": isinstance(value, dict),
    }[wanted]
    if ok:
        return None
    return f"{value!r} is not {wanted} (the default is {default!r})"


def _parse_value(text: str) -> Any:
    """`-p key=value` values read as YAML scalars: 3 is an int, 0.1 a float, true a boolean."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_duration(value: Any, fail) -> float | None:
    """Seconds as a number, or a string such as 90s, 20m, 2h."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*[smh]\s*", value):
        seconds = float(value.strip()[:-1]) * units[value.strip()[-1]]
    if seconds is None or seconds <= 0:
        raise fail(f"{value!r}: seconds > 0, or a duration such as 90s, 20m, 2h")
    return seconds


def check_cron(value: Any, fail) -> None:
    from workbench.scheduler import CRON_HELP, cron_trigger

    try:
        cron_trigger(value)
    except ValueError as exc:
        raise fail(f"{value!r}: {exc}; {CRON_HELP}") from None


def topological_order(steps: dict[str, Step], fail) -> list[str]:
    """Steps in file order, each after everything it needs; a cycle is reported as a path."""
    order, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise fail(trail[trail.index(name):] + [name])
        state[name] = "visiting"
        for need in steps[name].needs:
            visit(need, trail + [name])
        state[name] = "done"
        order.append(name)

    for name in steps:
        visit(name, [])
    return order


# ---- references --------------------------------------------------------------------------------

def parse_reference(text: str) -> tuple[str, ...] | None:
    parts = tuple(p.strip() for p in text.split("."))
    if len(parts) == 2 and parts[0] == "params":
        return parts
    if len(parts) == 2 and parts[0] == "pipeline" and parts[1] in ("run_id", "name", "date"):
        return parts
    if len(parts) == 3 and parts[0] == "steps" and parts[2] == "run_id":
        return parts
    if len(parts) >= 4 and parts[0] == "steps" and parts[2] == "outputs" and all(parts[3:]):
        return parts
    return None


def references(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from REFERENCE.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def substitute(value: Any, lookup: Callable[[tuple[str, ...]], Any]) -> Any:
    """Replace ${...} references. A string that is one reference takes the referenced value (and
    its type); references inside a longer string are written into it."""
    if isinstance(value, dict):
        return {k: substitute(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, lookup) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = REFERENCE.fullmatch(value.strip())
    if whole:
        return lookup(parse_reference(whole.group(1)))

    def text(match: re.Match) -> str:
        found = lookup(parse_reference(match.group(1)))
        if found is _DEFERRED:
            return match.group(0)
        return found if isinstance(found, str) else json.dumps(found)

    return REFERENCE.sub(text, value)


def _check_references(where: str, value: Any, needs: list[str], parameters: dict, fail) -> None:
    for text in references(value):
        ref = parse_reference(text)
        if ref is None:
            raise fail(where, f"${{{text}}} is not a reference; use {', '.join(REFERENCE_FORMS)}")
        if ref[0] == "params" and ref[1] not in parameters:
            raise fail(where, f"${{{text}}}: unknown pipeline parameter {ref[1]!r}; declared: "
                       f"{', '.join(parameters) or 'none'}")
        if ref[0] == "steps" and ref[1] not in needs:
            raise fail(where, f"${{{text}}}: step {ref[1]!r} is not in this step's needs "
                       f"({', '.join(needs) or 'none'})")


def _check_config(step: Step, parameters: dict, fail) -> None:
    """train.ipynb and tune.ipynb build a RunConfig: check its literal values now, not an hour in."""
    from workbench.config import ConfigError, RunConfig
    from workbench.tasks.configure import make_config

    values = substitute(step.parameters, lambda ref: parameters[ref[1]] if ref[0] == "params" else _DEFERRED)
    if step.notebook == (NOTEBOOKS_DIR / "train.ipynb").resolve():
        config, where = {k: v for k, v in values.items() if k in RunConfig.field_names()}, "parameters."
    elif step.notebook == (NOTEBOOKS_DIR / "tune.ipynb").resolve():
        from workbench.tuning import PRUNERS, SAMPLERS

        for key, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
            if key in values and values[key] is not _DEFERRED and values[key] not in allowed:
                raise fail(f"parameters.{key}: {values[key]!r}; allowed: {', '.join(allowed)}")
        config, where = values.get("config"), "parameters.config."
        if not isinstance(config, dict):
            return
    else:
        return
    if any(config.get(k) is _DEFERRED for k in ("task", "dataset", "model")):
        return  # which values are valid depends on the task, known only at run time
    try:
        make_config({k: v for k, v in config.items() if v is not _DEFERRED})
    except ConfigError as exc:
        raise fail(f"{where}{exc.field}: {exc}") from None


# ---- state: what succeeded last, for skipping unchanged steps ------------------------------------

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
        from workbench.pipeline_outputs import _write_json

        with open(self.lock, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            state.setdefault(pipeline, {})[step] = entry
            _write_json(self.path, state)

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
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
    path = subdir("pipelines") / f"{pipeline}.lock"
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise PipelineBusy(f"pipeline {pipeline!r} is already running ({holder})") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()


# ---- running -----------------------------------------------------------------------------------

@dataclass
class StepResult:
    name: str
    status: str = PENDING
    attempts: int = 0
    seconds: float | None = None
    run_id: str | None = None  # this pipeline run's step run
    source_run_id: str | None = None  # the step run that did the work (differs when UNCHANGED)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    executed: str | None = None


@dataclass
class PipelineResult:
    pipeline: str
    run_id: str
    status: str
    steps: dict[str, StepResult]
    seconds: float
    folder: Path

    @property
    def ok(self) -> bool:
        return self.status == FINISHED


def default_max_parallel() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def run_pipeline(pipeline: Pipeline, *, force: bool = False, max_parallel: int | None = None, executor=None,
                 stop: threading.Event | None = None, echo: Callable[[str], None] | None = None) -> PipelineResult:
    """Run every step of a validated pipeline; raises PipelineBusy when it is already running."""
    from workbench.executors import LocalExecutor

    runner = _Runner(pipeline, executor or LocalExecutor(), force, max_parallel or default_max_parallel(),
                     stop or threading.Event(), echo or (lambda line: print(line, flush=True)))
    with exclusive(pipeline.name):
        return runner.run()


class _Runner:
    def __init__(self, pipeline: Pipeline, executor, force: bool, max_parallel: int, stop: threading.Event,
                 echo: Callable[[str], None]):
        if not isinstance(max_parallel, int) or max_parallel < 1:
            raise PipelineError(f"--max-parallel: {max_parallel!r}: an integer >= 1")
        self.pipeline, self.executor, self.force, self.max_parallel = pipeline, executor, force, max_parallel
        self.stop, self.echo = stop, echo
        self.results = {name: StepResult(name) for name in pipeline.steps}
        self.state = StepState()
        self.started = time.monotonic()
        self.date = time.strftime("%Y-%m-%d")

    def run(self) -> PipelineResult:
        from workbench import tracking

        self.client = tracking.client()
        self.tracking_uri = tracking.tracking_uri()
        self.run_id, self.experiment_id = self._open_pipeline_run()
        self.folder = executed_notebooks() / "pipelines" / self.pipeline.name / self.run_id
        count = len(self.pipeline.steps)
        self.echo(f"pipeline {self.pipeline.name}: {count} step{'s' if count != 1 else ''}, "
                  f"{self.executor.describe()}, up to {self.max_parallel} at a time; "
                  f"MLflow run {self.run_id} (experiment {self.pipeline.experiment})")
        self.pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix="step")
        self.running: dict = {}
        interrupted = False
        try:
            try:
                self._schedule()
            except KeyboardInterrupt:
                interrupted = True
                self.stop.set()
                self.echo("interrupted: stopping the running steps")
                self._schedule()  # drains: running steps see the stop and end KILLED
        finally:
            self.pool.shutdown(wait=True)
            status = self._close_pipeline_run(interrupted)
        result = PipelineResult(self.pipeline.name, self.run_id, status, self.results,
                                time.monotonic() - self.started, self.folder)
        self.echo(summary_table(result))
        return result

    def _schedule(self) -> None:
        """Start what is ready, skip what cannot run any more, wait for the next step to end."""
        running = self.running
        while True:
            for name, step in self.pipeline.steps.items():
                result = self.results[name]
                if result.status != PENDING or name in running.values():
                    continue
                blocked = [n for n in step.needs if self.results[n].status in (FAILED, SKIPPED, KILLED)]
                if blocked:
                    result.status = SKIPPED
                    result.error = f"upstream step '{blocked[0]}' {self.results[blocked[0]].status}"
                    self.echo(self._line(name, f"SKIPPED: {result.error}"))
                elif self.stop.is_set():
                    result.status, result.error = KILLED, "not started: the pipeline was interrupted"
                elif len(running) < self.max_parallel and all(self.results[n].status in SUCCEEDED
                                                              for n in step.needs):
                    running[self.pool.submit(self._run_step, step)] = name
            if not running:
                return
            done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                result = self.results[running.pop(future)]
                if result.status == PENDING:  # never started a run nor ended one: do not start it again
                    result.status, result.error = FAILED, f"the step's thread ended early: {future.exception()!r}"

    def _run_step(self, step: Step) -> None:
        result = self.results[step.name]
        started = time.monotonic()
        try:
            result.run_id = self._open_step_run(step)
            upstream = {n: self.results[n].outputs for n in step.needs}
            parameters = self._resolve(step)
            digest = step_digest(step, parameters, upstream)
            self._log_parameters(result.run_id, parameters)
            previous = self.state.get(self.pipeline.name, step.name)
            if not self.force and previous and previous.get("digest") == digest:
                result.status, result.outputs = UNCHANGED, previous.get("outputs", {})
                result.source_run_id = previous.get("run_id")
                self.client.set_tag(result.run_id, CACHED_FROM_TAG, result.source_run_id or "")
                self.echo(self._line(step.name, f"UNCHANGED since run {result.source_run_id} "
                                                "(same notebook, parameters and upstream outputs)"))
            else:
                self._attempts(step, parameters, result)
                if result.status == FINISHED:
                    result.source_run_id = result.run_id
                    self.state.put(self.pipeline.name, step.name, {
                        "digest": digest, "outputs": result.outputs, "run_id": result.run_id,
                        "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        except PipelineError as exc:
            result.status, result.error = FAILED, str(exc)
            self.echo(self._line(step.name, f"FAILED: {exc}"))
        except Exception as exc:  # tracking store unreachable, executor lost: this step fails, others go on
            result.status, result.error = FAILED, f"{type(exc).__name__}: {exc}"
            self.echo(self._line(step.name, f"FAILED: {result.error}"))
        finally:
            result.seconds = time.monotonic() - started
            if result.run_id:
                self._close_step_run(result)

    def _attempts(self, step: Step, parameters: dict, result: StepResult) -> None:
        total = step.retries + 1
        for attempt in range(1, total + 1):
            if self.stop.is_set():
                result.status, result.error = KILLED, "the pipeline was interrupted"
                return
            result.attempts = attempt
            self.echo(self._line(step.name, f"started (attempt {attempt} of {total})"))
            spec = {
                "pipeline": self.pipeline.name, "step": step.name, "attempt": attempt,
                "notebook_name": step.notebook.name, "notebook_text": step.notebook_text, "parameters": parameters,
                "timeout": step.timeout, "gpu": step.gpu, "tracking_uri": self.tracking_uri,
                "pipeline_run_id": self.run_id, "step_run_id": result.run_id,
            }
            began = time.monotonic()
            outcome = self.executor.run(spec, self.stop.is_set)
            result.executed = outcome.get("executed") or result.executed
            if outcome.get("error") is None:
                result.status, result.outputs, result.error = FINISHED, outcome.get("outputs") or {}, None
                self.echo(self._line(step.name, f"FINISHED in {time.monotonic() - began:.1f} s"))
                return
            result.error = outcome["error"]
            if self.stop.is_set():
                result.status = KILLED
                self.echo(self._line(step.name, f"KILLED: {result.error}"))
                return
            again = "; retrying" if attempt < total else ""
            self.echo(self._line(step.name, f"attempt {attempt} failed: {result.error}{again}"))
        result.status = FAILED

    def _resolve(self, step: Step) -> dict[str, Any]:
        def lookup(ref: tuple[str, ...]) -> Any:
            if ref[0] == "params":
                return self.pipeline.parameters[ref[1]]
            if ref[0] == "pipeline":
                return {"run_id": self.run_id, "name": self.pipeline.name, "date": self.date}[ref[1]]
            upstream = self.results[ref[1]]
            if ref[2] == "run_id":
                return upstream.source_run_id
            value, trail = upstream.outputs, f"steps.{ref[1]}.outputs"
            for key in ref[3:]:
                if not isinstance(value, dict) or key not in value:
                    have = ", ".join(value) if isinstance(value, dict) else f"a {type(value).__name__}"
                    raise PipelineError(f"{self.pipeline.label}: step '{step.name}': ${{{'.'.join(ref)}}}: "
                                        f"{trail} has no {key!r} (it has: {have or 'nothing recorded'})")
                value, trail = value[key], f"{trail}.{key}"
            return value

        parameters = substitute(step.parameters, lookup)
        for key, value in parameters.items():
            problem = type_problem(value, step.notebook_defaults.get(key))
            if problem:
                raise PipelineError(f"{self.pipeline.label}: step '{step.name}': parameters.{key}: {problem}")
        return parameters

    # MLflow: one parent run per pipeline run, one child run per step
    def _open_pipeline_run(self) -> tuple[str, str]:
        from workbench import tracking

        experiment = tracking.experiment_id(self.pipeline.experiment)
        run = self.client.create_run(experiment, run_name=f"{self.pipeline.name}-{time.strftime('%m%d-%H%M%S')}",
                                     tags={PIPELINE_TAG: self.pipeline.name, KIND_TAG: "pipeline",
                                           "workbench.pipeline_file": str(self.pipeline.path),
                                           "workbench.executor": self.executor.describe(),
                                           "workbench.force": str(self.force).lower()})
        self._log_parameters(run.info.run_id, self.pipeline.parameters)
        self.client.log_artifact(run.info.run_id, str(self.pipeline.path), "pipeline")
        return run.info.run_id, experiment

    def _open_step_run(self, step: Step) -> str:
        run = self.client.create_run(self.experiment_id, run_name=step.name, tags={
            "mlflow.parentRunId": self.run_id, PIPELINE_TAG: self.pipeline.name, PIPELINE_RUN_TAG: self.run_id,
            STEP_TAG: step.name, KIND_TAG: "pipeline-step", "workbench.notebook": display_path(step.notebook)})
        return run.info.run_id

    def _log_parameters(self, run_id: str, parameters: dict) -> None:
        from mlflow.entities import Param

        params = [Param(k, (v if isinstance(v, str) else json.dumps(v, default=str))[:6000])
                  for k, v in parameters.items()]
        if params:
            self.client.log_batch(run_id, params=params)

    def _close_step_run(self, result: StepResult) -> None:
        from workbench import tracking

        self.client.set_tag(result.run_id, STEP_STATUS_TAG, result.status)
        self.client.log_metric(result.run_id, "attempts", result.attempts)
        self.client.log_metric(result.run_id, "step_seconds", result.seconds or 0.0)
        if result.outputs:
            self.client.log_dict(result.run_id, result.outputs, "outputs.json")
            numbers = {k: float(v) for k, v in result.outputs.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            for key, value in numbers.items():
                self.client.log_metric(result.run_id, f"output.{key}", value)
        status = {FINISHED: "FINISHED", UNCHANGED: "FINISHED", KILLED: "KILLED"}.get(result.status, "FAILED")
        tracking.end_run(result.run_id, result.error if status != "FINISHED" else None, status=status)

    def _close_pipeline_run(self, interrupted: bool) -> str:
        from workbench import tracking

        statuses = {n: r.status for n, r in self.results.items()}
        if interrupted or KILLED in statuses.values():
            status = KILLED
        elif all(s in SUCCEEDED for s in statuses.values()):
            status = FINISHED
        else:
            status = FAILED
        for name, step_status in statuses.items():
            self.client.set_tag(self.run_id, f"step.{name}", step_status)
        self.client.log_dict(self.run_id, {n: dataclasses.asdict(r) for n, r in self.results.items()}, "steps.json")
        self.client.log_metric(self.run_id, "pipeline_seconds", time.monotonic() - self.started)
        failed = [n for n, s in statuses.items() if s in (FAILED, KILLED)]
        error = None if status == FINISHED else f"steps not finished: {', '.join(failed or statuses)}"
        tracking.end_run(self.run_id, error, status="KILLED" if status == KILLED else None)
        return status

    def _line(self, step: str, message: str) -> str:
        width = max(len(n) for n in self.pipeline.steps)
        return f"[{_clock(time.monotonic() - self.started)}] {step:<{width}}  {message}"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def summary_table(result: PipelineResult) -> str:
    rows = [("step", "status", "attempts", "duration", "note")]
    for step in result.steps.values():
        duration = f"{step.seconds:.1f} s" if step.seconds is not None and step.status != SKIPPED else "-"
        note = step.error or (f"same as run {step.source_run_id}" if step.status == UNCHANGED else "")
        rows.append((step.name, step.status, str(step.attempts), duration, note.splitlines()[0] if note else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4]).rstrip() for row in rows]
    where = f"; executed notebooks in {display_path(result.folder)}" if result.folder.exists() else ""
    lines.append(f"pipeline {result.pipeline} {result.status} in {result.seconds:.1f} s; "
                 f"MLflow run {result.run_id}{where}")
    return "\n".join(["", *lines])


def display_path(path: Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---- the `workbench pipeline` and `workbench schedule` commands ------------------------------------

def add_pipeline_commands(subparsers) -> None:
    """`workbench pipeline run|validate`, `workbench schedule add|list|remove`, `workbench scheduler`."""
    from workbench.scheduler import add_schedule_commands

    pipeline = subparsers.add_parser("pipeline", help="run a pipeline of notebooks (pipelines/*.yaml)",
                                     description="Validate and run pipelines of notebook steps.")
    actions = pipeline.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run a pipeline", description="Run a pipeline: validate the whole file, "
                             "then run its steps (independent ones in parallel), skipping unchanged steps.")
    _add_file_flags(run)
    run.add_argument("--force", action="store_true", help="run every step, also those unchanged since their "
                                                         "last success")
    run.add_argument("--max-parallel", type=int, default=None, metavar="N",
                     help=f"steps running at once (default {default_max_parallel()} here)")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="local: processes on this machine (default); dask: a Dask distributed cluster")
    run.add_argument("--address", metavar="tcp://HOST:8786", help="the Dask scheduler (with --executor dask)")
    run.set_defaults(handler=cmd_run)
    check = actions.add_parser("validate", help="check a pipeline file without running it",
                               description="Check a pipeline file and print its steps in run order.")
    _add_file_flags(check)
    check.set_defaults(handler=cmd_validate)
    add_schedule_commands(subparsers)


def _add_file_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="pipeline YAML, e.g. pipelines/quickstart.yaml")
    parser.add_argument("-p", "--param", action="append", default=[], type=_assignment, metavar="KEY=VALUE",
                        help="override a pipeline parameter (repeatable)")


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key.strip(), value


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        pipeline = load_pipeline(args.file, dict(args.param))
    except PipelineError as exc:
        print(f"workbench pipeline: error: {exc}", file=sys.stderr)
        return 2
    print(f"{pipeline.label}: pipeline {pipeline.name}, {len(pipeline.steps)} steps"
          + (f", schedule '{pipeline.schedule}'" if pipeline.schedule else ""))
    for step in pipeline.steps.values():
        needs = f" after {', '.join(step.needs)}" if step.needs else ""
        print(f"  {step.name}: {display_path(step.notebook)}{needs}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from workbench.executors import ExecutorError, make_executor
    from workbench.notebooks import ensure_kernel

    try:
        pipeline = load_pipeline(args.file, dict(args.param))
        if args.max_parallel is not None and args.max_parallel < 1:
            raise PipelineError(f"--max-parallel: {args.max_parallel}: an integer >= 1")
        executor = make_executor(args.executor, args.address)
    except (PipelineError, ExecutorError) as exc:
        print(f"workbench pipeline: error: {exc}", file=sys.stderr)
        return 2
    ensure_kernel()
    signal.signal(signal.SIGTERM, _interrupted)  # e.g. a CronJob's deadline: stop steps cleanly, as Ctrl-C does
    try:
        result = run_pipeline(pipeline, force=args.force, max_parallel=args.max_parallel, executor=executor)
    except PipelineBusy as exc:
        print(f"workbench pipeline: {exc}", file=sys.stderr)
        return 1
    finally:
        executor.close()
    if result.status == KILLED:
        return 130
    return 0 if result.ok else 1


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """`python -m workbench.pipeline ...` takes the same arguments as `workbench ...` for these commands."""
    parser = argparse.ArgumentParser(prog="workbench", description="Pipelines and schedules.")
    add_pipeline_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    from workbench.pipeline import main as _main  # the importable module, not a second copy as __main__

    sys.exit(_main())
