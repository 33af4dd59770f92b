"""In-memory arrays as tf.data batches: for training, and for predictions on any input type."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def input_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int,
                   augment=None) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    options = tf.data.Options()  # in-memory data: workers of a multi-worker run split it by example
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if augment is not None:  # after the cache, so every epoch sees new variations
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predictions through tf.data, which (unlike Keras' array adapter) also takes arrays of strings."""
    return model.predict(tf.data.Dataset.from_tensor_slices(x).batch(batch_size), verbose=0)
