"""Optimizer, learning-rate schedule, loss and metrics: what `model.compile` gets for a run."""

from __future__ import annotations

import keras

from workbench.config import RunConfig
from workbench.data.splits import Splits


def make_optimizer(config: RunConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    rate = config.learning_rate
    if config.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, steps_per_epoch * config.epochs))
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=rate)
    return keras.optimizers.Adam(learning_rate=rate)


def compile_model(model: keras.Model, config: RunConfig, task, data: Splits, replicas: int = 1) -> None:
    steps_per_epoch = data.steps_per_epoch(config.batch_size * replicas)
    model.compile(optimizer=make_optimizer(config, steps_per_epoch), loss=config.loss,
                  metrics=task.metrics(config, data), jit_compile=config.jit_compile,
                  steps_per_execution=config.steps_per_execution)
