"""What pipeline steps hand on: values a step records for the steps after it, and the MLflow runs
a pipeline run produced.

A step notebook records a value with

    from workbench.pipeline_outputs import record
    record("best_config", {"learning_rate": 0.003, "dropout": 0.1})

and a downstream step receives it as a papermill parameter through a reference in the pipeline
file: `config: "${steps.tune.outputs.best_config}"`. The runner tells the step's kernel where to
write through an environment variable; outside a pipeline `record` does nothing, so the same
notebook still runs by hand in JupyterLab.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

OUTPUTS_ENV = "WORKBENCH_STEP_OUTPUTS"  # JSON file the step's outputs go to
PIPELINE_RUN_ENV = "WORKBENCH_PIPELINE_RUN_ID"  # MLflow run of the whole pipeline run
STEP_RUN_ENV = "WORKBENCH_STEP_RUN_ID"  # MLflow run of this step

PIPELINE_TAG = "workbench.pipeline"
PIPELINE_RUN_TAG = "workbench.pipeline_run"
STEP_TAG = "workbench.step"
STEP_STATUS_TAG = "workbench.step_status"
CACHED_FROM_TAG = "workbench.cached_from"  # an unchanged step points at the run that did the work
KIND_TAG = "kind"

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OutputError(ValueError):
    """A value that cannot be handed downstream (bad name, not JSON)."""


def record(name: str, value: Any) -> None:
    """Hand `value` (anything JSON can hold; numpy scalars and arrays are converted) to downstream
    steps as `${steps.<this step>.outputs.<name>}`. Recording a name twice keeps the last value."""
    if not isinstance(name, str) or not NAME.match(name):
        raise OutputError(f"output name {name!r}: use letters, digits and _ (it appears in "
                          "${steps.STEP.outputs.NAME} references)")
    try:
        encoded = json.loads(json.dumps(value, default=_plain))
    except (TypeError, ValueError) as exc:
        raise OutputError(f"output {name!r}: {exc}; record numbers, strings, booleans, None, "
                          "lists and dicts of them") from None
    path = os.environ.get(OUTPUTS_ENV)
    if not path:
        return  # not inside a pipeline step
    outputs = read_outputs(Path(path))
    outputs[name] = encoded
    _write_json(Path(path), outputs)


def recorded() -> dict[str, Any]:
    """The outputs this step recorded so far ({} outside a pipeline)."""
    path = os.environ.get(OUTPUTS_ENV)
    return read_outputs(Path(path)) if path else {}


def read_outputs(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_json(path: Path, content: Any) -> None:
    """Write through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(content, indent=1, sort_keys=True))
    os.replace(tmp, path)


# ---- reading a pipeline run back from MLflow ----------------------------------------------------

def step_runs(pipeline_run_id: str) -> dict[str, Any]:
    """The step runs of a pipeline run, by step name, in the order they started."""
    from workbench import tracking

    c = tracking.client()
    experiment = c.get_run(pipeline_run_id).info.experiment_id
    runs = c.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{pipeline_run_id}'",
                         order_by=["attributes.start_time ASC"])
    return {r.data.tags.get(STEP_TAG, r.info.run_name): r for r in runs}


def runs_made_by(step_run) -> list:
    """Runs nested under a step (e.g. the training run its notebook made), in every experiment.
    For a step skipped as unchanged, the runs of the step run that did the work."""
    from workbench import tracking

    c = tracking.client()
    source = step_run.data.tags.get(CACHED_FROM_TAG, step_run.info.run_id)
    experiments = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(experiments, f"tags.`mlflow.parentRunId` = '{source}'",
                         order_by=["attributes.start_time ASC"])


def latest_pipeline_run(pipeline: str) -> str | None:
    """The most recent MLflow run of the named pipeline, for notebooks opened by hand."""
    from workbench import tracking

    c = tracking.client()
    experiments = [e.experiment_id for e in c.search_experiments()]
    found = c.search_runs(experiments, f"tags.`{PIPELINE_TAG}` = '{pipeline}' and tags.{KIND_TAG} = 'pipeline'",
                          order_by=["attributes.start_time DESC"], max_results=1)
    return found[0].info.run_id if found else None


def training_runs(pipeline_run_id: str) -> list[tuple[str, Any]]:
    """(step name, run) for every run under the pipeline run that has test metrics."""
    found = []
    for name, step in step_runs(pipeline_run_id).items():
        for run in runs_made_by(step):
            if "test_accuracy" in run.data.metrics:
                found.append((name, run))
    return found
