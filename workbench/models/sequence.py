"""Sequence blocks: token + position embedding and a self-attention encoder block.

Built from Keras' own layers and ops only, so a saved model reloads anywhere without
workbench-specific custom objects.
"""

from __future__ import annotations

from keras import layers, ops


def token_and_position_embedding(token_ids, sequence_length: int, vocabulary_size: int, width: int):
    """Embeds each token and adds a learned embedding of its position."""
    tokens = layers.Embedding(vocabulary_size, width, name="token_embedding")(token_ids)
    positions = ops.expand_dims(ops.arange(sequence_length), 0)
    return tokens + layers.Embedding(sequence_length, width, name="position_embedding")(positions)


def transformer_encoder(x, heads: int, width: int, feed_forward: int, dropout: float, activation: str):
    """Post-norm encoder block: self-attention, then a position-wise feed-forward layer."""
    attention = layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads, dropout=dropout)(x, x)
    x = layers.LayerNormalization(epsilon=1e-6)(x + layers.Dropout(dropout)(attention))
    hidden = layers.Dense(feed_forward, activation=activation)(x)
    hidden = layers.Dense(width)(layers.Dropout(dropout)(hidden))
    return layers.LayerNormalization(epsilon=1e-6)(x + hidden)
