"""A pipeline run in MLflow: a parent run with one child run per step, written while the pipeline
runs and read back by notebooks (a report over the training runs of the last pipeline run).

Runs a step's notebook starts nest under the step's run; a step skipped as unchanged points at
the step run that did the work (`workbench.cached_from`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from workbench import tracking
from workbench.errors import ConfigError
from workbench.pipelines.introspect import display_path
from workbench.pipelines.results import FAILED, FINISHED, KILLED, UNCHANGED, StepResult
from workbench.pipelines.spec import Pipeline, Step
from workbench.tasks import get_task
from workbench.tracking import run_tree

PIPELINE_TAG = "workbench.pipeline"
PIPELINE_RUN_TAG = "workbench.pipeline_run"
STEP_TAG = "workbench.step"
STEP_STATUS_TAG = "workbench.step_status"
CACHED_FROM_TAG = "workbench.cached_from"  # an unchanged step points at the run that did the work
KIND_TAG = "kind"


class PipelineRun:
    """The MLflow runs of one pipeline run; opening it opens the parent run."""

    def __init__(self, pipeline: Pipeline, executor: str, force: bool):
        self.pipeline = pipeline
        self.tracking_uri = tracking.tracking_uri()  # handed to executors: steps log here, wherever they run
        self.experiment_id = tracking.experiment_id(pipeline.experiment)
        self.run_id = run_tree.create_run(
            self.experiment_id, f"{pipeline.name}-{time.strftime('%m%d-%H%M%S')}",
            {PIPELINE_TAG: pipeline.name, KIND_TAG: "pipeline", "workbench.pipeline_file": str(pipeline.path),
             "workbench.executor": executor, "workbench.force": str(force).lower()})
        run_tree.log_params(self.run_id, pipeline.parameters)
        run_tree.attach(self.run_id, {"pipeline": [pipeline.path]})

    def open_step(self, step: Step) -> str:
        return run_tree.create_run(self.experiment_id, step.name, {
            PIPELINE_TAG: self.pipeline.name, PIPELINE_RUN_TAG: self.run_id, STEP_TAG: step.name,
            KIND_TAG: "pipeline-step", "workbench.notebook": display_path(step.notebook)}, parent_run_id=self.run_id)

    def nested_tags(self, step: str, step_run_id: str) -> dict[str, str]:
        """The tags of runs a step's notebook starts: children of the step run."""
        return {run_tree.PARENT_TAG: step_run_id, PIPELINE_TAG: self.pipeline.name, PIPELINE_RUN_TAG: self.run_id,
                STEP_TAG: step}

    def log_parameters(self, run_id: str, parameters: dict[str, Any]) -> None:
        run_tree.log_params(run_id, parameters)

    def mark_unchanged(self, step_run_id: str, source_run_id: str | None) -> None:
        run_tree.set_tags(step_run_id, {CACHED_FROM_TAG: source_run_id or ""})

    def close_orphans(self, step: str, step_run_id: str, error: str) -> None:
        """After a failed attempt: end the runs its killed kernel left RUNNING (training runs, studies)."""
        run_tree.close_descendants(step_run_id, f"pipeline step {step}: {error}")

    def close_step(self, result: StepResult) -> None:
        run_tree.set_tags(result.run_id, {STEP_STATUS_TAG: result.status})
        run_tree.log_metrics(result.run_id, {"attempts": result.attempts, "step_seconds": result.seconds or 0.0})
        if result.outputs:
            run_tree.log_dict(result.run_id, result.outputs, "outputs.json")
            run_tree.log_metrics(result.run_id, {f"output.{k}": float(v) for k, v in result.outputs.items()
                                                 if isinstance(v, (int, float)) and not isinstance(v, bool)})
        status = {FINISHED: "FINISHED", UNCHANGED: "FINISHED", KILLED: "KILLED"}.get(result.status, "FAILED")
        tracking.end_run(result.run_id, result.error if status != "FINISHED" else None, status=status)

    def close(self, status: str, steps: dict[str, StepResult], seconds: float) -> None:
        run_tree.set_tags(self.run_id, {f"step.{name}": r.status for name, r in steps.items()})
        run_tree.log_dict(self.run_id, {n: dataclasses.asdict(r) for n, r in steps.items()}, "steps.json")
        run_tree.log_metrics(self.run_id, {"pipeline_seconds": seconds})
        failed = [n for n, r in steps.items() if r.status in (FAILED, KILLED)]
        error = None if status == FINISHED else f"steps not finished: {', '.join(failed or steps)}"
        tracking.end_run(self.run_id, error, status="KILLED" if status == KILLED else None)


# ---- reading a pipeline run back ------------------------------------------------------------------

def step_runs(pipeline_run_id: str) -> dict[str, Any]:
    """The step runs of a pipeline run, by step name, in the order they started."""
    return {r.data.tags.get(STEP_TAG, r.info.run_name): r for r in run_tree.children(pipeline_run_id)}


def runs_made_by(step_run) -> list:
    """Runs nested under a step (e.g. the training run its notebook made), in every experiment.
    For a step skipped as unchanged, the runs of the step run that did the work."""
    return run_tree.children(step_run.data.tags.get(CACHED_FROM_TAG, step_run.info.run_id))


def latest_pipeline_run(pipeline: str) -> str | None:
    """The most recent MLflow run of the named pipeline, for notebooks opened by hand."""
    return run_tree.latest_run({PIPELINE_TAG: pipeline, KIND_TAG: "pipeline"})


@dataclasses.dataclass(frozen=True)
class MainMetric:
    """What a run's task judges it by: the metric's name and whether higher ("max") or lower ("min") is better."""

    name: str
    mode: str

    @property
    def better(self) -> str:
        return "higher" if self.mode == "max" else "lower"

    def gain(self, value: float, baseline: float) -> float:
        """How much better `value` is than `baseline`: positive when it wins, whichever way is better."""
        return value - baseline if self.mode == "max" else baseline - value


def main_metric(run) -> MainMetric | None:
    """The main metric of the task a run trained (its `task` param, else its `task` tag); None for a run
    of no task, or of a task no installed package declares any more."""
    name = run.data.params.get("task") or run.data.tags.get("task")
    if not name:
        return None
    try:
        task = get_task(name)
    except ConfigError:
        return None
    return MainMetric(task.main_metric, task.main_metric_mode)


def training_runs(pipeline_run_id: str) -> list[tuple[str, Any]]:
    """(step name, run) for every run under the pipeline run that logged its task's main test metric
    (test_accuracy for a classifier, test_wer for transcribe, test_perplexity for generate, ...)."""
    found = []
    for name, step in step_runs(pipeline_run_id).items():
        for run in runs_made_by(step):
            metric = main_metric(run)
            if metric is not None and metric.name in run.data.metrics:
                found.append((name, run))
    return found
