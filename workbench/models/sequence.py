"""Sequence blocks: word embeddings (learned or from GloVe), Kim's CNN, token + position
embedding and a self-attention encoder block.

Built from Keras' own layers and ops only, so a saved model reloads anywhere without
workbench-specific custom objects.
"""

from __future__ import annotations

from keras import layers, ops

KIM_WIDTHS = (3, 4, 5)   # Kim (2014): n-gram detectors of three widths,
KIM_FILTERS = 100        # 100 of each,
KIM_DROPOUT = 0.5        # and dropout 0.5 before the classifier


def word_embedding(vocabulary: list[str], width: int, embeddings: str, seed: int, mask_zero: bool = False,
                   name: str = "token_embedding"):
    """An Embedding over a TextVectorization vocabulary: learned from scratch at `width`, or
    starting from GloVe's 50-d rows (fine-tuned for "glove", frozen for "glove-frozen").
    Returns the layer and, with GloVe, how many words GloVe had."""
    if embeddings == "learned":
        return layers.Embedding(len(vocabulary), width, mask_zero=mask_zero, name=name), None
    from workbench.models import glove

    matrix, found = glove.embedding_matrix(vocabulary, seed)
    layer = layers.Embedding(len(vocabulary), glove.WIDTH, mask_zero=mask_zero, name=name,
                             trainable=embeddings == "glove")
    layer.build((None,))
    layer.embeddings.assign(matrix)  # assigned, not an initializer: the matrix stays out of the model's config
    return layer, found


def kim_cnn(x, activation: str, weight_penalty=None):
    """Parallel convolutions over word windows, each max-pooled over time, then dropout."""
    pooled = [layers.GlobalMaxPooling1D()(layers.Conv1D(KIM_FILTERS, width, activation=activation,
                                                        kernel_regularizer=weight_penalty)(x))
              for width in KIM_WIDTHS]
    return layers.Dropout(KIM_DROPOUT)(layers.Concatenate()(pooled))


def token_and_position_embedding(token_ids, sequence_length: int, token_embedding):
    """Embeds each token and adds a learned embedding of its position (of the tokens' width)."""
    tokens = token_embedding(token_ids)
    positions = ops.expand_dims(ops.arange(sequence_length), 0)
    return tokens + layers.Embedding(sequence_length, token_embedding.output_dim, name="position_embedding")(positions)


def transformer_encoder(x, heads: int, width: int, feed_forward: int, dropout: float, activation: str):
    """Post-norm encoder block: self-attention, then a position-wise feed-forward layer."""
    attention = layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads, dropout=dropout)(x, x)
    x = layers.LayerNormalization(epsilon=1e-6)(x + layers.Dropout(dropout)(attention))
    hidden = layers.Dense(feed_forward, activation=activation)(x)
    hidden = layers.Dense(width)(layers.Dropout(dropout)(hidden))
    return layers.LayerNormalization(epsilon=1e-6)(x + hidden)
