"""Real human voices: the hedgewars voice packs (Debian hedgewars-data), split by pack.

Each pack under /usr/share/games/hedgewars/Data/Sounds/voices/ is one speaker recording the
same game phrases ("Hello", "Incoming", "Oops", ...). The classes are the phrases every pack
has; numbered takes of one phrase (Jump1-3, Ooff1-3, Ow1-4) are one class, because which take
a pack numbered 1 or 2 is arbitrary and not something a listener could hear.

Validation and test packs are drawn, from the seed, only among the English packs recorded by
a human voice, so held-out accuracy means "a new person saying these words". The processed
Robot pack and the packs in other languages (Spanish, Polish, Russian, Ukrainian) stay in
training: they add voices, but a held-out pack saying "Hola" for Hello would measure
translation, not generalization to a new speaker.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from workbench.data import speech
from workbench.data.splits import DataError

VOICES = Path("/usr/share/games/hedgewars/Data/Sounds/voices")
PROCESSED = ("Robot",)
OTHER_LANGUAGES = ("Default_es", "Default_pl", "Default_ru", "Default_uk", "Russian_pl")
VALIDATION_PACKS, TEST_PACKS = 2, 3
# What is said, where a file name runs words together or names a sound; for the synthesized
# training voices (workbench.data.spoken_labels). The other names are words already.
PHRASE_TEXT = {"Byebye": "bye bye", "Comeonthen": "come on then", "Enemydown": "enemy down",
               "Firstblood": "first blood", "Illgetyou": "I'll get you", "Laugh": "ha ha ha",
               "Ooff": "oof", "Ow": "ow", "Sameteam": "same team", "Takecover": "take cover",
               "Uh-oh": "uh oh", "Watchit": "watch it", "Yessir": "yes sir",
               "Youllregretthat": "you'll regret that"}


def phrase_of(stem: str) -> str:
    return re.sub(r"\d+$", "", stem)


def packs(root: Path = VOICES) -> list[Path]:
    found = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    if len(found) < 3:
        raise DataError(f"voices dataset: no hedgewars voice packs in {root}; install them with "
                        "`sudo apt-get install hedgewars-data`")
    return found


def held_out(names: list[str], seed: int) -> dict[str, str]:
    """Pack -> split: validation and test packs drawn from the English human packs by the seed."""
    honest = [n for n in names if n not in PROCESSED + OTHER_LANGUAGES]
    if len(honest) < VALIDATION_PACKS + TEST_PACKS + 1:
        raise DataError(f"voices dataset: {VOICES} has {len(honest)} English human packs; need "
                        f"{VALIDATION_PACKS + TEST_PACKS + 1}")
    order = list(np.random.default_rng(seed).permutation(honest))
    split = {name: "train" for name in names}
    split.update({name: "validation" for name in order[:VALIDATION_PACKS]})
    split.update({name: "test" for name in order[VALIDATION_PACKS:VALIDATION_PACKS + TEST_PACKS]})
    return split


def load_voices(seed: int, root: Path = VOICES) -> speech.SpeechSource:
    folders = packs(root)
    common = set.intersection(*({f.stem for f in speech.audio_files(p)} for p in folders))
    class_names = sorted({phrase_of(stem) for stem in common})
    split_of = held_out([p.name for p in folders], seed)
    waves, labels, speakers, splits, rates, skipped = [], [], [], [], [], []
    for pack in folders:
        for file in speech.audio_files(pack):
            if file.stem not in common:
                continue
            try:
                clip, rate, _ = speech.load_clip(file)
            except ValueError as exc:
                skipped.append(f"{file} ({exc})")
                continue
            waves.append(clip)
            rates.append(rate)
            labels.append(class_names.index(phrase_of(file.stem)))
            speakers.append(pack.name)
            splits.append(split_of[pack.name])
    notes = [f"voice packs: {', '.join(f'{p.name} ({split_of[p.name]})' for p in folders)}",
             f"classes: {len(class_names)} phrases present in every pack"]
    if skipped:
        notes.append(f"skipped {len(skipped)} unreadable file(s): {', '.join(skipped)}")
    return speech.SpeechSource(np.stack(waves), np.array(labels, dtype=np.int64), np.array(speakers),
                               np.array(splits), class_names, [], str(root), notes, min(rates),
                               [PHRASE_TEXT.get(name, name.lower()) for name in class_names])
