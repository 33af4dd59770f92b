"""Next-token networks: an LSTM and a GPT-shaped decoder (causal self-attention), both mapping a
window of token ids (batch, context) to next-token probabilities (batch, context, vocabulary).

Both are causal: the output at position i depends on tokens 0..i only, so a prompt shorter than
the context can be right-padded and read at its last position (what sampling does).
"""

from __future__ import annotations

import keras
from keras import layers, ops

DEFAULT_WIDTH = {"lstm": 256, "gpt": 128}  # sized for a CPU: a few hundred thousand weights
DEFAULT_DEPTH = {"lstm": 2, "gpt": 4}
HEAD_WIDTH = 32  # heads = width / 32


@keras.saving.register_keras_serializable(package="workbench")
class PositionEmbedding(layers.Layer):
    """Learnt position vectors added to the token vectors (GPT-2)."""

    def __init__(self, length: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.length, self.width = length, width

    def build(self, input_shape):
        self.positions = self.add_weight(shape=(self.length, self.width), name="positions",
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, x):
        return x + self.positions[None, :ops.shape(x)[1], :]

    def get_config(self):
        return {**super().get_config(), "length": self.length, "width": self.width}


def decoder_block(x, width: int, heads: int, dropout: float):
    """Pre-norm block: causal self-attention, then a 4x-wide GELU MLP, each on a residual path."""
    h = layers.LayerNormalization(epsilon=1e-5)(x)
    h = layers.MultiHeadAttention(heads, width // heads, dropout=dropout)(h, h, use_causal_mask=True)
    x = layers.Add()([x, layers.Dropout(dropout)(h)])
    h = layers.LayerNormalization(epsilon=1e-5)(x)
    h = layers.Dense(4 * width, activation="gelu")(h)
    h = layers.Dense(width)(h)
    return layers.Add()([x, layers.Dropout(dropout)(h)])


def language_model(kind: str, vocabulary: int, context: int, width: int = 0, depth: int = 0,
                   dropout: float = 0.0, name: str = "generate") -> keras.Model:
    width = width or DEFAULT_WIDTH[kind]
    depth = depth or DEFAULT_DEPTH[kind]
    tokens = keras.Input(shape=(context,), dtype="int32", name="tokens")
    if kind == "lstm":
        x = layers.Embedding(vocabulary, min(width, 256))(tokens)
        for _ in range(depth):
            x = layers.LSTM(width, return_sequences=True)(x)
            x = layers.Dropout(dropout)(x) if dropout else x
        outputs = layers.Dense(vocabulary, activation="softmax", dtype="float32", name="next_token")(x)
    else:
        # One token matrix reads the tokens in and scores the next one out (GPT-2): half the
        # weights of a separate output layer, which a small corpus cannot fit twice. The scores
        # are computed in float32 under a bfloat16 policy, as an output layer's are.
        embedding = layers.ReversibleEmbedding(vocabulary, width, name="token_embedding", reverse_dtype="float32",
                                               embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02))
        x = layers.Dropout(dropout)(PositionEmbedding(context, width)(embedding(tokens)))
        for _ in range(depth):
            x = decoder_block(x, width, max(1, width // HEAD_WIDTH), dropout)
        x = layers.LayerNormalization(epsilon=1e-5)(x)
        outputs = layers.Activation("softmax", dtype="float32", name="next_token")(embedding(x, reverse=True))
    return keras.Model(tokens, outputs, name=name)
