"""Sequence blocks: token + position embedding and a self-attention encoder block."""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="workbench")
class TokenAndPositionEmbedding(layers.Layer):
    """Embeds token ids and adds a learned embedding of each position."""

    def __init__(self, sequence_length: int, vocabulary_size: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length, self.vocabulary_size, self.width = sequence_length, vocabulary_size, width
        self.tokens = layers.Embedding(vocabulary_size, width, mask_zero=False)
        self.positions = layers.Embedding(sequence_length, width)

    def call(self, token_ids):
        positions = ops.arange(0, ops.shape(token_ids)[-1], 1)
        return self.tokens(token_ids) + self.positions(positions)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "vocabulary_size": self.vocabulary_size, "width": self.width}


def transformer_encoder(x, heads: int, width: int, feed_forward: int, dropout: float, activation: str):
    """Post-norm encoder block: self-attention, then a position-wise feed-forward layer."""
    attention = layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads, dropout=dropout)(x, x)
    x = layers.LayerNormalization(epsilon=1e-6)(x + layers.Dropout(dropout)(attention))
    hidden = layers.Dense(feed_forward, activation=activation)(x)
    hidden = layers.Dense(width)(layers.Dropout(dropout)(hidden))
    return layers.LayerNormalization(epsilon=1e-6)(x + hidden)
