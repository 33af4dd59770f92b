"""One tracked training run: config -> data -> model -> fit -> test once -> everything in MLflow.

`train()` is the single code path behind the notebook, the CLI's --in-process mode, pipelines
and tuning trials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from workbench.config import RunConfig
from workbench.tasks import get_task


@dataclass
class TrainingResult:
    run_id: str
    config: RunConfig
    metrics: dict[str, float]
    history: dict[str, list[float]]
    figures: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, list]] = field(default_factory=dict)
    model: Any = None
    resumed_from_epoch: int = 0


def make_config(config: RunConfig | dict | str | None = None, **overrides: Any) -> RunConfig:
    """Progressive disclosure: train("images"), train(config), train(config, epochs=1), train(task=...)."""
    if isinstance(config, str):
        overrides = {"task": config, **overrides}
        config = None
    values = config.to_dict() if isinstance(config, RunConfig) else dict(config or {})
    return RunConfig.from_dict(values, **overrides)


def load_data(config: RunConfig | dict | str | None = None, **overrides: Any):
    config = make_config(config, **overrides)
    return get_task(config.task).load_data(config)


def train(config: RunConfig | dict | str | None = None, *, run_id: str | None = None, data=None,
          verbose: int = 2, callbacks: list | None = None, parent_run_id: str | None = None,
          run_name: str | None = None, tags: dict[str, str] | None = None, evaluate: bool = True,
          stopped_early: tuple[type[BaseException], ...] = (), **overrides: Any) -> TrainingResult:
    """Train, evaluate on the test split once, compare with the classical baseline, log it all.

    Invalid configs and unusable data raise before any MLflow run is created (unless `run_id`
    names a run created earlier, which then ends FAILED). Tuning trials pass `evaluate=False`:
    they are judged on validation only, and the test split stays unseen until the final model.
    """
    from workbench import tracking
    from workbench.distribute import place
    from workbench.figures import training_curves
    from workbench.home import checkpoints
    from workbench.training import fit, predict, resolve_epochs, resumable_epoch, seed_everything

    config = make_config(config, **overrides)
    task = get_task(config.task)
    placement = place(config)  # before any other TensorFlow work: it may split devices
    seed_everything(config.seed)
    data = data if data is not None else task.load_data(config)
    epochs_from_data = config.epochs == 0
    config = resolve_epochs(config, task, data, placement.replicas)

    with tracking.tracked_run(config, run_id, parent_run_id=parent_run_id, run_name=run_name, tags=tags,
                              stopped_early=stopped_early, enabled=placement.chief) as run:
        backup_dir = checkpoints(run.run_id if placement.chief else f"worker-{os.getpid()}")
        resumed_from = resumable_epoch(backup_dir)
        if resumed_from:
            print(f"resuming run {run.run_id} at epoch {resumed_from + 1} of {config.epochs}")
            run.set_tags({"resumed_from_epoch": str(resumed_from)})
        run.set_tags(placement.describe())
        if epochs_from_data:
            run.set_tags({"epochs_chosen": f"from the data: up to {config.epochs} epochs, early stopping "
                                           f"after {config.patience} without improvement"})
        print(f"strategy {placement.kind} ({placement.reason}): {placement.replicas} replica(s) on "
              f"{', '.join(placement.devices)}; precision {placement.precision}")
        run.log_metrics({**{f"{split}_examples": n for split, n in data.sizes().items()},
                         "replicas": placement.replicas, "global_batch_size": config.batch_size * placement.replicas})
        run.log_dataset(data)
        if data.notes:  # what the loader changed or skipped, readable beside the run
            run.log_bytes("\n".join(data.notes).encode(), "data_notes.txt")
            run.set_tags({"data_notes": "; ".join(data.notes)[:tracking.MAX_TAG_LENGTH]})

        with placement.strategy.scope():
            model = task.build_model(config, data)
            task.compile(model, config, data, placement.replicas)
        run.log_metrics({"trainable_parameters": sum(int(w.numpy().size) for w in model.trainable_weights)})
        keras_history = fit(model, config, task, data, backup_dir, replicas=placement.replicas,
                            callbacks=[run.epoch_callback(), *task.epoch_callbacks(config, data, run),
                                       *(callbacks or [])], verbose=verbose)

        history = run.metric_history([*keras_history.history, "epoch_seconds"]) or keras_history.history
        metrics = _generalization_gap(history)
        best = max if task.monitor_mode == "max" else min
        metrics[f"best_{task.monitor}"] = best(history[task.monitor])
        figures = {"training_curves": training_curves({k: v for k, v in history.items() if k != "epoch_seconds"})}
        evaluation = None
        if evaluate:  # every worker evaluates: predictions are collective under multi-worker strategies
            evaluation = task.evaluate(model, data, config)
            metrics.update(evaluation.metrics)
            metrics.update(task.test_metrics(model, config, data))
            metrics.update(task.baseline(data, config))
            figures.update(evaluation.figures)
            exported, example = task.exported_model(model, data)
            example_output = predict(exported, example)
        run.log_metrics(metrics)
        for name, figure in figures.items():
            run.log_figure(figure, name)
        if evaluation is not None:
            for name, table in evaluation.tables.items():
                run.log_table(table, name)
            for name, content in evaluation.files.items():
                run.log_bytes(content, name)
            run.log_model(exported, example, example_output)

    return TrainingResult(run.run_id, config, metrics, history, figures,
                          evaluation.tables if evaluation else {}, model, resumed_from)


def _generalization_gap(history: dict[str, list[float]]) -> dict[str, float]:
    """Final-epoch train minus validation: a large positive accuracy gap signals overfitting."""
    gaps = {}
    for name in ("accuracy", "loss"):
        if history.get(name) and history.get(f"val_{name}"):
            gaps[f"train_val_gap_{name}"] = history[name][-1] - history[f"val_{name}"][-1]
    return gaps
