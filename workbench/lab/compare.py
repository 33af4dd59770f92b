"""Comparing runs: find and filter them, per-epoch curves, the best run, parameters against a metric.

The same functions back `notebooks/compare.ipynb` and work from any Python session:

    from workbench.lab.compare import find_runs, epoch_curves, best_run
    runs = find_runs("workbench-images", model="cnn", status="FINISHED",
                     where={"test_accuracy": (">=", 0.9)})
    curves = epoch_curves(runs.run_id[:3], "val_accuracy")

Runs come back as a pandas DataFrame with one row per run: identity columns (`run_id`,
`run_name`, `experiment`, `status`, `task`, `dataset`, `model`, ...) then `params.*` and
`metrics.*` columns as MLflow names them.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from workbench.errors import ConfigError

OPERATORS = (">", ">=", "<", "<=", "=", "!=")
IDENTITY_TAGS = {"mlflow.runName": "run_name", "task": "task", "dataset": "dataset", "model": "model",
                 "error": "error", "mlflow.parentRunId": "parent_run_id"}


def find_runs(experiment: str | Iterable[str] | None = None, *, task: str | None = None,
              model: str | None = None, dataset: str | None = None, status: str | None = None,
              where: dict[str, tuple[str, Any]] | None = None, max_results: int = 5000) -> pd.DataFrame:
    """Runs of one experiment (a name), several (names) or all (None), newest first.

    `where` maps a metric name (or `params.NAME`, `tags.NAME`) to (operator, value), e.g.
    {"test_accuracy": (">=", 0.9), "params.optimizer": ("=", "adam")}.
    """
    from workbench.tracking import queries

    experiments = queries.experiments(experiment)
    columns = ["run_id", "run_name", "experiment", "status", "task", "dataset", "model", "start_time",
               "duration_s", "error", "parent_run_id", "experiment_id"]
    if not experiments:
        return pd.DataFrame(columns=columns)
    frame = queries.search_runs(experiments, _filter(task, model, dataset, status, where), max_results)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    for tag, column in IDENTITY_TAGS.items():
        frame[column] = frame.get(f"tags.{tag}")
    frame["experiment"] = frame["experiment_id"].map(experiments)
    frame["duration_s"] = (frame["end_time"] - frame["start_time"]).dt.total_seconds()
    measured = sorted(c for c in frame.columns if c.startswith(("params.", "metrics.")))
    return frame[columns + measured].reset_index(drop=True)


def _filter(task, model, dataset, status, where) -> str:
    clauses = [f"tags.{name} = {_quote(value)}" for name, value in
               (("task", task), ("model", model), ("dataset", dataset)) if value is not None]
    if status is not None:
        clauses.append(f"attributes.status = {_quote(status.upper())}")
    for name, condition in (where or {}).items():
        if not (isinstance(condition, tuple) and len(condition) == 2 and condition[0] in OPERATORS):
            raise ValueError(f"where[{name!r}]: {condition!r} (allowed: an (operator, value) pair with "
                             f"operator one of {', '.join(OPERATORS)})")
        operator, value = condition
        if name.startswith(("params.", "tags.")):
            clauses.append(f"{_column(name)} {operator} {_quote(str(value))}")
        else:
            metric = name.removeprefix("metrics.")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"where[{name!r}]: {value!r} (allowed: a number; metrics are numeric)")
            clauses.append(f"{_column('metrics.' + metric)} {operator} {float(value)!r}")
    return " and ".join(clauses)


def _column(name: str) -> str:
    kind, key = name.split(".", 1)
    return f"{kind}.`{key}`"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def epoch_curves(run_ids: Iterable[str], metric: str) -> pd.DataFrame:
    """One column per run, one row per epoch (MLflow step); a resumed run keeps the last value of a step."""
    from workbench.tracking import queries

    history = queries.metric_steps(run_ids, metric)
    frame = pd.DataFrame({run_id: pd.Series(steps, dtype=float) for run_id, steps in history.items()})
    frame.index.name = "epoch"
    return frame.sort_index()


def best_run(experiment: str | Iterable[str] | None = None, metric: str = "test_accuracy", mode: str = "max",
             **filters: Any) -> pd.Series | None:
    """The run with the highest (mode="max") or lowest ("min") value of `metric`, or None.

    `filters` are those of find_runs (task, model, dataset, status, where)."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode {mode!r} (allowed: max, min)")
    runs = find_runs(experiment, **filters)
    column = f"metrics.{metric.removeprefix('metrics.')}"
    if column not in runs or runs[column].isna().all():
        return None
    best = runs[column].idxmax() if mode == "max" else runs[column].idxmin()
    return runs.loc[best]


def parallel_coordinates(runs: pd.DataFrame, params: list[str], metric: str, ax=None):
    """Parallel-coordinates plot: one vertical axis per parameter and one for the metric, one line
    per run, coloured by the metric. Numeric parameters spanning more than two decades get a log
    axis; others (optimizer, activation, ...) are spaced evenly in sorted order. Returns the Figure."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    metric_column = f"metrics.{metric.removeprefix('metrics.')}"
    if metric_column not in runs:
        raise ValueError(f"metric {metric!r} is not in the runs (metrics: "
                         + ", ".join(c.removeprefix("metrics.") for c in runs if c.startswith("metrics.")) + ")")
    columns = [p if p.startswith("params.") else f"params.{p}" for p in params]
    missing = [c.removeprefix("params.") for c in columns if c not in runs]
    if missing:
        raise ValueError(f"parameters {missing} are not in the runs (params: "
                         + ", ".join(c.removeprefix("params.") for c in runs if c.startswith("params.")) + ")")
    table = runs.dropna(subset=[metric_column])
    axes_values, tick_labels = [], []
    for column in columns + [metric_column]:
        scaled, ticks = _scale_axis(table[column])
        axes_values.append(scaled)
        tick_labels.append(ticks)
    if ax is None:
        fig = Figure(figsize=(1.8 * len(axes_values) + 1.5, 4), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    values = table[metric_column].to_numpy(float)
    low, high = (values.min(), values.max()) if len(values) else (0.0, 1.0)
    colors = colormaps["viridis"]((values - low) / (high - low) if high > low else np.full(len(values), 0.5))
    positions = np.arange(len(axes_values))
    for row in range(len(table)):
        ax.plot(positions, [axis[row] for axis in axes_values], color=colors[row], alpha=0.8, linewidth=1.5)
    ax.vlines(positions, -0.05, 1.05, color="0.3", linewidth=0.8)  # one vertical axis per column
    for position, ticks in zip(positions, tick_labels):
        for where, label in ticks:
            ax.text(position + 0.03, where, label, fontsize=7, va="center")
    ax.set_xticks(positions, [c.split(".", 1)[1] for c in columns + [metric_column]])
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(positions) - 0.6)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"{len(table)} runs: parameters against {metric} (colour)")
    return fig


def _scale_axis(column: pd.Series) -> tuple[list[float], list[tuple[float, str]]]:
    """Values mapped to [0, 1] and a few (position, label) ticks for that axis."""
    numbers = pd.to_numeric(column, errors="coerce")
    if column.notna().any() and numbers.notna().sum() == column.notna().sum():
        values = numbers.to_numpy(float)
        low, high = np.nanmin(values), np.nanmax(values)
        log = low > 0 and high / low > 100
        transform = np.log10 if log else (lambda v: v)
        t_low, t_high = transform(low), transform(high)
        span = (t_high - t_low) or 1.0
        scaled = [(transform(v) - t_low) / span if not math.isnan(v) else float("nan") for v in values]
        ticks = [(0.0, f"{low:.3g}"), (1.0, f"{high:.3g}")] if high > low else [(0.0, f"{low:.3g}")]
        return scaled, ticks
    labels = sorted({str(v) for v in column.dropna()})
    slot = {label: i / max(1, len(labels) - 1) for i, label in enumerate(labels)}
    return [slot.get(str(v), float("nan")) if pd.notna(v) else float("nan") for v in column], \
        [(position, label) for label, position in slot.items()]


def run_url(run: Any, base_url: str | None = None) -> str:
    """The run's page in the MLflow UI (`workbench ui`; WORKBENCH_UI_URL overrides the address).

    `run` is a run id, an MLflow Run, or a row of find_runs."""
    from workbench.tracking import links, queries

    run_id, experiment = queries.run_and_experiment_ids(run)
    return links.run_url(run_id, experiment, base_url)


def summary(runs: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """find_runs' table narrowed to what tells runs apart: identity, `metric`, its baseline and the
    main hyper-parameters, with the `metrics.`/`params.` prefixes dropped."""
    metric = metric.removeprefix("metrics.")
    wanted = ["run_id", "run_name", "experiment", "status", "task", "dataset", "model",
              f"metrics.{metric}", f"metrics.baseline_{metric}", "metrics.train_val_gap_accuracy",
              "params.epochs", "params.optimizer", "params.learning_rate", "params.batch_size",
              "params.dropout", "duration_s", "experiment_id"]
    table = runs[[c for c in wanted if c in runs]].copy()
    return table.rename(columns=lambda c: c.split(".", 1)[1] if c.startswith(("metrics.", "params.")) else c)


def curves_figure(curves: pd.DataFrame, metric: str, labels: dict[str, str] | None = None):
    """epoch_curves' table as overlaid lines, one per run (labelled by `labels`, else the run id)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.subplots()
    for run_id in curves.columns:
        values = curves[run_id].dropna()
        ax.plot(values.index + 1, values.to_numpy(), "-o", markersize=3,
                label=(labels or {}).get(run_id, run_id[:8]))
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if len(curves.columns):
        ax.legend(fontsize=8)
    return fig


def with_links(runs: pd.DataFrame, base_url: str | None = None):
    """find_runs' table as a pandas Styler whose run ids open the run in the MLflow UI."""
    urls = {row.run_id: run_url(row._asdict(), base_url) for row in runs[["run_id", "experiment_id"]].itertuples()}
    return runs.style.format({"run_id": lambda r: f'<a href="{urls[r]}" target="_blank">{r[:8]}</a>'})


def compare_groups(a: str, b: str, metric: str | None = None):
    """B against A, each a seed group (its seeds' values) or a single run (one value): the
    difference of `metric` (default: the task's main metric) with Welch's CI and test."""
    from workbench.statistics import compare
    from workbench.tasks import get_task
    from workbench.tracking import groups, queries

    runs = {}
    for name, run_id in (("A", a), ("B", b)):
        queries.existing_run_params(run_id, name)  # an unknown id is bad input, named
        members = groups.members(run_id) if groups.is_group(run_id) else [queries.get_run(run_id)]
        runs[name] = [r for r in members if r.info.status == "FINISHED"]
        if not runs[name]:
            raise ConfigError(name, run_id, "a FINISHED run, or a seed group with FINISHED seeds")
    if metric is None:
        metric = get_task(runs["A"][0].data.params.get("task", "images")).main_metric
    shared = set.intersection(*(set(r.data.metrics) for r in runs["A"] + runs["B"]))
    if metric not in shared:
        raise ConfigError("metric", metric, "a metric every compared run logged: " + ", ".join(sorted(
            m for m in shared if not m.startswith("system/"))))
    return compare([r.data.metrics[metric] for r in runs["A"]], [r.data.metrics[metric] for r in runs["B"]], metric)


def seed_groups(experiment: str | None = None) -> list[str]:
    """The seed groups' parent run ids (from `workbench train --seeds N`), newest first."""
    from workbench.tracking import queries

    table = queries.search_runs(queries.experiments(experiment), "tags.kind = 'seed_group'", 1000)
    return [] if table.empty else list(table.run_id)
