"""CTC beam search guided by a word language model of the training transcripts (shallow fusion).

The acoustic network spells what it hears letter by letter; on voices it never heard it often
gets a letter or two of a word wrong ("sevn", "lihgts"). A word model of the training transcripts
knows which words exist and which follow which, so the search keeps the spellings that are both
heard and likely: each prefix is scored

    log P_ctc(prefix | audio) + lm_weight * log P_lm(words) + word_bonus * words

(Hannun et al., 2014, prefix beam search; Kneser-Ney word trigrams from `kneser_ney`). A word
the training transcripts never had keeps a probability (Kneser-Ney's unknown-word share), so open
sentences can still be spelt, only at a cost. The two weights are chosen on the validation split
(`choose_weights`), not fixed for one corpus.

Written here rather than taken from a library: pyctcdecode (the usual Python choice) pins
numpy < 2 and needs KenLM binaries for a language model.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from workbench.models.kneser_ney import KneserNey

ORDER = 3
PRUNE = -8.0              # characters less likely than e^-8 in a frame are not tried there
BOUNDARY, UNKNOWN = 0, 1  # word ids: sentence start/end, a word the transcripts never had
WEIGHTS = [(w, b) for w in (0.3, 0.6, 1.0, 1.5) for b in (0.0, 1.5, 3.0)]  # lm_weight, word_bonus
NEG = -math.inf


def _add(a: float, b: float) -> float:
    """log(e^a + e^b) on Python floats: the search's inner step, many times faster than NumPy's on scalars."""
    if a < b:
        a, b = b, a
    return a if b == NEG else a + math.log1p(math.exp(b - a))


class WordLanguageModel:
    def __init__(self, texts: list[str], order: int = ORDER):
        words = sorted({w for text in texts for w in text.split()})
        self.ids = {w: k + 2 for k, w in enumerate(words)}
        stream = [BOUNDARY]
        for text in texts:
            stream += [self.ids[w] for w in text.split()] + [BOUNDARY]
        self.order = order
        self.model = KneserNey(order, len(words) + 2).fit(np.array(stream))
        self.prefixes = {w[:k] for w in words for k in range(1, len(w) + 1)}
        self._next: dict[tuple, np.ndarray] = {}

    def log_probability(self, history: tuple[int, ...], word: str | None) -> float:
        """log P(word | the words before it in this sentence); None is the sentence's end."""
        context = ((BOUNDARY,) + history)[-(self.order - 1):]
        if context not in self._next:
            self._next[context] = np.log(self.model.next_distribution(context))
        target = BOUNDARY if word is None else self.word_id(word)
        return float(self._next[context][target])

    def word_id(self, word: str) -> int:
        return self.ids.get(word, UNKNOWN)


class _Prefix:
    """A prefix's language-model side: its finished words' score and ids, and the word being spelt."""
    __slots__ = ("score", "history", "partial")

    def __init__(self, score: float, history: tuple[int, ...], partial: str):
        self.score, self.history, self.partial = score, history, partial


def beam_search(log_probs: np.ndarray, alphabet: str, lm: WordLanguageModel, lm_weight: float,
                word_bonus: float, beam_width: int = 64) -> str:
    """The best transcript of one clip; `log_probs` is (frames, 1 + len(alphabet)), blank first."""
    beams = {"": (0.0, NEG)}  # prefix -> (log P ending in blank, log P ending in its last character)
    states = {"": _Prefix(0.0, (), "")}

    def state(prefix: str) -> _Prefix:
        if prefix not in states:
            parent, char = states[prefix[:-1]], prefix[-1]
            if char == " ":
                word = parent.partial
                score = parent.score + lm_weight * lm.log_probability(parent.history, word) + word_bonus
                states[prefix] = _Prefix(score, parent.history + (lm.word_id(word),), "")
            else:
                states[prefix] = _Prefix(parent.score, parent.history, parent.partial + char)
        return states[prefix]

    def lm_score(prefix: str) -> float:
        s = state(prefix)
        if s.partial and s.partial not in lm.prefixes:  # already no known word: pay as an unknown one now
            return s.score + lm_weight * lm.log_probability(s.history, s.partial)
        return s.score

    for frame in log_probs:
        tried = (np.flatnonzero(frame[1:] > PRUNE) + 1).tolist()
        row = frame.tolist()
        following: dict[str, list[float]] = defaultdict(lambda: [NEG, NEG])
        for prefix, (blank, last) in beams.items():
            total = _add(blank, last)
            entry = following[prefix]
            entry[0] = _add(entry[0], total + row[0])
            end = prefix[-1] if prefix else " "
            for c in tried:
                char, p = alphabet[c - 1], row[c]
                if char == " " and end == " ":  # spaces collapse: runs of them are one space
                    entry[1] = _add(entry[1], total + p)
                elif char == end:  # the same character again: one letter unless a blank came between
                    entry[1] = _add(entry[1], last + p)
                    grown = following[prefix + char]
                    grown[1] = _add(grown[1], blank + p)
                else:
                    grown = following[prefix + char]
                    grown[1] = _add(grown[1], total + p)
        ranked = sorted(following.items(), key=lambda item: -(_add(*item[1]) + lm_score(item[0])))
        beams = {prefix: tuple(scores) for prefix, scores in ranked[:beam_width]}

    def final(prefix: str) -> float:
        s = state(prefix)
        score, history = s.score, s.history
        if s.partial:
            score += lm_weight * lm.log_probability(history, s.partial) + word_bonus
            history = history + (lm.word_id(s.partial),)
        return _add(*beams[prefix]) + score + lm_weight * lm.log_probability(history, None)

    return " ".join(max(beams, key=final).split())


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def transcribe(logits: np.ndarray, alphabet: str, lm: WordLanguageModel, lm_weight: float, word_bonus: float,
               beam_width: int = 64) -> list[str]:
    return [beam_search(clip, alphabet, lm, lm_weight, word_bonus, beam_width) for clip in log_softmax(logits)]


def choose_weights(logits: np.ndarray, references: list[str], alphabet: str, lm: WordLanguageModel,
                   beam_width: int = 64) -> tuple[float, float, dict]:
    """The (lm_weight, word_bonus) of WEIGHTS with the lowest word error rate on these clips
    (the validation split), and every pair's rate."""
    import jiwer

    rates = {}
    for weight, bonus in WEIGHTS:
        hypotheses = transcribe(logits, alphabet, lm, weight, bonus, beam_width)
        rates[(weight, bonus)] = float(jiwer.wer(references, hypotheses))
    best = min(rates, key=rates.get)
    return best[0], best[1], rates
