"""Transcribed speech: a user's recordings with their transcripts, and transcripts as CTC labels.

Two layouts come in: `folder:PATH`, a tree of `.wav` files each with a `.txt` transcript of the
same name beside it (the speaker is the parent folder's name), and `tsv:PATH`, a tab-separated
manifest with a header (`path` and `sentence` or `transcript` columns, paths relative to the
manifest, as Common Voice and LibriSpeech-style corpora ship), whose speaker column is
`client_id` or `speaker` when present, else the parent folder. Optional `split` and `kind`
columns (what the synthesized corpus writes) fix the split and name the kind of sentence.

Transcripts are normalized to the model's alphabet (lower case, digits spelled out, other
characters dropped) and the notes say how many changed. Clips stay at their own length here;
`padded` makes the fixed-shape arrays the training engine takes, and refuses clips longer than
the model's limit by name.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.data.speech import SAMPLE_RATE, read_audio, resample
from workbench.data.splits import DataError

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"   # label k + 1 is ALPHABET[k]; label 0 is the CTC blank (and padding)
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NAMED = 10  # files a note or an error names before it only counts
TEXT_COLUMNS = ("sentence", "transcript", "text")
SPEAKER_COLUMNS = ("client_id", "speaker")


@dataclass
class Transcribed:
    waves: list[np.ndarray]   # float32 at 16 kHz, each at its own length
    texts: list[str]          # normalized to ALPHABET
    speakers: np.ndarray
    files: list[str]
    source: str
    split: np.ndarray         # "train", "validation", "test", or "" when the corpus fixes none
    kinds: np.ndarray         # "digits", "commands", "sentences" for the synthesized corpus, else ""
    notes: list[str] = field(default_factory=list)


def normalize(text: str) -> str:
    """Lower case, accents stripped, digits spelled one by one, hyphens and slashes as spaces,
    every other character outside ALPHABET dropped, runs of spaces collapsed."""
    text = re.sub(r"[-/_\u2013\u2014]", " ", text.replace("\u2019", "'"))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"\d", lambda m: f" {DIGITS[int(m.group())]} ", text)
    text = "".join(c for c in text if c in ALPHABET)
    text = re.sub(r"(^| )'+|'+( |$)", r"\1\2", text)  # quotation marks, not apostrophes inside words
    return re.sub(r" +", " ", text).strip()


def named(items: list[str]) -> str:
    shown = ", ".join(items[:NAMED])
    return shown + (f" and {len(items) - NAMED} more" if len(items) > NAMED else "")


def _read(path: Path) -> np.ndarray:
    try:
        return resample(*read_audio(path))
    except ValueError as exc:
        raise DataError(f"transcribed speech: {path} is not readable audio ({exc})") from None


def _finish(root: Path, rows: list[tuple[Path, str, str, str, str]], kind: str) -> Transcribed:
    """rows: (audio path, raw transcript, speaker, split, kind)."""
    if not rows:
        raise DataError(f"transcribed speech: no clips in {root} ({kind})")
    texts = [normalize(raw) for _, raw, _, _, _ in rows]
    empty = [str(path) for (path, _, _, _, _), text in zip(rows, texts) if not text]
    if empty:
        raise DataError(f"transcribed speech: {len(empty)} transcript(s) have no letters: {named(empty)}")
    changed = sum(" ".join(raw.lower().split()) != text for (_, raw, _, _, _), text in zip(rows, texts))
    notes = [f"{changed} of {len(rows)} transcripts normalized to the alphabet (lower case, digits spelled "
             "out, punctuation dropped)"] if changed else []
    return Transcribed([_read(path) for path, _, _, _, _ in rows], texts, np.array([r[2] for r in rows]),
                       [str(r[0]) for r in rows], str(root.resolve()), np.array([r[3] for r in rows]),
                       np.array([r[4] for r in rows]), notes)


def load_folder(path: str) -> Transcribed:
    """Every .wav under `path` with the .txt transcript of the same name beside it."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"transcribed speech folder: {root} is not a directory")
    wavs = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    if not wavs:
        raise DataError(f"transcribed speech folder: no .wav files under {root}")
    missing = [str(w) for w in wavs if not w.with_suffix(".txt").is_file()]
    if missing:
        raise DataError(f"transcribed speech folder: {len(missing)} .wav file(s) without a .txt transcript "
                        f"beside them: {named(missing)}")
    rows = [(w, w.with_suffix(".txt").read_text(errors="replace"), w.parent.name, "", "") for w in wavs]
    return _finish(root, rows, "folder")


def load_tsv(path: str) -> Transcribed:
    """A tab-separated manifest: path and transcript columns, optional speaker, split and kind."""
    manifest = Path(path).expanduser()
    if not manifest.is_file():
        raise DataError(f"transcribed speech manifest: {manifest} is not a file")
    with manifest.open(newline="", encoding="utf-8", errors="replace") as f:
        table = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    columns = list(table[0]) if table else []
    text_column = next((c for c in TEXT_COLUMNS if c in columns), None)
    if "path" not in columns or text_column is None:
        raise DataError(f"transcribed speech manifest: {manifest} needs a header with 'path' and one of "
                        f"{', '.join(TEXT_COLUMNS)}; it has {', '.join(columns) or 'no rows'}")
    speaker_column = next((c for c in SPEAKER_COLUMNS if c in columns), None)
    base = manifest.parent
    audio = [base / row["path"] for row in table]
    missing = [str(a) for a in audio if not a.is_file()]
    if missing:
        raise DataError(f"transcribed speech manifest {manifest}: {len(missing)} listed file(s) not found: "
                        f"{named(missing)}")
    rows = [(a, row[text_column] or "", row[speaker_column] if speaker_column else a.parent.name,
             row.get("split") or "", row.get("kind") or "") for a, row in zip(audio, table)]
    return _finish(manifest, rows, "tsv manifest")


def padded(waves: list[np.ndarray], files: list[str], max_samples: int) -> np.ndarray:
    """(clips, max_samples) float32, silence after each clip; longer clips are an error naming them."""
    long = [f"{f} ({len(w) / SAMPLE_RATE:.1f} s)" for w, f in zip(waves, files) if len(w) > max_samples]
    if long:
        raise DataError(f"transcribed speech: {len(long)} clip(s) are longer than the limit of "
                        f"{max_samples / SAMPLE_RATE:g} s (option max_seconds): {named(long)}")
    out = np.zeros((len(waves), max_samples), np.float32)
    for row, wave in zip(out, waves):
        row[:len(wave)] = wave
    return out


def encode(texts: list[str], max_chars: int) -> np.ndarray:
    """(texts, max_chars) int32 labels: ALPHABET index + 1, padded with 0 (the blank)."""
    out = np.zeros((len(texts), max_chars), np.int32)
    for row, text in zip(out, texts):
        row[:len(text)] = [ALPHABET.index(c) + 1 for c in text[:max_chars]]
    return out

