"""A tuning study's runs: one parent run per study (found again by the study's name and storage,
so a re-run reopens it), holding its settings, best result and figures; one child run per trial.
The Optuna side is `workbench.tuning`'s.
"""

from __future__ import annotations

import json

import mlflow

from workbench import handoff, tracking
from workbench.tracking import owners

STUDY_TAG = "optuna.study"
STORAGE_TAG = "optuna.storage"


def find_parent(study_name: str, storage: str, experiment: str) -> str | None:
    client = tracking.client()
    found = client.search_runs([tracking.experiment_id(experiment)],
                               f"tags.`{STUDY_TAG}` = '{study_name}' and tags.`{STORAGE_TAG}` = '{storage}' "
                               "and tags.kind = 'study'", max_results=1, order_by=["attributes.start_time ASC"])
    return found[0].info.run_id if found else None


def open_parent(study_name: str, storage: str, experiment: str, settings: dict) -> str:
    client = tracking.client()
    experiment_id = tracking.experiment_id(experiment)
    run_id = find_parent(study_name, storage, experiment)
    if run_id:
        client.update_run(run_id, status="RUNNING")
        owners.claim(run_id)
    else:
        tags = {STUDY_TAG: study_name, STORAGE_TAG: storage, "kind": "study", **owners.owner_tags()}
        if handoff.step_run_id():  # started by a pipeline step: nest under it
            tags["mlflow.parentRunId"] = handoff.step_run_id()
        run = client.create_run(experiment_id, run_name=f"study-{study_name}", tags=tags)
        run_id = run.info.run_id
    logged = client.get_run(run_id).data.params
    for key, value in settings.items():
        if key not in logged:  # a re-run keeps the first settings; changes go to tags
            client.log_param(run_id, key, value)
        elif logged[key] != str(value):
            client.set_tag(run_id, f"rerun.{key}", str(value))
    return run_id


def fail_children(parent_run_id: str, trial_numbers: list[int], reason: str) -> None:
    """End the child runs of dead trials FAILED (a killed process could not do it itself)."""
    client = tracking.client()
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    for number in trial_numbers:
        for run in client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}' and "
                                      f"tags.`optuna.trial` = '{number}' and attributes.status = 'RUNNING'"):
            tracking.end_run(run.info.run_id, reason)


def end_parent(run_id: str, metrics: dict[str, float], best_params: dict | None, figures: dict,
               error: str | None = None) -> None:
    """Log the study's outcome on its parent run and end it: the best trial's parameters (None when
    no trial completed) as tags, with the study's figures; then the metrics."""
    client = tracking.client()
    if best_params is not None:
        client.set_tag(run_id, "best_params", json.dumps(best_params))
        for key, value in best_params.items():
            client.set_tag(run_id, f"best.{key}", str(value))
        with mlflow.start_run(run_id=run_id):
            for name, figure in figures.items():
                mlflow.log_figure(figure, f"figures/{name}.png")
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    tracking.end_run(run_id, error)
