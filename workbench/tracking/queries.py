"""Reading runs back from the store: experiments by name, runs matching a filter, per-epoch metric
values, a run's parameters, and the model a run logged. What `workbench.lab` compares and explains.
"""

from __future__ import annotations

from typing import Any, Iterable

import mlflow
from mlflow.entities import Run

from workbench import tracking


def experiments(names: str | Iterable[str] | None) -> dict[str, str]:
    """{experiment id: name} for the given name(s); every experiment for None."""
    client = tracking.client()
    if names is None:
        return {e.experiment_id: e.name for e in client.search_experiments()}
    found = {}
    for name in [names] if isinstance(names, str) else list(names):
        match = client.get_experiment_by_name(name)
        if match is None:
            known = ", ".join(e.name for e in client.search_experiments()) or "none yet"
            raise LookupError(f"no MLflow experiment named {name!r} (experiments: {known})")
        found[match.experiment_id] = match.name
    return found


def search_runs(experiment_ids: Iterable[str], filter_string: str, max_results: int):
    """The matching runs as MLflow's pandas table (`tags.*`, `params.*`, `metrics.*` columns), newest first."""
    tracking.client()  # points MLflow's search at this home's store
    return mlflow.search_runs(experiment_ids=list(experiment_ids), filter_string=filter_string,
                              max_results=max_results, order_by=["attributes.start_time DESC"],
                              output_format="pandas")


def metric_steps(run_ids: Iterable[str], metric: str) -> dict[str, dict[int, float]]:
    """{run id: {step: value}} of one metric; a resumed run keeps the last value of a step."""
    client = tracking.client()
    steps = {}
    for run_id in run_ids:
        points = sorted(client.get_metric_history(run_id, metric), key=lambda p: p.timestamp)
        steps[run_id] = {p.step: p.value for p in points}
    return steps


def run_and_experiment_ids(run: Any) -> tuple[str, str]:
    """(run id, experiment id) of a run given by id, as an MLflow Run, or as a mapping holding both
    (a row of `workbench.lab.compare.find_runs`)."""
    if isinstance(run, str):
        run = tracking.client().get_run(run)
    if isinstance(run, Run):
        return run.info.run_id, run.info.experiment_id
    return run["run_id"], run["experiment_id"]


def get_run(run_id: str) -> Run:
    return tracking.client().get_run(run_id)


def run_params(run_id: str) -> dict[str, str]:
    return tracking.client().get_run(run_id).data.params


def existing_run_params(run_id: str, field: str) -> dict[str, str]:
    """A run's params, or a ConfigError naming `field` when no run has that id."""
    from mlflow.exceptions import MlflowException

    from workbench.errors import ConfigError

    try:
        return run_params(run_id)
    except MlflowException:
        raise ConfigError(field, run_id, f"the id of a run in the tracking store ({tracking.tracking_uri()})") from None


def first_with_logged_model(run_ids: Iterable[str]) -> str | None:
    """The first of the runs that logged a model (tuning trials log none), or None."""
    client = tracking.client()
    for run_id in run_ids:
        run = client.get_run(run_id)
        if run.outputs and run.outputs.model_outputs:
            return run_id
    return None


def load_logged_model(run_id: str):
    """The Keras model a training run logged (MLflow 3 logged model; `runs:/RUN/model` otherwise);
    for a model logged with its own loader (a ServedModel), the network inside it."""
    import mlflow.keras
    import mlflow.pyfunc

    run = tracking.client().get_run(run_id)
    outputs = run.outputs.model_outputs if run.outputs else []
    uri = f"models:/{outputs[-1].model_id}" if outputs else f"runs:/{run_id}/model"
    if "keras" in mlflow.models.get_model_info(uri).flavors:
        return mlflow.keras.load_model(uri)
    return mlflow.pyfunc.load_model(uri).unwrap_python_model().served.network


def artifact_files(run_id: str, folder: str) -> list[str]:
    """The paths of the files directly in one artifact folder of a run."""
    return [item.path for item in tracking.client().list_artifacts(run_id, folder) if not item.is_dir]


def download(run_id: str, path: str, destination: str) -> str:
    """One artifact file of a run, copied to `destination` (a folder); returns its local path."""
    return tracking.client().download_artifacts(run_id, path, destination)


def dataset_digests(run_id: str) -> dict[str, str]:
    """The run's logged datasets (name -> digest): what it trained, validated and tested on."""
    return {d.dataset.name: d.dataset.digest for d in get_run(run_id).inputs.dataset_inputs}

