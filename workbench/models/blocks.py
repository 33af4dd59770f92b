"""Small Keras blocks that read their activation, dropout and weight penalties from a RunConfig."""

from __future__ import annotations

import keras
from keras import layers

from workbench.config import RunConfig

# Keras' 0.99 needs hundreds of steps before its moving statistics are usable for validation;
# 0.9 settles within one epoch even on small datasets.
BN_MOMENTUM = 0.9


def weight_penalty(config: RunConfig):
    if config.l1 == 0 and config.l2 == 0:
        return None
    return keras.regularizers.L1L2(l1=config.l1, l2=config.l2)


def dense(x, units: int, config: RunConfig):
    x = layers.Dense(units, activation=config.activation, kernel_regularizer=weight_penalty(config))(x)
    return layers.Dropout(config.dropout)(x) if config.dropout > 0 else x


def conv_bn(x, filters: int, config: RunConfig, strides: int = 1, activate: bool = True):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_regularizer=weight_penalty(config))(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return layers.Activation(config.activation)(x) if activate else x


def residual_block(x, filters: int, config: RunConfig, strides: int = 1):
    shortcut = x
    y = conv_bn(x, filters, config, strides=strides)
    y = conv_bn(y, filters, config, activate=False)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(shortcut)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM)(shortcut)
    return layers.Activation(config.activation)(layers.Add()([y, shortcut]))


def classifier_head(x, num_classes: int, config: RunConfig):
    """Probabilities in float32 (stable under mixed precision): one sigmoid unit for binary loss."""
    if config.loss == "binary_crossentropy":
        return layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def classification_metric(config: RunConfig):
    """An accuracy that matches the loss' target format, always named 'accuracy'."""
    if config.loss == "sparse_categorical_crossentropy":
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    if config.loss == "binary_crossentropy":
        return keras.metrics.BinaryAccuracy(name="accuracy")
    return keras.metrics.CategoricalAccuracy(name="accuracy")


def classification_targets(y, num_classes: int, config: RunConfig):
    """Integer labels as the loss wants them: one-hot for categorical cross-entropy and MSE."""
    import numpy as np

    if config.loss in ("categorical_crossentropy", "mse"):
        return np.eye(num_classes, dtype=np.float32)[y]
    if config.loss == "binary_crossentropy":
        return y.astype(np.float32)
    return y
