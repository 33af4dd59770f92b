"""One tracked training run: config -> data -> model -> fit -> test once -> everything in MLflow.

`train()` is the single code path behind the notebook, the CLI's --in-process mode, pipelines
and tuning trials. Its stages are public, for a run written by hand:

    prepared = prepare("images", epochs=2)   # config, placement, data
    model = build(prepared)                  # compiled; no MLflow run yet
    with tracking.tracked_run(prepared.config) as run:
        history = fit(prepared, model, run)
        log(run, test(prepared, model, history))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from workbench.config import RunConfig
from workbench.tasks import get_task
from workbench.tasks.configure import make_config


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


def load_data(config: RunConfig | dict | str | None = None, **overrides: Any):
    config = make_config(config, **overrides)
    return get_task(config.task).data_for(config)


@dataclass(frozen=True)
class Fork:
    """Start from another run's model after one of its epochs (weights and optimizer state)."""

    origin: str
    epoch: int
    checkpoint: Any  # the .keras file


@dataclass
class Prepared:
    """A run before training: its config (epochs resolved), task, device placement and data."""

    config: RunConfig
    task: Any
    placement: Any
    data: Any
    epochs_from_data: bool
    fork: Fork | None = None


@dataclass
class Tested:
    """What the single pass over the test split produced, ready to log."""

    metrics: dict[str, float]
    figures: dict[str, Any]
    evaluation: Any = None          # the task's Evaluation; None for validation-only runs (tuning trials)
    exported: Any = None            # what is logged as the run's model, with an input example
    example: Any = None
    example_output: Any = None


def prepare(config: RunConfig | dict | str | None = None, *, data=None, fork: Fork | None = None,
            **overrides: Any) -> Prepared:
    """Stage 1: a checked config, the device placement, seeds, the data and the epochs it calls for."""
    from workbench.distribute import place
    from workbench.training import resolve_epochs, seed_everything

    config = make_config(config, **overrides)
    task = get_task(config.task)
    placement = place(config)  # before any other TensorFlow work: it may split devices
    seed_everything(config.seed)
    data = data if data is not None else task.data_for(config)
    epochs_from_data = config.epochs == 0
    config = resolve_epochs(config, task, data, placement.replicas)
    if config.precision == "auto" and placement.on_cpu_alone and fork is None:
        placement = _settle_cpu_precision(config, task, data, placement)
    return Prepared(config, task, placement, data, epochs_from_data, fork)


def _settle_cpu_precision(config: RunConfig, task, data, placement):
    """`precision auto` on one CPU device: bfloat16 where it is native and measured faster."""
    import dataclasses

    import keras

    from workbench.precision import choose_cpu_precision, probes
    from workbench.training import seed_everything

    steps = data.steps_per_epoch(config.batch_size) * config.epochs
    precision, reason = choose_cpu_precision(config, task, data, steps)
    keras.mixed_precision.set_global_policy(precision)
    if probes(steps):
        seed_everything(config.seed)  # a probe drew random numbers: probed or not, such runs start alike
    return dataclasses.replace(placement, precision=precision, precision_reason=reason)


def build(prepared: Prepared):
    """Stage 2: the model (the task's own or the user's function), compiled under the strategy.

    Runs before the MLflow run exists, so a model that cannot be built creates no run."""
    with prepared.placement.strategy.scope():
        if prepared.fork is not None:  # compiled, with the optimizer's state at that epoch
            import keras

            return keras.models.load_model(prepared.fork.checkpoint)
        model = prepared.task.model_for(prepared.config, prepared.data)
        prepared.task.compile(model, prepared.config, prepared.data, prepared.placement.replicas)
    return model


def fit(prepared: Prepared, model, run, callbacks: list | None = None, verbose: int = 2,
        keep_epochs: bool = True) -> dict[str, list[float]]:
    """Stage 3: train on the training split, watched on validation; returns the per-epoch history.

    With `keep_epochs` (and the config's `epoch_checkpoints`) the model after each epoch is kept
    for forks; tuning trials, many and judged on validation only, keep none."""
    from workbench.home import checkpoints, epoch_checkpoints
    from workbench.training import fit as fit_model

    config, task, data = prepared.config, prepared.task, prepared.data
    chief = prepared.placement.chief
    backup_dir = checkpoints(run.run_id if chief else f"worker-{os.getpid()}")
    keras_history = fit_model(model, config, task, data, backup_dir, replicas=prepared.placement.replicas,
                              callbacks=[run.epoch_callback(), *task.epoch_callbacks(config, data, run),
                                         *(callbacks or [])], verbose=verbose,
                              initial_epoch=prepared.fork.epoch if prepared.fork else 0,
                              epochs_dir=epoch_checkpoints(run.run_id) if chief and keep_epochs else None)
    return run.metric_history([*keras_history.history, "epoch_seconds"]) or keras_history.history


def test(prepared: Prepared, model, history: dict[str, list[float]], evaluate: bool = True) -> Tested:
    """Stage 4: the generalization gap and best validation score; with `evaluate`, the one pass
    over the test split, beside the classical baseline."""
    from workbench.data.batches import predict
    from workbench.figures import training_curves
    from workbench.models.served import ServedModel

    config, task, data = prepared.config, prepared.task, prepared.data
    metrics = _generalization_gap(history)
    best = max if task.monitor_mode == "max" else min
    metrics[f"best_{task.monitor}"] = best(history[task.monitor])
    figures = {"training_curves": training_curves({k: v for k, v in history.items() if k != "epoch_seconds"})}
    if not evaluate:
        return Tested(metrics, figures)
    # every worker evaluates: predictions are collective under multi-worker strategies
    evaluation = task.evaluate(model, data, config)
    metrics.update(evaluation.metrics)
    metrics.update(task.test_metrics(model, config, data))
    metrics.update(task.baseline(data, config))
    figures.update(evaluation.figures)
    exported, example = task.exported_model(model, data)
    served = isinstance(exported, ServedModel)  # decodes in Python: raw input in, text out
    output = exported.predict(example) if served else predict(exported, example)
    return Tested(metrics, figures, evaluation, exported, example, output)


def log(run, tested: Tested) -> None:
    """Stage 5: metrics, figures, tables, files and the model into the run."""
    run.log_metrics(tested.metrics)
    for name, figure in tested.figures.items():
        run.log_figure(figure, name)
    if tested.evaluation is not None:
        for name, table in tested.evaluation.tables.items():
            run.log_table(table, name)
        for name, content in tested.evaluation.files.items():
            run.log_bytes(content, name)
        run.log_model(tested.exported, tested.example, tested.example_output)


def start_run(prepared: Prepared, model, run_id: str | None = None, **run_options: Any):
    """Open the run (a notebook's middle cells then fit and test into it) and record what is known
    before the first epoch. In a notebook, a cell that fails ends the run as the `with` block of
    `train()` would: FAILED with the error, or KILLED when interrupted; `finish_run` ends it."""
    from workbench import tracking

    run = tracking.open_run(prepared.config, run_id, enabled=prepared.placement.chief, **run_options)
    try:
        run.resumed_from_epoch = _start(run, prepared, model)
    except BaseException as exc:
        tracking.close_run(run, exc)
        raise
    _close_when_a_cell_fails(run)
    return run


def finish_run(run, tested: Tested) -> None:
    """Log what the test pass produced and end the run FINISHED."""
    from workbench import tracking

    try:
        log(run, tested)
    except BaseException as exc:
        tracking.close_run(run, exc)
        raise
    tracking.close_run(run)


def _close_when_a_cell_fails(run) -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or run.run_id is None:
        return

    def after_cell(result) -> None:
        from workbench import tracking

        if result.error_in_exec is not None:
            tracking.close_run(run, result.error_in_exec)  # no-op once the run has ended
        if result.error_in_exec is not None or tracking.run_status(run.run_id) != "RUNNING":
            shell.events.unregister("post_run_cell", after_cell)

    shell.events.register("post_run_cell", after_cell)


def train(config: RunConfig | dict | str | None = None, *, run_id: str | None = None, data=None,
          verbose: int = 2, callbacks: list | None = None, parent_run_id: str | None = None,
          run_name: str | None = None, tags: dict[str, str] | None = None, evaluate: bool = True,
          stopped_early: tuple[type[BaseException], ...] = (), fork: Fork | None = None,
          **overrides: Any) -> TrainingResult:
    """Train, evaluate on the test split once, compare with the classical baseline, log it all:
    prepare, build, then in the run fit, test and log.

    Invalid configs, unusable data and models that cannot be built raise before any MLflow run
    is created (unless `run_id` names a run created earlier). Tuning trials pass `evaluate=False`:
    they are judged on validation only, and the test split stays unseen until the final model.
    """
    from workbench import tracking

    prepared = prepare(config, data=data, fork=fork, **overrides)
    model = build(prepared)
    config, placement = prepared.config, prepared.placement
    with tracking.tracked_run(config, run_id, parent_run_id=parent_run_id, run_name=run_name, tags=tags,
                              stopped_early=stopped_early, enabled=placement.chief) as run:
        resumed_from = _start(run, prepared, model)
        history = fit(prepared, model, run, callbacks, verbose, keep_epochs=evaluate)
        tested = test(prepared, model, history, evaluate)
        log(run, tested)
    tables = tested.evaluation.tables if tested.evaluation else {}
    return TrainingResult(run.run_id, config, tested.metrics, history, tested.figures, tables, model, resumed_from)


def _start(run, prepared: Prepared, model) -> int:
    """What a run records before its first epoch; returns the epoch it resumes after (0: a new run)."""
    from workbench import tracking
    from workbench.home import checkpoints
    from workbench.models import user
    from workbench.training import resumable_epoch

    config, placement, data = prepared.config, prepared.placement, prepared.data
    resumed_from = resumable_epoch(checkpoints(run.run_id)) if placement.chief else 0
    if resumed_from:
        print(f"resuming run {run.run_id} at epoch {resumed_from + 1} of {config.epochs}")
        run.set_tags({"resumed_from_epoch": str(resumed_from)})
    run.set_tags(placement.describe())
    if prepared.fork is not None:
        run.set_tags({"workbench.forked_from": prepared.fork.origin, "workbench.forked_at_epoch": str(prepared.fork.epoch)})
    if prepared.epochs_from_data:
        run.set_tags({"epochs_chosen": f"from the data: up to {config.epochs} epochs, early stopping "
                                       f"after {config.patience} without improvement"})
    print(f"strategy {placement.kind} ({placement.reason}): {placement.replicas} replica(s) on "
          f"{', '.join(placement.devices)}; precision {placement.precision}")
    run.log_metrics({**{f"{split}_examples": n for split, n in data.sizes().items()},
                     "replicas": placement.replicas, "global_batch_size": config.batch_size * placement.replicas,
                     "trainable_parameters": sum(int(w.numpy().size) for w in model.trainable_weights)})
    run.log_dataset(data)
    if data.notes:  # what the loader changed or skipped, readable beside the run
        run.log_bytes("\n".join(data.notes).encode(), "data_notes.txt")
        run.set_tags({"data_notes": "; ".join(data.notes)[:tracking.MAX_TAG_LENGTH]})
    if user.is_reference(config.model):  # the user's model code, beside the run it trained
        source = user.source(config.model)
        if source:
            run.log_bytes(source[1], f"model_source/{source[0]}")
    return resumed_from


def _generalization_gap(history: dict[str, list[float]]) -> dict[str, float]:
    """Final-epoch train minus validation: a large positive accuracy gap signals overfitting."""
    gaps = {}
    for name in ("accuracy", "loss"):
        if history.get(name) and history.get(f"val_{name}"):
            gaps[f"train_val_gap_{name}"] = history[name][-1] - history[f"val_{name}"][-1]
    return gaps
