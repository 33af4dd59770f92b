"""Links into the MLflow UI that land where a newcomer wants to be: the training-runs table, with
each task's key metrics as columns.

MLflow 3's experiment page opens on its GenAI overview unless told `workflowType=machine_learning`,
and its runs table shows no metric column until one is chosen. A view shared through an
experiment tag (`mlflow.sharedViewState.<key>`, what the UI's own "share view" writes) can name
the columns; every experiment a run is logged to gets one. `WORKBENCH_UI_URL` points the links
at a UI elsewhere.
"""

from __future__ import annotations

import json
import os
import sys

UI_URL_ENV = "WORKBENCH_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:5000"  # where `workbench ui` serves the MLflow UI
RUNS_VIEW = "workflowType=machine_learning"
VIEW_KEY = "workbench-training"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"


def training_view(columns: list[str]) -> str:
    """The shared-view state that shows `columns` (metric names) in the runs table, sorted by the first."""
    metrics = [f"metrics.`{name}`" for name in columns]
    return json.dumps({"selectedColumns": metrics, "orderByKey": metrics[0], "orderByAsc": False})


def ui_base(base: str | None = None) -> str:
    return (base or os.environ.get(UI_URL_ENV) or DEFAULT_UI_URL).rstrip("/")


def experiment_url(experiment_id: str, base: str | None = None, with_view: bool = True) -> str:
    """The experiment's training-runs table, with its key metrics as columns (`with_view`)."""
    view = f"&viewStateShareKey={VIEW_KEY}" if with_view else ""
    return f"{ui_base(base)}/#/experiments/{experiment_id}/runs?{RUNS_VIEW}{view}"


def run_url(run_id: str, experiment_id: str, base: str | None = None) -> str:
    return f"{ui_base(base)}/#/experiments/{experiment_id}/runs/{run_id}?{RUNS_VIEW}"


def training_views(base: str | None = None) -> list[tuple[str, str]]:
    """(experiment, link to its training-runs table) for every experiment of the store with runs."""
    from workbench import tracking

    c = tracking.client()
    return [(e.name, experiment_url(e.experiment_id, base, with_view=VIEW_TAG in e.tags))
            for e in c.search_experiments() if c.search_runs([e.experiment_id], max_results=1)]


def print_training_views(base: str) -> str | None:
    """Print each experiment's training-runs link (its test metric, baseline and best validation
    score as columns). Returns the first link."""
    views = training_views(base)
    if not views:
        print("no runs yet: `workbench train` makes one; each experiment's link is printed here then", flush=True)
    for experiment, runs_table in views:
        print(f"  {experiment}: training runs  {runs_table}")
    sys.stdout.flush()
    return views[0][1] if views else None
