"""After a study: retrain the best configuration on train+validation (over N seeds when asked), test
it, register the model, and move the `champion` alias only when the new test scores beat the
current champion's: significantly, when either side has several seeds."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from workbench.config import RunConfig

ALIAS = "champion"


@dataclass
class Registration:
    name: str
    version: str
    metric: str             # the task's main test metric
    score: float            # its mean over the retrained seeds
    champion: bool
    previous_champion: str | None
    why: str = ""           # the comparison with the previous champion, in words
    scores: tuple[float, ...] = ()


def retrain_and_register(config: RunConfig, data, name: str, parent_run_id: str, seeds: int = 1) -> Registration:
    """With seeds > 1 the retrains are one seed group; the registered model is its first seed's
    (chosen before any test score is seen), tagged with every seed's score."""
    from workbench.runs import train
    from workbench.seeds import train_seeds
    from workbench.tasks import get_task
    from workbench.tracking import client
    from workbench.tracking.registry import register_if_better

    task = get_task(config.task)
    merged = replace(data, x_train=np.concatenate([data.x_train, data.x_val]),
                     y_train=np.concatenate([data.y_train, data.y_val]))
    tags = {"retrained_on": "train+validation", "kind": "champion-candidate"}
    if seeds == 1:
        result = train(config, data=merged, parent_run_id=parent_run_id, run_name=f"retrain-{name}", tags=tags,
                       verbose=0)
        run_id, scores = result.run_id, [result.metrics[task.main_metric]]
    else:
        group = train_seeds(config, seeds, data=merged, parent_run_id=parent_run_id, run_name=f"retrain-{name}",
                            tags=tags)
        if group.failed:
            raise RuntimeError(f"retraining {name}: seeds failed: {group.failed}")
        run_id = group.run_ids[0]
        scores = [client().get_run(r).data.metrics[task.main_metric] for r in group.run_ids]
    version, better, previous, why = register_if_better(run_id, name, scores, ALIAS, task.main_metric,
                                                        task.main_metric_mode == "max")
    return Registration(name, version, task.main_metric, float(np.mean(scores)), better, previous, why,
                        tuple(scores))
