"""MLflow runs as a tree: a run's children are the runs tagged with its id as `mlflow.parentRunId`.

Opening runs in a tree, logging to them by id, the queries on the tree, and closing what is left
RUNNING under a run. For code that builds such trees from outside the runs' own processes (a
pipeline run: a parent run, a child per step, under a step the runs its notebook made) without
using MLflow itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from workbench.tracking import client, end_run, owners

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LENGTH = 6000  # MLflow refuses longer parameter values


def create_run(experiment_id: str, name: str, tags: dict[str, str], parent_run_id: str | None = None) -> str:
    """Open a RUNNING run, a child of `parent_run_id` when given; returns its id."""
    tags = {**tags, **owners.owner_tags()}
    if parent_run_id:
        tags = {PARENT_TAG: parent_run_id, **tags}
    return client().create_run(experiment_id, run_name=name, tags=tags).info.run_id


def children(run_id: str) -> list:
    """The runs directly under `run_id`, in every experiment, in the order they started."""
    c = client()
    experiments = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(experiments, f"tags.`{PARENT_TAG}` = '{run_id}'", order_by=["attributes.start_time ASC"])


def close_descendants(run_id: str, reason: str) -> None:
    """End FAILED, with `reason` as their error, the runs anywhere under `run_id` still RUNNING:
    those a killed process could not end itself (a step's training runs, studies)."""
    parents = [run_id]
    while parents:
        for run in children(parents.pop()):
            parents.append(run.info.run_id)
            if run.info.status == "RUNNING":
                end_run(run.info.run_id, reason)


def latest_run(tags: dict[str, str]) -> str | None:
    """The most recent run carrying all of `tags`, in any experiment."""
    c = client()
    experiments = [e.experiment_id for e in c.search_experiments()]
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
    found = c.search_runs(experiments, query, order_by=["attributes.start_time DESC"], max_results=1)
    return found[0].info.run_id if found else None


def set_tags(run_id: str, tags: dict[str, str]) -> None:
    c = client()
    for key, value in tags.items():
        c.set_tag(run_id, key, value)


def log_params(run_id: str, parameters: dict[str, Any]) -> None:
    """Log parameters of any JSON value: strings as they are, anything else as JSON."""
    params = [Param(k, (v if isinstance(v, str) else json.dumps(v, default=str))[:MAX_PARAM_LENGTH])
              for k, v in parameters.items()]
    if params:
        client().log_batch(run_id, params=params)


def log_metrics(run_id: str, metrics: dict[str, float]) -> None:
    c = client()
    for key, value in metrics.items():
        c.log_metric(run_id, key, value)


def log_dict(run_id: str, content: dict, artifact_file: str) -> None:
    client().log_dict(run_id, content, artifact_file)


def attach(run_id: str, folders: dict[str, list[Path]], uri: str | None = None) -> None:
    """Upload files into the run's artifact folders ({folder: files}). `uri` names the tracking
    store where this process's default may be another one (a Dask worker logging for a pipeline)."""
    c = MlflowClient(uri) if uri else client()
    for folder, paths in folders.items():
        for path in paths:
            c.log_artifact(run_id, str(path), folder)


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    client().log_text(run_id, text, artifact_file)

