"""Speech Commands style trees: one folder of .wav clips per word, optional split lists.

Clips become 1 s of 16 kHz mono float32 (resampled, down-mixed, padded or cropped). Files that
are not readable WAV are skipped with a warning naming them. `_background_noise_` is not a
class; its recordings are returned for augmentation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np

from workbench.data.splits import DataError

SAMPLE_RATE = 16_000
NOISE_FOLDER = "_background_noise_"


@dataclass
class SpeechSource:
    waves: np.ndarray               # (clips, 16000) float32
    labels: np.ndarray
    speakers: np.ndarray            # speaker id per clip (the part before _nohash_)
    split: np.ndarray               # "train", "validation" or "test" per clip ("" when unlisted)
    class_names: list[str]
    noises: list[np.ndarray]
    source: str
    notes: list[str] = field(default_factory=list)


def read_wav(path: Path) -> np.ndarray:
    """Mono float32 at 16 kHz; raises ValueError for anything that is not a readable WAV."""
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    with warnings.catch_warnings():
        warnings.simplefilter("error", wavfile.WavFileWarning)  # truncated files only warn in scipy
        rate, samples = wavfile.read(path)
    if samples.size == 0:
        raise ValueError("no samples")
    if samples.dtype == np.uint8:
        samples = (samples.astype(np.float32) - 128) / 128
    elif np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / np.iinfo(samples.dtype).max
    samples = samples.astype(np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        common = gcd(rate, SAMPLE_RATE)
        samples = resample_poly(samples, SAMPLE_RATE // common, rate // common).astype(np.float32)
    return samples


def one_second(samples: np.ndarray) -> np.ndarray:
    clip = np.zeros(SAMPLE_RATE, dtype=np.float32)
    clip[:min(len(samples), SAMPLE_RATE)] = samples[:SAMPLE_RATE]
    return clip


def speaker_of(path: Path) -> str:
    return path.stem.split("_nohash_")[0]


def load_speech_folder(path: str) -> SpeechSource:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"speech folder dataset: {root} is not a directory")
    class_dirs = sorted(d for d in root.iterdir()
                        if d.is_dir() and d.name != NOISE_FOLDER and not d.name.startswith("."))
    listed = {}
    for list_name, split in (("validation_list.txt", "validation"), ("testing_list.txt", "test")):
        if (root / list_name).exists():
            listed.update({line.strip(): split for line in (root / list_name).read_text().splitlines()
                           if line.strip()})
    waves, labels, speakers, splits, skipped = [], [], [], [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(class_dir.glob("*.wav"))
        if not files:
            raise DataError(f"speech folder dataset: class folder {class_dir} has no .wav files")
        for file in files:
            try:
                samples = read_wav(file)
            except Exception as exc:  # not a WAV, truncated, unsupported encoding
                warnings.warn(f"skipping {file}: not a readable WAV ({exc})", stacklevel=2)
                skipped.append(str(file))
                continue
            waves.append(one_second(samples))
            labels.append(label)
            speakers.append(speaker_of(file))
            relative = f"{class_dir.name}/{file.name}"
            splits.append(listed.get(relative, "train" if listed else ""))
    if len(class_dirs) < 2:
        raise DataError(f"speech folder dataset: {root} has {len(class_dirs)} word folder(s); need at least 2")
    if not waves:
        raise DataError(f"speech folder dataset: no readable .wav files under {root}")
    noises = []
    for file in sorted((root / NOISE_FOLDER).glob("*.wav")) if (root / NOISE_FOLDER).is_dir() else []:
        try:
            noises.append(read_wav(file))
        except Exception as exc:
            warnings.warn(f"skipping background noise {file}: {exc}", stacklevel=2)
    notes = [f"skipped {len(skipped)} unreadable file(s): {', '.join(skipped[:5])}"] if skipped else []
    return SpeechSource(np.stack(waves), np.array(labels, dtype=np.int64), np.array(speakers), np.array(splits),
                        [d.name for d in class_dirs], noises, str(root.resolve()), notes)


def split_by_speaker(source: SpeechSource, validation: float, test: float, seed: int):
    """Train/validation/test index arrays: from the list files when present, else by speaker groups."""
    if (source.split != "").all():
        return [np.flatnonzero(source.split == s) for s in ("train", "validation", "test")]
    speakers = np.unique(source.speakers)
    order = np.random.default_rng(seed).permutation(speakers)
    n_test = max(1, round(test * len(speakers)))
    n_val = max(1, round(validation * len(speakers)))
    if len(speakers) < 3:
        raise DataError(f"speech dataset {source.source}: {len(speakers)} speaker(s); splitting by speaker "
                        "needs at least 3 (or validation_list.txt / testing_list.txt)")
    test_set, val_set = set(order[:n_test]), set(order[n_test:n_test + n_val])
    which = np.array(["test" if s in test_set else "validation" if s in val_set else "train"
                      for s in source.speakers])
    return [np.flatnonzero(which == s) for s in ("train", "validation", "test")]
