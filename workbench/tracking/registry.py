"""The model registry: a new version for each model registered, tagged with its test score, and an
alias that moves to the new version only when that score beats the one of the version holding it.
"""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException

from workbench import tracking


def register_if_better(run_id: str, name: str, score: float, alias: str,
                       score_tag: str) -> tuple[str, bool, str | None]:
    """Register the model the run logged as a version of `name`, with `score` as its `score_tag`, and
    move `alias` to it if the score is higher. Returns (version, alias moved, previous alias version)."""
    client = tracking.client()
    model_id = client.get_run(run_id).outputs.model_outputs[0].model_id
    version = mlflow.register_model(f"models:/{model_id}", name)
    client.set_model_version_tag(name, version.version, score_tag, str(score))
    try:
        current = client.get_model_version_by_alias(name, alias)
        current_score = float(current.tags.get(score_tag, "-inf"))
    except MlflowException:
        current, current_score = None, float("-inf")
    better = score > current_score
    if better:
        client.set_registered_model_alias(name, alias, version.version)
    return version.version, better, current.version if current else None
