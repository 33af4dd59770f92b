"""After a study: retrain the best configuration on train+validation, test it once, register the
model, and move the `champion` alias only when the new test score beats the current champion."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from workbench.config import RunConfig

ALIAS = "champion"
SCORE_TAG = "test_accuracy"


@dataclass
class Registration:
    name: str
    version: str
    test_accuracy: float
    champion: bool
    previous_champion: str | None


def retrain_and_register(config: RunConfig, data, name: str, parent_run_id: str) -> Registration:
    from mlflow.exceptions import MlflowException

    from workbench import tracking
    from workbench.runs import train

    merged = replace(data, x_train=np.concatenate([data.x_train, data.x_val]),
                     y_train=np.concatenate([data.y_train, data.y_val]))
    result = train(config, data=merged, parent_run_id=parent_run_id, run_name=f"retrain-{name}",
                   tags={"retrained_on": "train+validation", "kind": "champion-candidate"}, verbose=0)
    client = tracking.client()
    model_id = client.get_run(result.run_id).outputs.model_outputs[0].model_id
    import mlflow

    version = mlflow.register_model(f"models:/{model_id}", name)
    score = result.metrics["test_accuracy"]
    client.set_model_version_tag(name, version.version, SCORE_TAG, str(score))
    try:
        current = client.get_model_version_by_alias(name, ALIAS)
        current_score = float(current.tags.get(SCORE_TAG, "-inf"))
    except MlflowException:
        current, current_score = None, float("-inf")
    better = score > current_score
    if better:
        client.set_registered_model_alias(name, ALIAS, version.version)
    return Registration(name, version.version, score, better, current.version if current else None)
