"""Speech-to-text networks trained with CTC: waveform in, per-frame character logits out.

Both models share the log-mel front end of `workbench.models.audio` (inside the model, so the
logged network takes raw 16 kHz audio) and SpecAugment, then cut the frame rate to 25 a
second with two strided convolutions (as Conformer's subsampling does; English speech has
about 15 characters a second, so there is room for CTC's blanks). `ctc-rnn` is the keras-io `ctc_asr` shape scaled to a CPU:
two 2-D convolutions, bidirectional GRU layers, a dense layer to the alphabet plus blank.
`ctc-transformer` is a small transformer encoder (self-attention with a convolutional position
embedding, as wav2vec 2.0 uses) over the same subsampled frames. Built from stock Keras layers,
so the saved network reloads without custom objects.

Labels are fixed-width integer arrays padded with 0, the blank: the loss reads each label's
length from its padding, and every output frame counts (padded audio is silence, which CTC
learns to mark blank).
"""

from __future__ import annotations

import keras
from keras import layers

from workbench.models import blocks
from workbench.models.audio import log_mel_front_end, spec_augment

MODELS = ("ctc-rnn", "ctc-transformer")
TIME_STRIDE = 4  # output frames are 40 ms


def output_frames(samples: int) -> int:
    """Frames the networks emit for `samples` of audio (10 ms mel hop, then TIME_STRIDE)."""
    mel_frames = 1 + samples // 160  # Keras' STFT pads half a window at either end
    return -(-(-(-mel_frames // 2)) // (TIME_STRIDE // 2))


def _subsample(x, config, filters: int = 32):
    """(batch, frames, mel, 1) -> (batch, frames / 4, features): two strided convolutions."""
    x = layers.Conv2D(filters, (5, 5), strides=(2, 2), padding="same", use_bias=False,
                      kernel_regularizer=blocks.weight_penalty(config))(x)
    x = layers.Activation(config.activation)(layers.BatchNormalization(momentum=blocks.BN_MOMENTUM)(x))
    x = layers.Conv2D(filters, (3, 3), strides=(TIME_STRIDE // 2, 2), padding="same", use_bias=False,
                      kernel_regularizer=blocks.weight_penalty(config))(x)
    x = layers.Activation(config.activation)(layers.BatchNormalization(momentum=blocks.BN_MOMENTUM)(x))
    return layers.Reshape((-1, x.shape[2] * x.shape[3]))(x)


def build(config, max_samples: int, classes: int, max_freq: float, rnn_units: int, rnn_layers: int,
          encoder_dim: int, encoder_layers: int, name: str) -> keras.Model:
    waves = keras.Input(shape=(max_samples,), name="waveform")
    x = _subsample(spec_augment(log_mel_front_end(waves, max_freq)), config)
    dropout = config.dropout
    if config.model == "ctc-rnn":
        for _ in range(rnn_layers):
            x = layers.Bidirectional(layers.GRU(rnn_units, return_sequences=True, reset_after=True))(x)
            x = layers.Dropout(dropout)(x) if dropout else x
    else:
        x = layers.Dense(encoder_dim)(x)
        position = layers.DepthwiseConv1D(31, padding="same", activation="gelu")(x)
        x = layers.LayerNormalization()(layers.Add()([x, position]))
        for _ in range(encoder_layers):
            attended = layers.MultiHeadAttention(4, encoder_dim // 4, dropout=dropout)(x, x)
            x = layers.LayerNormalization()(layers.Add()([x, attended]))
            hidden = layers.Dense(2 * encoder_dim, activation="gelu")(x)
            hidden = layers.Dense(encoder_dim)(layers.Dropout(dropout)(hidden) if dropout else hidden)
            x = layers.LayerNormalization()(layers.Add()([x, hidden]))
    logits = layers.Dense(classes, dtype="float32", name="character_logits")(x)
    return keras.Model(waves, logits, name=name)


def ctc_loss(labels, logits):
    """Mean CTC loss per clip; labels padded with 0 (the blank), every output frame counts."""
    from keras import ops

    labels = ops.cast(labels, "int32")
    label_length = ops.sum(ops.cast(ops.not_equal(labels, 0), "int32"), axis=-1)
    frames = ops.shape(logits)[1]
    logit_length = ops.full((ops.shape(logits)[0],), frames, dtype="int32")
    return ops.ctc_loss(labels, ops.cast(logits, "float32"), label_length, logit_length, mask_index=0)


def decode(logits, decoding: str = "greedy", beam_width: int = 16):
    """Best label sequence per clip (int arrays, -1 padded): greedy best path or beam search."""
    import numpy as np
    from keras import ops

    logits = np.asarray(logits, np.float32)
    lengths = np.full((len(logits),), logits.shape[1], np.int32)
    strategy = "beam_search" if decoding == "beam" else "greedy"
    decoded, _ = ops.ctc_decode(logits, lengths, strategy=strategy, beam_width=beam_width, mask_index=0)
    return np.asarray(ops.convert_to_numpy(decoded))[0]
