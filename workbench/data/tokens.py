"""Text as token ids for language models: a character or WordPiece vocabulary, and token streams.

Token 0 marks a document boundary (each document is followed by it, and a stream starts with
it), so a model learns where texts begin and end; token 1 stands for anything the training split
never showed. The vocabulary is learnt from the training documents only.

Encoding and decoding are plain Python over the saved token list, so a served model needs no
tokenizer library: WordPiece here is the greedy longest-match-first of BERT (words split on
spaces and punctuation, continuation pieces prefixed "##"), and only learning the subword
vocabulary uses keras-hub.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

BOUNDARY, UNKNOWN = 0, 1
RESERVED = ("[SEP]", "[UNK]")
WORD = re.compile(r"\w+|[^\w\s]")
CONTINUATION = "##"
MAX_WORD_CHARS = 100  # longer "words" (URLs, ASCII art) become one unknown token, as in BERT


class Vocabulary:
    def __init__(self, level: str, tokens: list[str]):
        self.level = level
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def learn(cls, documents, level: str, size: int = 4000) -> "Vocabulary":
        """Every character of the training documents, or a WordPiece vocabulary of about `size` pieces."""
        if level == "char":
            chars = Counter(c for document in documents for c in document)
            return cls(level, [*RESERVED, *sorted(chars)])
        import tensorflow as tf
        from keras_hub.tokenizers import compute_word_piece_vocabulary

        texts = tf.data.Dataset.from_tensor_slices(np.asarray(list(documents), dtype=object).astype(str)).batch(256)
        pieces = compute_word_piece_vocabulary(texts, size, lowercase=False, strip_accents=False,
                                               reserved_tokens=list(RESERVED))
        return cls(level, list(pieces))

    def encode(self, text: str) -> list[int]:
        if self.level == "char":
            return [self.index.get(c, UNKNOWN) for c in text]
        ids = []
        for word in WORD.findall(text):
            ids.extend(self._pieces(word))
        return ids

    def _pieces(self, word: str) -> list[int]:
        if len(word) > MAX_WORD_CHARS:
            return [UNKNOWN]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                if piece in self.index:
                    pieces.append(self.index[piece])
                    start = end
                    break
            else:
                return [UNKNOWN]  # a word that cannot be spelt from the pieces
        return pieces

    def decode(self, ids, after: str = "") -> str:
        """The text of `ids`; with `after`, spaced as it would continue that text. Stops at a boundary."""
        out = []
        for i in ids:
            if i == BOUNDARY:
                break
            token = self.tokens[i] if 0 <= i < len(self.tokens) else RESERVED[UNKNOWN]
            if self.level == "char":
                out.append("\N{REPLACEMENT CHARACTER}" if i == UNKNOWN else token)
            elif token.startswith(CONTINUATION):
                out.append(token[len(CONTINUATION):])
            else:
                previous = out[-1] if out else after
                glue = previous == "" or previous[-1].isspace() or (len(token) == 1 and not token.isalnum())
                out.append(token if glue else " " + token)
        return "".join(out)

    def stream(self, documents) -> np.ndarray:
        """[boundary] doc1 [boundary] doc2 [boundary] ...: what models train on and are scored on."""
        ids = [BOUNDARY]
        for document in documents:
            ids.extend(self.encode(document))
            ids.append(BOUNDARY)
        return np.asarray(ids, dtype=np.int32)


def windows(stream: np.ndarray, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, length) and next tokens (N, length) cut from a stream every `stride` tokens."""
    starts = np.arange(0, len(stream) - length, stride)
    index = starts[:, None] + np.arange(length)[None, :]
    return stream[index].astype(np.int32), stream[index + 1].astype(np.int32)


def scored_windows(stream: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, next tokens and a mask: together they predict every token after the first exactly
    once. Windows overlap by half: after the first window, each scores only the tokens it adds,
    so every scored token but the first window's has at least length/2 tokens of history, as an
    n-gram model scoring the whole stream has its n-1 (the last window ends at the stream's end)."""
    if len(stream) <= length:
        raise ValueError(f"a stream of {len(stream)} tokens has no window of {length} with a next token")
    step = max(1, length // 2)
    last = len(stream) - 1 - length  # the last start whose targets stay inside the stream
    starts = list(range(0, last + 1, step))
    if starts and starts[-1] != last:
        starts.append(last)
    mask = np.zeros((len(starts), length), dtype=bool)
    covered = 0  # stream positions 1 .. covered are predicted by the windows before
    for row, start in enumerate(starts):  # target j of a window is stream position start + 1 + j
        mask[row, max(0, covered - start):] = True
        covered = start + length
    index = np.asarray(starts, dtype=np.int64).reshape(-1, 1) + np.arange(length)[None, :]
    return stream[index].astype(np.int32), stream[index + 1].astype(np.int32), mask
