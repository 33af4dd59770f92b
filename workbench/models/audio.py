"""Audio front end: raw 16 kHz waveforms -> normalized log-mel "image", plus SpecAugment masks.

Living inside the model, so a logged model takes raw waveforms; built from Keras' own layers
only, so it reloads anywhere without custom objects.
"""

from __future__ import annotations

from keras import layers

SAMPLE_RATE = 16_000
MEL_BINS = 40


def max_frequency(sample_rate: int) -> float:
    """The highest mel band edge for audio recorded at `sample_rate`: below its Nyquist frequency,
    so 8 kHz recordings (nothing above 4 kHz) are not normalized over empty bands."""
    return min(7600.0, 0.475 * sample_rate)


def log_mel_front_end(waves, max_freq: float = 7600.0):
    """(batch, 16000) -> (batch, 98 frames, 40 mel bins, 1), normalized per clip.

    The per-clip normalization after the log removes recording gain (a constant offset in dB).
    """
    x = layers.MelSpectrogram(fft_length=512, sequence_stride=160, sequence_length=400,
                              sampling_rate=SAMPLE_RATE, num_mel_bins=MEL_BINS, min_freq=20.0,
                              max_freq=max_freq, power_to_db=True, top_db=80.0)(waves)  # (batch, mel, time)
    x = layers.Permute((2, 1))(x)
    x = layers.Reshape((-1, MEL_BINS, 1))(x)
    return layers.LayerNormalization(axis=[1, 2], name="per_clip_normalization")(x)


def _band_mask(spectrogram, block: tuple[int, int], rate: float, name: str):
    """A training-only 0/1 mask that blanks whole blocks (contiguous frames or mel bands).

    Built from stock layers: ones like the input, pooled to one value per block, dropped by
    Dropout (0 or 1/(1-rate)), clipped back to 0/1 by ReLU(max_value=1), and stretched back to
    the input's size. At inference Dropout passes the ones through, so the mask is all ones."""
    frames, bins = spectrogram.shape[1], spectrogram.shape[2]
    ones = layers.Rescaling(0.0, offset=1.0, name=f"{name}_ones")(spectrogram)
    coarse = layers.AveragePooling2D(block, padding="same", name=f"{name}_blocks")(ones)
    kept = layers.ReLU(max_value=1.0, name=f"{name}_binary")(layers.Dropout(rate, name=f"{name}_drop")(coarse))
    full = layers.UpSampling2D(block, name=f"{name}_stretch")(kept)
    extra_frames, extra_bins = full.shape[1] - frames, full.shape[2] - bins
    return layers.Cropping2D(((0, extra_frames), (0, extra_bins)), name=f"{name}_crop")(full)


def spec_augment(spectrogram, time_block: int = 10, time_rate: float = 0.1,
                 band_block: int = 5, band_rate: float = 0.1):
    """SpecAugment (Park et al. 2019): blank contiguous runs of `time_block` frames and of
    `band_block` mel bands, each run with probability `*_rate`; on the normalized log-mel, blank
    is 0, the clip's mean. The runs lie on a block grid; the waveform's random time shift moves
    the speech against it. Inactive at inference."""
    frames, bins = spectrogram.shape[1], spectrogram.shape[2]
    time_mask = _band_mask(spectrogram, (time_block, bins), time_rate, "time_mask")
    band_mask = _band_mask(spectrogram, (frames, band_block), band_rate, "band_mask")
    return layers.Multiply(name="spec_augment")([spectrogram, time_mask, band_mask])
