"""The classical baseline for transcription: CMU PocketSphinx (HMM acoustic model, n-gram LM).

PocketSphinx ships its US English acoustic model, dictionary and a general language model in
the wheel. It is measured twice on the same test clips: with that default LM, and with a
bigram LM estimated from the training transcripts (absolute discounting with back-off, written
as ARPA), the fair comparison for a network that learned from those transcripts. Training words
missing from the pronunciation dictionary cannot be recognized by it; they are left out of the
LM and counted.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

DISCOUNT = 0.5


def _decoder(lm: str | None = None):
    from pocketsphinx import Decoder

    return Decoder(samprate=16000, loglevel="FATAL", **({"lm": lm} if lm else {}))


def arpa_bigram(sentences: list[str]) -> str:
    """An ARPA bigram LM of `sentences` (absolute discounting, back-off to unigrams)."""
    unigrams, bigrams = Counter(), Counter()
    for sentence in sentences:
        words = ["<s>", *sentence.split(), "</s>"]
        unigrams.update(words[1:])
        bigrams.update(zip(words, words[1:]))
    total = sum(unigrams.values())
    vocabulary = sorted(set(unigrams) | {"<s>"})
    p_uni = {w: unigrams[w] / total for w in unigrams}
    followers: dict[str, list[str]] = {}
    for (h, w) in bigrams:
        followers.setdefault(h, []).append(w)
    history = Counter()
    for (h, _), n in bigrams.items():
        history[h] += n
    lines = ["\\data\\", f"ngram 1={len(vocabulary)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    for w in vocabulary:
        prob = math.log10(p_uni[w]) if w in p_uni else -99.0
        if w in followers:
            left = DISCOUNT * len(followers[w]) / history[w]
            unseen = max(1e-9, 1.0 - sum(p_uni[v] for v in followers[w]))
            lines.append(f"{prob:.5f}\t{w}\t{math.log10(left / unseen):.5f}")
        else:
            lines.append(f"{prob:.5f}\t{w}")
    lines += ["", "\\2-grams:"]
    for (h, w), n in sorted(bigrams.items()):
        lines.append(f"{math.log10((n - DISCOUNT) / history[h]):.5f}\t{h} {w}")
    return "\n".join(lines + ["", "\\end\\", ""])


def known_words(sentences: list[str]) -> tuple[list[str], set[str]]:
    """The sentences with dictionary-less words dropped, and those words."""
    decoder = _decoder()
    words = {w for s in sentences for w in s.split()}
    missing = {w for w in words if decoder.lookup_word(w) is None}
    return [" ".join(w for w in s.split() if w not in missing) for s in sentences], missing


def transcribe(waves: np.ndarray, lm: str | None = None) -> list[str]:
    decoder = _decoder(lm)
    out = []
    for wave in waves:
        pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        out.append(" ".join(w.split("(")[0] for w in words if not w.startswith(("<", "[")) and w != "<sil>"))
    return out


def transcribe_with_training_lm(waves: np.ndarray, training_sentences: list[str]) -> tuple[list[str], set[str]]:
    """Hypotheses under a bigram LM of the training transcripts, and the words it had to leave out."""
    sentences, missing = known_words(training_sentences)
    with tempfile.TemporaryDirectory() as folder:
        lm = Path(folder) / "training.arpa"
        lm.write_text(arpa_bigram([s for s in sentences if s]))
        return transcribe(waves, str(lm)), missing
