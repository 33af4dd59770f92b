"""Optimizer, learning-rate schedule, loss and metrics: what `model.compile` gets for a run."""

from __future__ import annotations

import keras

from workbench.config import RunConfig
from workbench.data.splits import Splits


def make_optimizer(config: RunConfig, steps_per_epoch: int, warmup_fraction: float = 0.0) -> keras.optimizers.Optimizer:
    """The config's optimizer; with the cosine schedule, a linear warmup over `warmup_fraction` of the steps first
    (fine-tuning a pretrained encoder: large early steps would undo what it learned)."""
    rate = config.learning_rate
    if config.lr_schedule == "cosine":
        steps = max(1, steps_per_epoch * config.epochs)
        warmup = int(warmup_fraction * steps)
        rate = keras.optimizers.schedules.CosineDecay(0.0 if warmup else rate, decay_steps=max(1, steps - warmup),
                                                      warmup_target=rate if warmup else None, warmup_steps=warmup)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=rate)
    return keras.optimizers.Adam(learning_rate=rate)


def compile_model(model: keras.Model, config: RunConfig, task, data: Splits, replicas: int = 1) -> None:
    steps_per_epoch = data.steps_per_epoch(config.batch_size * replicas)
    model.compile(optimizer=make_optimizer(config, steps_per_epoch, task.warmup_fraction_for(config.model)), loss=config.loss,
                  metrics=task.metrics(config, data), jit_compile=config.jit_compile,
                  steps_per_execution=config.steps_per_execution)
