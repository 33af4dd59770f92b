"""The model registry: a new version for each model registered, tagged with its test scores, and an
alias that moves to the new version only when those scores beat the ones of the version holding it
(significantly, when either side has scores over several seeds: see statistics.improves).
"""

from __future__ import annotations

import json

import mlflow
from mlflow.exceptions import MlflowException

from workbench import tracking
from workbench.statistics import improves

SCORES_TAG = "test_scores"  # every seed's test score, as JSON; the score tag holds their mean


def register_if_better(run_id: str, name: str, scores: list[float], alias: str, score_tag: str,
                       higher_is_better: bool = True) -> tuple[str, bool, str | None, str]:
    """Register the model the run logged as a version of `name`, tagged with the mean of `scores` as
    `score_tag`, and move `alias` to it if it beats the current holder.
    Returns (version, alias moved, previous alias version, why)."""
    client = tracking.client()
    model_id = client.get_run(run_id).outputs.model_outputs[0].model_id
    version = mlflow.register_model(f"models:/{model_id}", name)
    client.set_model_version_tag(name, version.version, score_tag, str(sum(scores) / len(scores)))
    client.set_model_version_tag(name, version.version, SCORES_TAG, json.dumps(scores))
    try:
        current = client.get_model_version_by_alias(name, alias)
        current_scores = json.loads(current.tags[SCORES_TAG]) if SCORES_TAG in current.tags else \
            [float(current.tags[score_tag])] if score_tag in current.tags else []
    except MlflowException:
        current, current_scores = None, []
    better, why = improves(current_scores, scores, higher_is_better)
    if better:
        client.set_registered_model_alias(name, alias, version.version)
    return version.version, better, current.version if current else None, why
