"""A transcription corpus synthesized by the keyword-spotting voices: digit strings, commands and
short sentences from the fortunes, every clip with its transcript, split by voice.

Speakers, engines, vocal-tract warp and the voice split are those of `speech_synthesis`, so a
test voice is never heard in training. Each speaker says `utterances` texts, a third of each
kind: digit strings of 3-7 digits, commands from a small grammar ("turn off the kitchen
lights"), and sentences of 3-8 words cut from the Debian fortunes, each at its own random
speed and (espeak-ng) pitch. Clips longer than the limit are left out and counted in the notes.
The corpus is written once per size and seed as WAV files and a `manifest.tsv` (path, sentence,
client_id, split, kind) and read back like any user's manifest.
"""

from __future__ import annotations

import random
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workbench.data import speech_synthesis as synthesis
from workbench.data.transcripts import DIGITS, normalize

KINDS = ("digits", "commands", "sentences")
SPEED_RANGE = (0.8, 1.25)
VERBS = ("turn on", "turn off", "open", "close", "start", "stop", "show", "check", "lock", "clean")
THINGS = ("lights", "door", "window", "radio", "music", "heater", "camera", "oven", "fan", "alarm", "garage",
          "screen")
PLACES = ("", "", "kitchen", "bedroom", "front", "back", "office", "living room")
MOVES = ("go left", "go right", "go forward", "go back", "move up", "move down", "volume up", "volume down",
         "next song", "stop now", "wait here", "come back")
SENTENCE_WORDS = (3, 8)
SENTENCE_CHARS = 48
MANIFEST = "manifest.tsv"


def digit_string(rng: random.Random) -> str:
    return " ".join(rng.choice(DIGITS) for _ in range(rng.randint(3, 7)))


def command(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.25:
        return rng.choice(MOVES)
    if roll < 0.4:
        return f"set a timer for {rng.choice(DIGITS[1:])} minutes"
    place = rng.choice(PLACES)
    return " ".join(w for w in (rng.choice(VERBS), "the", place, rng.choice(THINGS)) if w)


def fortune_sentences() -> list[str]:
    """Distinct sentences of 3-8 words (at most SENTENCE_CHARS characters) from the fortunes."""
    from workbench.data.text import load_fortunes

    found = set()
    for text in load_fortunes().texts:
        for piece in re.split(r"[.!?;:]+\s|\n", text):
            sentence = normalize(piece)
            if SENTENCE_WORDS[0] <= len(sentence.split()) <= SENTENCE_WORDS[1] and len(sentence) <= SENTENCE_CHARS:
                found.add(sentence)
    return sorted(found)


def texts_for(kind: str, rng: random.Random, pool: list[str]) -> str:
    return digit_string(rng) if kind == "digits" else command(rng) if kind == "commands" else rng.choice(pool)


def generate(root: Path, speaker_count: int, utterances: int, seed: int, max_seconds: float,
             split: tuple[float, float] = (0.15, 0.15)) -> Path:
    """Write the corpus under `root` (skipped when it is complete already)."""
    done = root / ".complete"
    if done.exists():
        return root
    if root.exists():
        shutil.rmtree(root)  # a half-written corpus from an interrupted run
    rng = random.Random(seed)
    voices = synthesis.speakers(speaker_count, seed)
    which = synthesis.split_voices(voices, split, seed)
    pool = fortune_sentences()
    jobs = []
    for voice in voices:
        kinds = [KINDS[k % 3] for k in range(utterances)]
        jobs.append([(kind, texts_for(kind, rng, pool), rng.uniform(*SPEED_RANGE), rng.randint(25, 75))
                     for kind in kinds])
    limit = int(max_seconds * synthesis.SAMPLE_RATE)

    def render(s: int) -> list[str]:
        said = synthesis.synthesize_all(voices[s], [(text, speed, pitch) for _, text, speed, pitch in jobs[s]])
        rows = []
        for k, ((kind, text, _, _), samples) in enumerate(zip(jobs[s], said)):
            if len(samples) > limit:
                rows.append(None)
                continue
            relative = f"s{s:03d}/{k:03d}.wav"
            synthesis.write_wav(root / relative, samples)
            rows.append(f"{relative}\t{text}\ts{s:03d}\t{which[s]}\t{kind}\n")
        return rows

    with ThreadPoolExecutor(max_workers=4) as pool_threads:
        rows = [row for speaker_rows in pool_threads.map(render, range(len(voices))) for row in speaker_rows]
    kept = [row for row in rows if row is not None]
    (root / MANIFEST).write_text("path\tsentence\tclient_id\tsplit\tkind\n" + "".join(kept))
    (root / "speakers.txt").write_text("".join(f"s{s:03d} {v.engine} {v.voice} {w}\n"
                                               for s, (v, w) in enumerate(zip(voices, which))))
    notes = synthesis.missing_engines_note()
    if len(kept) < len(rows):
        notes.append(f"{len(rows) - len(kept)} of {len(rows)} synthesized clips were longer than "
                     f"{max_seconds:g} s and left out")
    (root / synthesis.NOTES_FILE).write_text("".join(n + "\n" for n in notes))
    done.write_text("ok\n")
    return root
