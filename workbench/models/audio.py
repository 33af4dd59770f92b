"""Audio front end: raw 16 kHz waveforms -> normalized log-mel "image", plus SpecAugment-style masks.

Living inside the model, so a logged model takes raw waveforms; built from Keras' own layers
only, so it reloads anywhere without custom objects.
"""

from __future__ import annotations

from keras import layers

SAMPLE_RATE = 16_000
MEL_BINS = 40


def log_mel_front_end(waves):
    """(batch, 16000) -> (batch, 98 frames, 40 mel bins, 1), normalized per clip.

    The per-clip normalization after the log removes recording gain (a constant offset in dB).
    """
    x = layers.MelSpectrogram(fft_length=512, sequence_stride=160, sequence_length=400,
                              sampling_rate=SAMPLE_RATE, num_mel_bins=MEL_BINS, min_freq=20.0,
                              max_freq=7600.0, power_to_db=True, top_db=80.0)(waves)  # (batch, mel, time)
    x = layers.Permute((2, 1))(x)
    x = layers.Reshape((-1, MEL_BINS, 1))(x)
    return layers.LayerNormalization(axis=[1, 2], name="per_clip_normalization")(x)


def spec_augment(spectrogram, frame_rate: float = 0.1, band_rate: float = 0.1):
    """Training-only masking of whole time frames and whole mel bands (SpecAugment-style, after
    Park et al. 2019, with scattered rather than contiguous masks). Inactive at inference."""
    x = layers.Dropout(frame_rate, noise_shape=(None, None, 1, 1), name="frame_mask")(spectrogram)
    return layers.Dropout(band_rate, noise_shape=(None, 1, None, 1), name="band_mask")(x)
