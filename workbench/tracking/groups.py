"""Seed groups in MLflow: a parent run per group, a child run per seed, the statistics on the parent."""

from __future__ import annotations

import json
import time

from workbench import handoff, tracking
from workbench.tracking import owners
from workbench.config import RunConfig

GROUP_TAG = "workbench.seed_group"  # on the parent (its own id) and on every child
SEEDS_TAG = "workbench.seeds"
KIND = "seed_group"


def open_group(config: RunConfig, seeds: list[int], parent_run_id: str | None = None, run_name: str | None = None,
               tags: dict[str, str] | None = None) -> str:
    """A RUNNING parent run holding the group's configuration (without its seed) and its seeds; under
    `parent_run_id` (a study, a pipeline step) when given."""
    c = tracking.client()
    name = run_name or f"{config.model.rpartition(':')[2]}-{config.dataset.split('/')[-1]}-{len(seeds)}seeds"
    tags = {**(tags or {}), **owners.owner_tags(), "kind": KIND, SEEDS_TAG: json.dumps(seeds), "task": config.task, "model": config.model,
            "dataset": config.dataset}
    parent_run_id = parent_run_id or handoff.step_run_id()  # trained by a pipeline step: the group nests under it
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = c.create_run(tracking.experiment_id(config.experiment, tracking.key_metrics(config)), run_name=name,
                       tags=tags)
    parent = run.info.run_id
    c.set_tag(parent, GROUP_TAG, parent)
    for key, value in {**config.to_dict(), "seeds": len(seeds)}.items():
        if key != "seed":
            c.log_param(parent, key, value)
    return parent


def child_tags(parent: str) -> dict[str, str]:
    """Tags that make a run one seed of the group."""
    return {"mlflow.parentRunId": parent, GROUP_TAG: parent}


def members(parent: str) -> list:
    """The group's runs, one per seed, oldest first."""
    c = tracking.client()
    experiment = c.get_run(parent).info.experiment_id
    runs = c.search_runs([experiment], f"tags.`{GROUP_TAG}` = '{parent}'", order_by=["attributes.start_time ASC"])
    return [r for r in runs if r.info.run_id != parent]


def is_group(run_id: str) -> bool:
    return tracking.client().get_run(run_id).data.tags.get("kind") == KIND


def log_summary(parent: str, metrics: dict[str, float], curves: dict[str, list[float]], figure=None) -> None:
    """The statistics (final metrics' mean, std, CI) and the mean curves, per epoch, on the parent."""
    from mlflow.entities import Metric

    c = tracking.client()
    now = int(time.time() * 1000)
    entries = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
    entries += [Metric(name, float(value), now, step) for name, values in curves.items()
                for step, value in enumerate(values)]
    for start in range(0, len(entries), 900):  # MLflow takes at most 1000 metrics per batch
        c.log_batch(parent, metrics=entries[start:start + 900])
    if figure is not None:
        c.log_figure(parent, figure, "figures/seed_curves.png")
