"""A Speech Commands tree of real voices at 8 kHz: the shape of a user's own recorded corpus.

    .venv/bin/python bench/speech_tree.py OUT [--words 10] [--rate 8000] [--seed 0]

Ten unnumbered phrases of the hedgewars voice packs (Debian hedgewars-data), one folder each
named by its words as a user would ("come_on_then"),
every clip resampled to 8 kHz 16-bit WAV as recorded (not centred, not padded), and the packs
that `voices` holds out for validation and test listed in validation_list.txt / testing_list.txt.
Training on it goes through `--dataset folder:OUT`, the path a user's own recordings take.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.data import speech, voices
from workbench.data.speech_synthesis import write_wav


def build(out: Path, words: int, rate: int, seed: int) -> Path:
    packs = voices.packs()
    common = set.intersection(*({f.stem for f in speech.audio_files(p)} for p in packs))
    phrases = sorted(stem for stem in common if voices.phrase_of(stem) == stem)[:words]
    split_of = voices.held_out([p.name for p in packs], seed)
    listed = {"validation": [], "test": []}
    for pack in packs:
        for file in speech.audio_files(pack):
            if file.stem not in phrases:
                continue
            samples, native = speech.read_audio(file)
            clip = speech.resample(samples, native, rate)
            folder = voices.PHRASE_TEXT.get(file.stem, file.stem.lower()).replace(" ", "_")
            relative = f"{folder}/{pack.name}_nohash_0.wav"
            write_wav(out / relative, clip, rate)
            if split_of[pack.name] in listed:
                listed[split_of[pack.name]].append(relative)
    (out / "validation_list.txt").write_text("\n".join(sorted(listed["validation"])) + "\n")
    (out / "testing_list.txt").write_text("\n".join(sorted(listed["test"])) + "\n")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--words", type=int, default=10)
    parser.add_argument("--rate", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out, args.words, args.rate, args.seed))
