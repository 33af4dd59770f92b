"""One MLflow tree per study: a parent run holding the study's settings, best result and
figures; one child run per trial (created by the trial itself through `workbench.train`).
Re-running a study reopens the same parent."""

from __future__ import annotations

import json
import os

import mlflow
import optuna

from workbench import tracking

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
    else:
        tags = {STUDY_TAG: study_name, STORAGE_TAG: storage, "kind": "study"}
        if os.environ.get("WORKBENCH_STEP_RUN_ID"):  # started by a pipeline step: nest under it
            tags["mlflow.parentRunId"] = os.environ["WORKBENCH_STEP_RUN_ID"]
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


def close_parent(run_id: str, study: optuna.Study, direction_metric: str, error: str | None = None) -> dict:
    """Log counts, the best trial and the Optuna figures; end the parent run."""
    client = tracking.client()
    trials = study.get_trials(deepcopy=False)
    states = {s: sum(t.state.name == s and not t.user_attrs.get("surplus") for t in trials)
              for s in ("COMPLETE", "PRUNED", "FAIL")}
    metrics = {f"trials_{s.lower()}": float(n) for s, n in states.items()}
    figures = {}
    if states["COMPLETE"]:
        best = study.best_trial
        metrics[f"best_{direction_metric}"] = float(best.value)
        metrics["best_trial"] = float(best.number)
        client.set_tag(run_id, "best_params", json.dumps(best.params))
        for key, value in best.params.items():
            client.set_tag(run_id, f"best.{key}", str(value))
        figures = study_figures(study)
        with mlflow.start_run(run_id=run_id):
            for name, figure in figures.items():
                mlflow.log_figure(figure, f"figures/{name}.png")
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    tracking.end_run(run_id, error)
    return figures


def study_figures(study: optuna.Study) -> dict:
    """Optimization history, parameter importances, parallel coordinates, learning curves."""
    import warnings

    from optuna.visualization import matplotlib as plots

    figures = {}
    makers = {"optimization_history": plots.plot_optimization_history,
              "parallel_coordinate": plots.plot_parallel_coordinate,
              "intermediate_values": plots.plot_intermediate_values,
              "param_importances": plots.plot_param_importances}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the matplotlib backend is marked experimental
        for name, make in makers.items():
            try:
                axes = make(study)
            except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importances of one trial
                continue
            axes = axes.ravel()[0] if hasattr(axes, "ravel") else axes
            figure = axes.figure
            figure.set_size_inches(9, 5)
            figure.tight_layout()
            figures[name] = figure
    return figures
