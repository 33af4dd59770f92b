"""Training-time audio perturbation shared by the speech tasks: background noise at a random SNR
relative to the speech's own power, on most examples, and a random gain (tf.data ops)."""

from __future__ import annotations


def noisy(wave, noise, samples: int, power, snr_db: tuple[float, float], probability: float,
          gain: tuple[float, float]):
    """`wave` plus a random `samples`-long stretch of `noise` scaled to a random SNR over `power`
    (with `probability`), times a random gain."""
    import tensorflow as tf

    start = tf.random.uniform((), 0, tf.shape(noise)[0] - samples, dtype=tf.int32)
    segment = noise[start:start + samples]
    snr = tf.random.uniform((), *snr_db)
    scale = tf.sqrt(power / ((tf.reduce_mean(segment ** 2) + 1e-12) * 10 ** (snr / 10)))
    wave = wave + scale * segment * tf.cast(tf.random.uniform(()) < probability, tf.float32)
    return wave * tf.random.uniform((), *gain)
