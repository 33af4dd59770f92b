"""The DAG runner: steps start as soon as what they need has succeeded, up to `max_parallel` at
a time; each is skipped when unchanged since its last success, or run in attempts through an
executor, and recorded in the pipeline run's MLflow tree."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Callable

from workbench.errors import interruption
from workbench.pipelines.attempts import Attempt, run_folder
from workbench.pipelines.executors import Executor, LocalExecutor
from workbench.pipelines.introspect import display_path
from workbench.pipelines.references import substitute
from workbench.pipelines.results import (FAILED, FINISHED, KILLED, PENDING, SKIPPED, SUCCEEDED, UNCHANGED,
                                         PipelineResult, StepResult, pipeline_status, summary_table)
from workbench.pipelines.spec import Pipeline, PipelineError, Step, type_problem
from workbench.pipelines.state import StepState, exclusive, step_digest


def default_max_parallel() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def run_pipeline(pipeline: Pipeline, *, force: bool = False, max_parallel: int | None = None,
                 executor: Executor | None = None, stop: threading.Event | None = None,
                 echo: Callable[[str], None] | None = None) -> PipelineResult:
    """Run every step of a validated pipeline; raises PipelineBusy when it is already running."""
    runner = _Runner(pipeline, executor or LocalExecutor(), force, max_parallel or default_max_parallel(),
                     stop or threading.Event(), echo or (lambda line: print(line, flush=True)))
    with exclusive(pipeline.name):
        return runner.run()


class _Runner:
    def __init__(self, pipeline: Pipeline, executor: Executor, force: bool, max_parallel: int,
                 stop: threading.Event, echo: Callable[[str], None]):
        if not isinstance(max_parallel, int) or max_parallel < 1:
            raise PipelineError(f"--max-parallel: {max_parallel!r}: an integer >= 1")
        self.pipeline, self.executor, self.force, self.max_parallel = pipeline, executor, force, max_parallel
        self.stop, self.echo = stop, echo
        self.results = {name: StepResult(name) for name in pipeline.steps}
        self.state = StepState()
        self.started = time.monotonic()
        self.date = time.strftime("%Y-%m-%d")
        self.why = "interrupted"  # what stopped the pipeline, as step reasons say it

    def run(self) -> PipelineResult:
        from workbench.pipelines.runs import PipelineRun  # MLflow loads when a pipeline runs, not with the CLI

        self.tree = PipelineRun(self.pipeline, self.executor.describe(), self.force)
        self.run_id = self.tree.run_id
        folder = run_folder(self.pipeline.name, self.run_id)
        count = len(self.pipeline.steps)
        self.echo(f"pipeline {self.pipeline.name}: {count} step{'s' if count != 1 else ''}, "
                  f"{self.executor.describe()}, up to {self.max_parallel} at a time; "
                  f"MLflow run {self.run_id} (experiment {self.pipeline.experiment})")
        self.pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix="step")
        self.running: dict = {}
        interrupted = None
        try:
            try:
                self._schedule()
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM raised as workbench.errors.Stopped
                interrupted, self.why = exc, interruption(exc)
                self.stop.set()
                self.echo(f"{self.why}: stopping the running steps")
                self._schedule()  # drains: running steps see the stop and end KILLED
        finally:
            self.pool.shutdown(wait=True)
            status = pipeline_status(self.results, interrupted is not None)
            self.tree.close(status, self.results, time.monotonic() - self.started)
        result = PipelineResult(self.pipeline.name, self.run_id, status, self.results,
                                time.monotonic() - self.started, folder, interrupted)
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
                    result.status, result.error = KILLED, f"not started: the pipeline was {self.why}"
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
            result.run_id = self.tree.open_step(step)
            upstream = {n: self.results[n].outputs for n in step.needs}
            parameters = self._resolve(step)
            digest = step_digest(step, parameters, upstream)
            self.tree.log_parameters(result.run_id, parameters)
            previous = self.state.get(self.pipeline.name, step.name)
            if not self.force and previous and previous.get("digest") == digest:
                result.status, result.outputs = UNCHANGED, previous.get("outputs", {})
                result.source_run_id = previous.get("run_id")
                self.tree.mark_unchanged(result.run_id, result.source_run_id)
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
                self.tree.close_step(result)

    def _attempts(self, step: Step, parameters: dict, result: StepResult) -> None:
        total = step.retries + 1
        for number in range(1, total + 1):
            if self.stop.is_set():
                result.status, result.error = KILLED, f"the pipeline was {self.why}"
                return
            result.attempts = number
            self.echo(self._line(step.name, f"started (attempt {number} of {total})"))
            attempt = Attempt(self.pipeline.name, step.name, number, step.notebook_text, parameters, step.timeout,
                              step.gpu, self.tree.tracking_uri, self.run_id, result.run_id,
                              {**self.tree.nested_tags(step.name, result.run_id),
                               "mlflow.source.name": display_path(step.notebook), "mlflow.source.type": "NOTEBOOK"})
            began = time.monotonic()
            outcome = self.executor.run(attempt, self.stop.is_set)
            result.executed = outcome.executed or result.executed
            if outcome.error is None:
                result.status, result.outputs, result.error = FINISHED, outcome.outputs, None
                self.echo(self._line(step.name, f"FINISHED in {time.monotonic() - began:.1f} s"))
                return
            result.error = outcome.error
            self.tree.close_orphans(step.name, result.run_id, outcome.error)
            if self.stop.is_set():
                result.status = KILLED
                self.echo(self._line(step.name, f"KILLED: {result.error}"))
                return
            again = "; retrying" if number < total else ""
            self.echo(self._line(step.name, f"attempt {number} failed: {result.error}{again}"))
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

    def _line(self, step: str, message: str) -> str:
        width = max(len(n) for n in self.pipeline.steps)
        return f"[{_clock(time.monotonic() - self.started)}] {step:<{width}}  {message}"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
