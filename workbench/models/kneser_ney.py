"""Interpolated Kneser-Ney n-gram language model: the classical baseline of the `generate` task.

Written here rather than taken from a library: nltk.lm (the usual choice) is not installed in
the project and scores one token at a time in Python, far too slow for a few hundred thousand
test tokens; KenLM needs a compiled binary. This module counts n-grams with NumPy (an n-gram of
token ids is packed into one int64, so counting is `np.unique` and lookup is `np.searchsorted`)
and scores every position of a token stream at once.

The model (Chen & Goodman 1998, interpolated, one absolute discount per order):

    P_k(w | h) = (max(c_k(h w) - D_k, 0) + D_k * N1+(h .) * P_{k-1}(w | h')) / c_k(h)

where c_k is the raw count at the highest order and the continuation count (distinct left
neighbours) below it, h' is h without its first token, P_0 is uniform over the vocabulary (so
an unseen or unknown token still has a probability), and a context never seen falls back to
P_{k-1}. D_k = n1 / (n1 + 2 n2) from the count-of-counts of order k.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import ConfigError


class KneserNey:
    def __init__(self, order: int, vocabulary_size: int):
        if order < 1:
            raise ConfigError("ngram_order", order, "an integer >= 1")
        if float(vocabulary_size) ** order >= 2.0 ** 62:  # the packed n-gram must fit in an int64
            raise ConfigError("ngram_order", order, f"at most {int(62 / np.log2(vocabulary_size))} for a "
                              f"vocabulary of {vocabulary_size} tokens")
        self.order = order
        self.size = vocabulary_size
        self.levels: list[dict[str, np.ndarray | float]] = []  # one per order, 1 .. order

    def _pack(self, columns: np.ndarray) -> np.ndarray:
        """(M, k) token ids -> (M,) int64 keys; a key's prefix (the context) is key // size."""
        keys = np.zeros(len(columns), dtype=np.int64)
        for j in range(columns.shape[1]):
            keys = keys * self.size + columns[:, j]
        return keys

    def fit(self, stream: np.ndarray) -> "KneserNey":
        stream = np.asarray(stream, dtype=np.int64)
        if len(stream) < self.order:
            raise ValueError(f"a stream of {len(stream)} tokens is shorter than the order {self.order}")
        grams = np.lib.stride_tricks.sliding_window_view(stream, self.order)
        keys, counts = np.unique(self._pack(grams), return_counts=True)
        levels = []
        for k in range(self.order, 0, -1):
            level = {"keys": keys, "counts": counts.astype(np.float64)}
            n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
            level["discount"] = float(np.clip(n1 / (n1 + 2 * n2), 0.05, 0.95)) if n1 + n2 else 0.5
            contexts = np.unique(keys // self.size)
            # per context: the sum of counts and the number of distinct followers
            order_of = np.searchsorted(contexts, keys // self.size)
            level["contexts"] = contexts
            level["context_totals"] = np.bincount(order_of, weights=level["counts"], minlength=len(contexts))
            level["context_types"] = np.bincount(order_of, minlength=len(contexts)).astype(np.float64)
            levels.append(level)
            # continuation counts of the next order down: distinct left neighbours of each (k-1)-gram
            if k > 1:
                keys, counts = np.unique(keys % self.size ** (k - 1), return_counts=True)
        self.levels = levels[::-1]
        return self

    def _probabilities(self, history: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """P(target | history) for each row; history is (M, order-1), -1 where no token precedes."""
        p = np.full(len(targets), 1.0 / self.size)
        for k, level in enumerate(self.levels, start=1):
            context = history[:, history.shape[1] - (k - 1):] if k > 1 else history[:, :0]
            usable = (context >= 0).all(axis=1)
            packed_context = self._pack(np.where(context >= 0, context, 0))
            at = np.minimum(np.searchsorted(level["contexts"], packed_context), len(level["contexts"]) - 1)
            seen = usable & (level["contexts"][at] == packed_context)
            key = packed_context * self.size + targets
            where = np.minimum(np.searchsorted(level["keys"], key), len(level["keys"]) - 1)
            count = np.where(level["keys"][where] == key, level["counts"][where], 0.0)
            total, types, discount = level["context_totals"][at], level["context_types"][at], level["discount"]
            mixed = (np.maximum(count - discount, 0.0) + discount * types * p) / np.where(seen, total, 1.0)
            p = np.where(seen, mixed, p)
        return p

    def _history(self, stream: np.ndarray, positions: np.ndarray) -> np.ndarray:
        offsets = np.arange(-(self.order - 1), 0)
        index = positions[:, None] + offsets[None, :]
        return np.where(index >= 0, stream[np.maximum(index, 0)], -1)

    def log_probabilities(self, stream: np.ndarray) -> np.ndarray:
        """Natural-log probability of every token of `stream` after the first, given those before it."""
        stream = np.asarray(stream, dtype=np.int64)
        positions = np.arange(1, len(stream))
        return np.log(self._probabilities(self._history(stream, positions), stream[positions]))

    def perplexity(self, stream: np.ndarray) -> float:
        return float(np.exp(-self.log_probabilities(stream).mean()))

    def next_distribution(self, context) -> np.ndarray:
        """P(w | context) for every token w of the vocabulary (sums to 1)."""
        stream = np.asarray([*context, 0], dtype=np.int64)
        history = np.repeat(self._history(stream, np.array([len(stream) - 1])), self.size, axis=0)
        return self._probabilities(history, np.arange(self.size))
