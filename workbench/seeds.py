"""Seed groups: one configuration trained over N seeds, as one group that says how sure it is.

    group = workbench.train_seeds("images", seeds=5, dataset="digits", epochs=2)
    group.summaries["test_accuracy"].describe()   # mean ± std (n=5, 95% CI ...)

A parent MLflow run holds, for every final metric, its mean, standard deviation and the 95%
confidence interval of the mean (`test_accuracy_mean`, `..._std`, `..._ci95_low`, `..._ci95_high`),
and the per-epoch mean and std curves (`epoch_mean/val_accuracy`, `epoch_std/...`) with a figure of
the bands; a child run
per seed holds everything a single run does. `workbench compare A B` tests two groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.config import MAX_SEED, RunConfig
from workbench.errors import BadInput, ConfigError, interruption
from workbench.statistics import Summary, summarize
from workbench.tasks import get_task
from workbench.tasks.configure import make_config

CURVES = ("loss", "val_loss", "accuracy", "val_accuracy")  # drawn with bands when the runs logged them


@dataclass
class GroupResult:
    parent_run_id: str
    config: RunConfig
    seeds: list[int]
    run_ids: list[str] = field(default_factory=list)
    summaries: dict[str, Summary] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)  # seed -> why its run failed

    @property
    def main_metric(self) -> str:
        return get_task(self.config.task).main_metric


def seed_list(first: int, seeds: Any) -> list[int]:
    """seeds N -> first, first+1, ..., first+N-1 (a checked count: ConfigError otherwise, also when
    the last seed would pass MAX_SEED)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError("seeds", seeds, "an integer >= 1: runs of one configuration with seeds "
                                          "seed, seed+1, ...")
    if first + seeds - 1 > MAX_SEED:
        raise ConfigError("seeds", seeds, f"at most {MAX_SEED - first + 1} with seed {first}: the seeds "
                                          f"seed, seed+1, ..., seed+N-1 must stay in 0..{MAX_SEED} (2**32 - 1)")
    return [first + i for i in range(seeds)]


def train_seeds(config: RunConfig | dict | str | None = None, seeds: int = 5, *, in_process: bool = True,
                cell_timeout: int = 3600, verbose: int = 0, data=None, parent_run_id: str | None = None,
                run_name: str | None = None, tags: dict[str, str] | None = None, evaluate: bool = True,
                callbacks: list | None = None, stopped_early: tuple[type[BaseException], ...] = (),
                **overrides: Any) -> GroupResult:
    """Train `config` once per seed (in this process, or each through notebooks/train.ipynb) as
    children of one parent run, then write the group's statistics on the parent.

    In process, `data`, `evaluate`, `callbacks` and `stopped_early` go to every seed's
    `workbench.train` (a tuning trial passes its data, evaluate=False and its pruner); the group
    nests under `parent_run_id` and carries `tags` and `run_name` when given.

    Bad input raises before any run exists. A seed whose run fails is reported, the others go
    on; the parent then ends FAILED naming it. Interrupted, the parent ends KILLED; stopped early
    (a pruned trial), it ends FINISHED with a `stopped` tag."""
    from workbench import tracking
    from workbench.tracking import groups

    config = make_config(config, **overrides)
    result = GroupResult("", config, seed_list(config.seed, seeds))
    result.parent_run_id = parent = groups.open_group(config, result.seeds, parent_run_id, run_name, tags)
    options = dict(data=data, evaluate=evaluate, callbacks=callbacks, stopped_early=stopped_early)
    try:
        for seed in result.seeds:
            print(f"seed {seed} ({result.seeds.index(seed) + 1} of {len(result.seeds)})", flush=True)
            run_id, error = _train_one(config.replace(seed=seed), parent, in_process, cell_timeout, verbose,
                                       tags, options)
            if run_id:
                result.run_ids.append(run_id)
            if error:
                result.failed[seed] = error
        result.summaries = summarize_group(parent, config)
    except KeyboardInterrupt as exc:
        tracking.end_run(parent, interruption(exc), status="KILLED")
        raise
    except stopped_early as exc:
        tracking.client().set_tag(parent, "stopped", type(exc).__name__)
        tracking.end_run(parent)
        raise
    except BaseException as exc:
        tracking.end_run(parent, f"{type(exc).__name__}: {exc}")
        raise
    if result.failed:
        tracking.end_run(parent, "; ".join(f"seed {s}: {e}" for s, e in result.failed.items()))
    else:
        tracking.end_run(parent)
    return result


def _train_one(config: RunConfig, parent: str, in_process: bool, cell_timeout: int, verbose: int,
               tags: dict[str, str] | None, options: dict):
    """(run id, error or None) of one seed's run, a child of `parent`."""
    from workbench.tracking import groups

    if in_process or options["data"] is not None:
        from workbench.runs import train

        try:
            return train(config, parent_run_id=parent, tags={**(tags or {}), **groups.child_tags(parent)},
                         verbose=verbose, run_name=f"seed-{config.seed}", **options).run_id, None
        except (BadInput, *options["stopped_early"]):
            raise
        except Exception as exc:  # one seed failing must not lose the others
            return None, f"{type(exc).__name__}: {exc}"
    from workbench import handoff
    from workbench.notebooks import environment, train_with_notebook

    context = handoff.with_run_tags({}, {**groups.child_tags(parent), "mlflow.runName": f"seed-{config.seed}"})
    with environment({handoff.RUN_CONTEXT_ENV: context[handoff.RUN_CONTEXT_ENV]}):
        outcome = train_with_notebook(config, cell_timeout=cell_timeout)
    return outcome.run_id, outcome.error


def summarize_group(parent: str, config: RunConfig) -> dict[str, Summary]:
    """Mean, std and CI of every final metric the group's finished runs share, and the mean
    curves with bands, written on the parent."""
    from workbench import tracking
    from workbench.tracking import groups, queries

    runs = [r for r in groups.members(parent) if r.info.status == "FINISHED"]
    if not runs:
        return {}
    shared = set.intersection(*(set(r.data.metrics) for r in runs))
    summaries = {name: summarize([r.data.metrics[name] for r in runs])
                 for name in sorted(shared) if not name.startswith("system/")}
    metrics = {"seeds_finished": len(runs)}
    for name, s in summaries.items():
        metrics.update({f"{name}_mean": s.mean, f"{name}_std": s.std})
        if s.n > 1:
            metrics.update({f"{name}_ci95_low": s.ci_low, f"{name}_ci95_high": s.ci_high})
    curves, bands = {}, {}
    task = get_task(config.task)
    for key in dict.fromkeys((*CURVES, task.monitor)):
        steps = queries.metric_steps([r.info.run_id for r in runs], key)
        series = [list(dict(sorted(s.items())).values()) for s in steps.values() if s]
        if len(series) != len(runs):
            continue
        length = min(map(len, series))  # early stopping may end seeds at different epochs
        values = np.array([s[:length] for s in series])
        curves[f"epoch_mean/{key}"] = values.mean(axis=0).tolist()
        if len(runs) > 1:
            curves[f"epoch_std/{key}"] = values.std(axis=0, ddof=1).tolist()
        bands[key] = values
    groups.log_summary(parent, metrics, curves, _bands_figure(bands, len(runs)) if bands else None)
    tracking.client().set_tag(parent, "main_metric", task.main_metric)
    return summaries


def _bands_figure(bands: dict[str, np.ndarray], n: int):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(bands), 3.6), layout="constrained")
    for ax, (name, values) in zip(np.atleast_1d(fig.subplots(1, len(bands))), bands.items()):
        epochs = np.arange(1, values.shape[1] + 1)
        mean, std = values.mean(axis=0), values.std(axis=0, ddof=1) if n > 1 else np.zeros(values.shape[1])
        for seed_curve in values:
            ax.plot(epochs, seed_curve, color="tab:gray", linewidth=0.6, alpha=0.6)
        ax.plot(epochs, mean, color="tab:blue", linewidth=2, label="mean")
        ax.fill_between(epochs, mean - std, mean + std, color="tab:blue", alpha=0.2, label="± 1 std")
        ax.set(title=f"{name} over {n} seeds", xlabel="epoch")
        ax.legend(fontsize=8)
    return fig
