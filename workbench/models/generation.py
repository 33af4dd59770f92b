"""Sampling text from a next-token network, and the served model that does it behind a pyfunc.

Sampling is Python around the network: each step runs the window (the boundary token, the
prompt, what was generated so far; right-padded, since the network is causal) and draws the next
token from the probabilities at the last real position, sharpened by a temperature and cut to
the top k. It stops at the document boundary or after `length` tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.data.tokens import BOUNDARY, Vocabulary
from workbench.models import language
from workbench.models.served import ServedModel

SAVED_LAYERS = (language.PositionEmbedding,)  # importing this module registers what a saved network needs


def next_token(probabilities: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator) -> int:
    """One draw from `probabilities` at `temperature` (0: the most likely token), among the top k (0: all)."""
    if temperature <= 0:
        return int(np.argmax(probabilities))
    logits = np.log(np.maximum(probabilities.astype(np.float64), 1e-30)) / temperature
    if 0 < top_k < len(logits):
        logits[logits < np.partition(logits, -top_k)[-top_k]] = -np.inf
    weights = np.exp(logits - logits.max())
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def generate(network, vocabulary: Vocabulary, prompts: list[str], context: int, length: int,
             temperature: float, top_k: int, seed: int) -> list[str]:
    """Each prompt followed by what the network writes after it."""
    rng = np.random.default_rng(seed)
    histories = [[BOUNDARY, *vocabulary.encode(p)] for p in prompts]
    written: list[list[int]] = [[] for _ in prompts]
    active = list(range(len(prompts)))
    for _ in range(length):
        if not active:
            break
        batch = np.zeros((len(active), context), dtype=np.int32)
        last = []
        for row, i in enumerate(active):
            window = histories[i][-context:]
            batch[row, :len(window)] = window
            last.append(len(window) - 1)
        probabilities = np.asarray(network.predict_on_batch(batch))  # compiled once per batch size
        still = []
        for row, i in enumerate(active):
            token = next_token(probabilities[row, last[row]], temperature, top_k, rng)
            if token == BOUNDARY:
                continue
            histories[i].append(token)
            written[i].append(token)
            still.append(i)
        active = still
    return [p + vocabulary.decode(w, after=p) for p, w in zip(prompts, written)]


class TextGenerator(ServedModel):
    """Prompts in, each prompt continued by the network out; settings hold the vocabulary,
    context length and sampling defaults."""

    def predict(self, inputs) -> list[str]:
        s: dict[str, Any] = self.settings
        prompts = [str(p) for p in (inputs.tolist() if hasattr(inputs, "tolist") else list(inputs))]
        return generate(self.network, Vocabulary(s["level"], s["tokens"]), prompts, s["context_length"],
                        s["sample_length"], s["temperature"], s["top_k"], s["seed"])
