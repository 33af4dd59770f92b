"""Training clips of the class names themselves, spoken by synthetic voices.

A recorded keyword corpus often has few speakers, and a model trained on them learns the voices
rather than the words. The class names are the words, so the synthesizers already used for
`spoken-commands` can say each of them in many more voices: espeak-ng accents and variants,
flite and festival voices, each take with its own speed and pitch. These clips join the training
split only; validation and test stay real recordings, so the reported accuracy is still on
speakers never heard. Opt-in (`--synthetic-voices N`): on the hedgewars voices here they did not
raise held-out accuracy (BENCHMARKS.md), the shouted game phrases being far from these voices.

A class name is read as text: `_`, `-` and CamelCase become word breaks ("TakeCover",
"take_cover" -> "take cover"); a dataset may give better text for names that are not words
("Illgetyou" -> "I'll get you"). Names starting with `_` (`_unknown_`, `_silence_`) are not
spoken. Clips go through the same centring and peak normalization as recordings, and are cached
in the workbench home per texts, voices and seed.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from workbench.data import speech, speech_synthesis

TAKES = 2                   # per voice and class, each at its own speed and pitch
SPEED_RANGE = (0.8, 1.25)   # espeak-ng words per minute / flite and festival duration, relative
PITCH_RANGE = (20, 80)      # espeak-ng pitch (0-99)


def spoken_text(class_name: str) -> str | None:
    """What a synthesizer should say for a class folder's name, or None when it names no words."""
    if class_name.startswith("_"):
        return None
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", class_name)
    text = re.sub(r"[_\-\"]+", " ", text).strip()
    return text or None


def synthesize(texts: list[str | None], voices: int, seed: int, cache: Path):
    """(waves, labels, speaker names) of `voices` synthetic voices saying texts[label], TAKES
    times each; None texts are skipped. Read from `cache` when made before."""
    spoken = {label: text for label, text in enumerate(texts) if text}
    engines = speech_synthesis.engines()
    key = json.dumps([spoken, voices, TAKES, seed, engines], sort_keys=True)
    path = cache / f"spoken-labels-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        stored = np.load(path)
        return stored["waves"], stored["labels"], stored["speakers"]
    rng = np.random.default_rng(seed)
    # Independent of the dataset's own split seed: these voices are never validation or test.
    chosen = speech_synthesis.speakers(voices, seed)
    jobs = [[(text, float(rng.uniform(*SPEED_RANGE)), int(rng.integers(*PITCH_RANGE)), label)
             for label, text in spoken.items() for _ in range(TAKES)] for _ in chosen]

    def render(voice, takes):
        clips = speech_synthesis.synthesize_all(voice, [take[:3] for take in takes])
        return [speech.one_second(clip) for clip in clips]

    with ThreadPoolExecutor(max_workers=4) as pool:
        rendered = list(pool.map(render, chosen, jobs))
    waves = np.stack([clip for clips in rendered for clip in clips]).astype(np.float32)
    labels = np.array([take[3] for takes in jobs for take in takes], dtype=np.int64)
    names = np.array([f"synthetic-{v.engine}-{v.voice}-{k}" for k, (v, takes) in enumerate(zip(chosen, jobs))
                      for _ in takes])
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, waves=waves, labels=labels, speakers=names)
    partial.replace(path)  # a run stopped mid-write leaves no half cache behind
    return waves, labels, names
