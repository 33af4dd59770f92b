"""Driving models: steering from camera frames (PilotNet, a small CNN, a CNN-LSTM) and a road U-Net.

Every model takes raw frames with values 0..255 (uint8 or float) and does its own cropping and
scaling, so the model logged to MLflow drives from camera frames directly. Steering comes out
through tanh in [-1, 1], the road mask through a sigmoid, both in float32.
"""

from __future__ import annotations

import keras
from keras import layers

from workbench.config import RunConfig
from workbench.models import blocks


def _prepare(x, crop: tuple[int, int]):
    """Crop rows that carry no steering information (e.g. an indicator bar), scale to [-1, 1]."""
    top, bottom = crop
    if top or bottom:
        x = layers.Cropping2D(((top, bottom), (0, 0)))(x)
    return layers.Rescaling(1 / 127.5, offset=-1.0)(x)


def _conv(x, filters: int, size: int, strides: int, config: RunConfig, padding: str = "valid"):
    return layers.Conv2D(filters, size, strides=strides, padding=padding, activation=config.activation,
                         kernel_regularizer=blocks.weight_penalty(config))(x)


def _steering_head(x):
    return layers.Dense(1, activation="tanh", dtype="float32", name="steering")(x)


def pilotnet(config: RunConfig, input_shape: tuple[int, ...], crop: tuple[int, int]) -> keras.Model:
    """NVIDIA's PilotNet shape (5 conv, dense 100/50/10) on the cropped 96-pixel-wide frame."""
    frames = keras.Input(shape=input_shape, name="frame")
    x = _prepare(frames, crop)
    for filters in (24, 36, 48):
        x = _conv(x, filters, 5, 2, config)
    for _ in range(2):
        x = _conv(x, 64, 3, 1, config)
    x = layers.Flatten()(x)
    for units in (100, 50, 10):
        x = blocks.dense(x, units, config)
    return keras.Model(frames, _steering_head(x), name="driving_pilotnet")


def _small_encoder(x, config: RunConfig):
    for filters in (16, 32, 32, 64):
        x = _conv(x, filters, 3, 2, config, padding="same")
    return layers.Flatten()(x)


def small_cnn(config: RunConfig, input_shape: tuple[int, ...], crop: tuple[int, int]) -> keras.Model:
    """Four strided 3x3 convolutions and one small dense layer: a third of PilotNet's compute."""
    frames = keras.Input(shape=input_shape, name="frame")
    x = _small_encoder(_prepare(frames, crop), config)
    x = blocks.dense(x, 32, config)
    return keras.Model(frames, _steering_head(x), name="driving_cnn")


def cnn_lstm(config: RunConfig, input_shape: tuple[int, ...], crop: tuple[int, int]) -> keras.Model:
    """The small CNN on each of `frame_stack` consecutive frames, an LSTM over their features."""
    stack = keras.Input(shape=input_shape, name="frames")  # (frame_stack, H, W, 3), oldest first
    frame = keras.Input(shape=input_shape[1:])
    encoder = keras.Model(frame, blocks.dense(_small_encoder(_prepare(frame, crop), config), 64, config),
                          name="frame_encoder")
    x = layers.TimeDistributed(encoder)(stack)
    x = layers.LSTM(64, kernel_regularizer=blocks.weight_penalty(config))(x)
    x = blocks.dense(x, 32, config)
    return keras.Model(stack, _steering_head(x), name="driving_cnn_lstm")


def unet(config: RunConfig, input_shape: tuple[int, ...], classes: int = 1, context: bool = False) -> keras.Model:
    """A small U-Net (8-16-32 channels, 64 at the bottom) predicting P(road) per pixel, or with
    `classes` > 1 each pixel's class probabilities. `context` adds dilated residual convolutions
    at the bottom (rates 2-16 at 1/8 resolution), so that a pixel's class can depend on things far
    across the frame (which lane holds the ego car)."""
    frames = keras.Input(shape=input_shape, name="frame")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(frames)
    skips = []
    for filters in (8, 16, 32):
        x = blocks.conv_bn(blocks.conv_bn(x, filters, config), filters, config)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = blocks.conv_bn(blocks.conv_bn(x, 64, config), 64, config)
    for rate in (2, 4, 8, 16) if context else ():
        y = layers.Conv2D(64, 3, padding="same", dilation_rate=rate, use_bias=False,
                          kernel_regularizer=blocks.weight_penalty(config))(x)
        y = layers.BatchNormalization(momentum=blocks.BN_MOMENTUM)(y)
        x = layers.Activation(config.activation)(layers.Add()([x, y]))
    x = layers.Dropout(config.dropout)(x) if config.dropout else x
    for filters, skip in zip((32, 16, 8), reversed(skips)):
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
        x = layers.Concatenate()([x, skip])
        x = blocks.conv_bn(blocks.conv_bn(x, filters, config), filters, config)
    if classes > 1:
        probabilities = layers.Conv2D(classes, 1, activation="softmax", dtype="float32", name="classes")(x)
        return keras.Model(frames, probabilities, name="unet")
    road = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="road")(x)
    return keras.Model(frames, road, name="driving_unet")
