"""Audio front end: raw 16 kHz waveforms -> normalized log-mel "image", with SpecAugment masks.

Living inside the model, so a logged model takes raw waveforms.
"""

from __future__ import annotations

import keras
from keras import layers, ops

SAMPLE_RATE = 16_000
MEL_BINS = 40


@keras.saving.register_keras_serializable(package="workbench")
class PeakNormalize(layers.Layer):
    """Scales each clip to peak amplitude 1: recordings differ in gain, words do not."""

    def call(self, waves):
        peak = ops.max(ops.abs(waves), axis=-1, keepdims=True)
        return waves / ops.maximum(peak, 1e-4)


@keras.saving.register_keras_serializable(package="workbench")
class SpecAugment(layers.Layer):
    """Zeroes random time and frequency bands while training (Park et al., 2019)."""

    def __init__(self, time_masks: int = 2, time_width: int = 10, freq_masks: int = 2, freq_width: int = 6,
                 **kwargs):
        super().__init__(**kwargs)
        self.time_masks, self.time_width = time_masks, time_width
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.seed_generator = keras.random.SeedGenerator(1337)

    def _band_mask(self, batch, length, count, width):
        positions = ops.arange(length, dtype="float32")[None, :]
        keep = ops.ones((batch, length))
        for _ in range(count):
            w = keras.random.uniform((batch, 1), 0, width, seed=self.seed_generator)
            start = keras.random.uniform((batch, 1), 0, length, seed=self.seed_generator) - w / 2
            inside = ops.logical_and(positions >= start, positions < start + w)
            keep = keep * (1.0 - ops.cast(inside, "float32"))
        return keep

    def call(self, spectrogram, training=None):  # (batch, time, mel, 1)
        if not training:
            return spectrogram
        shape = ops.shape(spectrogram)
        time_keep = self._band_mask(shape[0], shape[1], self.time_masks, self.time_width)
        freq_keep = self._band_mask(shape[0], shape[2], self.freq_masks, self.freq_width)
        return spectrogram * time_keep[:, :, None, None] * freq_keep[:, None, :, None]

    def get_config(self):
        return {**super().get_config(), "time_masks": self.time_masks, "time_width": self.time_width,
                "freq_masks": self.freq_masks, "freq_width": self.freq_width}


def log_mel_front_end(waves):
    """(batch, 16000) -> (batch, 98 frames, 40 mel bins, 1), normalized per clip."""
    x = PeakNormalize()(waves)
    x = layers.MelSpectrogram(fft_length=512, sequence_stride=160, sequence_length=400,
                              sampling_rate=SAMPLE_RATE, num_mel_bins=MEL_BINS, min_freq=20.0,
                              max_freq=7600.0, power_to_db=True, top_db=80.0)(x)  # (batch, mel, time)
    x = layers.Permute((2, 1))(x)
    x = layers.Reshape((-1, MEL_BINS, 1))(x)
    return layers.LayerNormalization(axis=[1, 2], name="per_clip_normalization")(x)
