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
    from workbench.runs import train
    from workbench.tracking.registry import register_if_better

    merged = replace(data, x_train=np.concatenate([data.x_train, data.x_val]),
                     y_train=np.concatenate([data.y_train, data.y_val]))
    result = train(config, data=merged, parent_run_id=parent_run_id, run_name=f"retrain-{name}",
                   tags={"retrained_on": "train+validation", "kind": "champion-candidate"}, verbose=0)
    score = result.metrics["test_accuracy"]
    version, better, previous = register_if_better(result.run_id, name, score, ALIAS, SCORE_TAG)
    return Registration(name, version, score, better, previous)
