"""Speech Commands style trees: one folder of audio clips per word, optional split lists.

Recordings come in as they are made: .wav, .ogg or .flac, any rate from 8 to 48 kHz, mono or
stereo, shorter or longer than a second, speech anywhere in the file, at any level. Each clip
becomes 1 s of 16 kHz mono float32 with its speech centred (the span above an energy threshold,
or the loudest second of a longer file) and its peak normalized, so clips of different
recordings differ in what is said and by whom rather than in placement and gain. Files that
cannot be decoded are skipped and named in the notes. `_background_noise_` is not a class; its
recordings are returned for augmentation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np

from workbench.data.splits import DataError
from workbench.data.utf8 import read_utf8

SAMPLE_RATE = 16_000
NOISE_FOLDER = "_background_noise_"
AUDIO_SUFFIXES = (".wav", ".ogg", ".flac")
RATE_RANGE = (8_000, 48_000)
FRAME = 160                  # 10 ms energy frames
SPEECH_DB = -35.0            # a frame is speech when within 35 dB of the clip's loudest frame
SILENT_PEAK = 1e-4           # below -80 dBFS a clip holds no signal
PEAK = 0.9                   # per-utterance peak level


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
    sample_rate: int = SAMPLE_RATE  # the lowest native rate among the clips
    class_texts: list | None = None  # what each class says, where its name is not plain words


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 at the file's own rate; raises ValueError for anything that cannot be used.

    WAV goes through scipy first because it notices a truncated file (libsndfile silently
    returns what is there); other formats, and WAV encodings scipy lacks, through libsndfile."""
    import soundfile
    from scipy.io import wavfile

    samples = None
    if path.suffix.lower() == ".wav":
        try:
            samples, rate = _read_wav_with_scipy(path)
        except wavfile.WavFileWarning as exc:
            raise ValueError(f"truncated WAV ({exc})") from exc
        except Exception:  # an encoding scipy does not read: libsndfile may
            samples = None
    if samples is None:
        try:
            samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile raises its own error types for undecodable files
            raise ValueError(str(exc)) from exc
    if samples.size == 0:
        raise ValueError("no samples")
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise ValueError(f"sample rate {rate} Hz is outside {RATE_RANGE[0]}-{RATE_RANGE[1]} Hz")
    return samples.mean(axis=1).astype(np.float32), int(rate)


def _read_wav_with_scipy(path: Path) -> tuple[np.ndarray, int]:
    from scipy.io import wavfile

    with warnings.catch_warnings():
        warnings.simplefilter("error", wavfile.WavFileWarning)  # truncated files only warn in scipy
        rate, samples = wavfile.read(path)
    if samples.dtype == np.uint8:
        samples = (samples.astype(np.float32) - 128) / 128
    elif np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / np.iinfo(samples.dtype).max
    return samples.reshape(len(samples), -1).astype(np.float32), rate


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    from scipy.signal import resample_poly

    if rate == target:
        return samples
    common = gcd(rate, target)
    return resample_poly(samples, target // common, rate // common).astype(np.float32)


def speech_centre(samples: np.ndarray) -> int:
    """The sample the speech is centred on: the middle of the span of frames within SPEECH_DB of
    the loudest frame, or of the loudest second when that span is longer than a second."""
    frames = len(samples) // FRAME
    if frames == 0:
        return len(samples) // 2
    energy = (samples[:frames * FRAME].reshape(frames, FRAME) ** 2).mean(axis=1)
    loud = np.flatnonzero(energy >= energy.max() * 10 ** (SPEECH_DB / 10))
    first, last = loud[0], loud[-1] + 1
    window = SAMPLE_RATE // FRAME
    if last - first > window:
        sums = np.convolve(energy, np.ones(window), mode="valid")
        first = int(np.argmax(sums))
        last = first + window
    return (first + last) * FRAME // 2


def one_second(samples: np.ndarray) -> np.ndarray:
    """1 s at 16 kHz with the speech centred and the peak at PEAK (silent clips stay silent)."""
    start = speech_centre(samples) - SAMPLE_RATE // 2
    clip = np.zeros(SAMPLE_RATE, dtype=np.float32)
    lo, hi = max(0, start), min(len(samples), start + SAMPLE_RATE)
    clip[lo - start:hi - start] = samples[lo:hi]
    peak = np.abs(clip).max()
    return clip * (PEAK / peak) if peak >= SILENT_PEAK else clip


def load_clip(path: Path) -> tuple[np.ndarray, int, float]:
    """(1 s clip, native rate, native peak) for one file; ValueError when it cannot be decoded."""
    samples, rate = read_audio(path)
    samples = resample(samples, rate)
    return one_second(samples), rate, float(np.abs(samples).max())


def speaker_of(path: Path) -> str:
    return path.stem.split("_nohash_")[0]


def audio_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())


def load_speech_folder(path: str) -> SpeechSource:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"speech folder dataset: {root} is not a directory")
    class_dirs = sorted(d for d in root.iterdir()
                        if d.is_dir() and d.name != NOISE_FOLDER and not d.name.startswith("."))
    listed = {}
    for list_name, split in (("validation_list.txt", "validation"), ("testing_list.txt", "test")):
        if (root / list_name).exists():
            lines = read_utf8(root / list_name, "speech folder dataset").splitlines()
            listed.update({line.strip(): split for line in lines if line.strip()})
    waves, labels, speakers, splits, rates, peaks, skipped = [], [], [], [], [], [], []
    for label, class_dir in enumerate(class_dirs):
        files = audio_files(class_dir)
        if not files:
            raise DataError(f"speech folder dataset: class folder {class_dir} has no audio files "
                            f"({', '.join(AUDIO_SUFFIXES)})")
        for file in files:
            try:
                clip, rate, peak = load_clip(file)
            except Exception as exc:  # not audio, truncated, unsupported encoding or rate
                warnings.warn(f"skipping {file}: not readable audio ({exc})", stacklevel=2)
                skipped.append(str(file))
                continue
            waves.append(clip)
            rates.append(rate)
            peaks.append(peak)
            labels.append(label)
            speakers.append(speaker_of(file))
            relative = f"{class_dir.name}/{file.name}"
            splits.append(listed.get(relative, "train" if listed else ""))
    if len(class_dirs) < 2:
        raise DataError(f"speech folder dataset: {root} has {len(class_dirs)} word folder(s); need at least 2")
    if not waves:
        raise DataError(f"speech folder dataset: no readable audio files ({', '.join(AUDIO_SUFFIXES)}) under {root}")
    if max(peaks) < SILENT_PEAK:
        raise DataError(f"speech folder dataset: every clip under {root} is silent (peak below {SILENT_PEAK}); "
                        "check the recordings")
    noises = []
    noise_dir = root / NOISE_FOLDER
    for file in audio_files(noise_dir) if noise_dir.is_dir() else []:
        try:
            noises.append(resample(*read_audio(file)))
        except Exception as exc:
            warnings.warn(f"skipping background noise {file}: {exc}", stacklevel=2)
    notes = [f"skipped {len(skipped)} unreadable file(s): {', '.join(skipped)}"] if skipped else []
    return SpeechSource(np.stack(waves), np.array(labels, dtype=np.int64), np.array(speakers), np.array(splits),
                        [d.name for d in class_dirs], noises, str(root.resolve()), notes, min(rates))


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
