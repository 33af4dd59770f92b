"""A keyword-spotting set synthesized by several engines and voices, in the Speech Commands layout.

Speakers come from espeak-ng (accent + voice variant), flite (awb, kal, kal16, rms, slt) and
festival (kal_diphone, ked_diphone, cmu_us_slt_arctic_hts), whichever are installed (espeak-ng
is required; a missing flite or festival is named in the notes). A flite or festival voice
yields several speakers: each gets its own vocal-tract warp (a resampling factor, which moves
pitch and formants together), flite speakers also their own pitch, and every utterance a random
speed. Every speaker says every keyword a few times. Whole voices (engine + voice) are split
three ways, each engine keeping at least one voice in training, and the validation and test
speakers are listed in `validation_list.txt` / `testing_list.txt` as in Speech Commands, so test
accuracy measures generalization to voices never heard in training. Generated once per size and
seed, then read from the cache like any other Speech Commands tree.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.data.speech import read_audio, resample
from workbench.data.splits import DataError

SAMPLE_RATE = 16_000
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine",
                 "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "learn", "follow",
                 "forward", "backward", "visual", "tell", "open", "left-handed", "dawn", "upper")
UNKNOWN, SILENCE, NOISE = "_unknown_", "_silence_", "_background_noise_"
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
FLITE_VOICES = {"awb": (90, 130), "kal": (90, 130), "kal16": (90, 130), "rms": (80, 120), "slt": (150, 220)}
FESTIVAL_VOICES = {"kal_diphone": "english", "ked_diphone": "english", "cmu_us_slt_arctic_hts": "us"}
FESTIVAL_ROOT = Path("/usr/share/festival/voices")
SHARES = {"flite": 0.25, "festival": 0.15}  # of the speakers; espeak-ng speaks for the rest
WARP_RANGE = (0.9, 1.1)
NOISE_SECONDS = 20
NOTES_FILE = "synthesis_notes.txt"


@dataclass(frozen=True)
class Speaker:
    engine: str      # espeak, flite or festival
    voice: str       # what the split keeps together
    warp: float      # resampling factor (1 for espeak-ng, whose variants differ already)
    pitch: int       # flite: mean F0 in Hz; espeak-ng and festival: unused (0)


def espeak() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise DataError("spoken-commands: espeak-ng is not installed; install it with "
                        "`sudo apt-get install espeak-ng`, or use --dataset folder:PATH with recorded speech")
    return binary


def festival_voices() -> list[str]:
    if shutil.which("festival") is None:
        return []
    return [v for v, folder in FESTIVAL_VOICES.items() if (FESTIVAL_ROOT / folder / v).is_dir()]


def engines() -> list[str]:
    espeak()
    return ["espeak"] + (["flite"] if shutil.which("flite") else []) + (["festival"] if festival_voices() else [])


def missing_engines_note() -> list[str]:
    missing = [e for e in ("flite", "festival") if e not in engines()]
    return [f"spoken-commands: {', '.join(missing)} not installed, so fewer kinds of voices "
            "(`sudo apt-get install flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts`)"] \
        if missing else []


def notes(root: Path) -> list[str]:
    path = root / NOTES_FILE
    return path.read_text().splitlines() if path.exists() else []


def variants() -> list[str]:
    out = subprocess.run([espeak(), "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1].removeprefix("!v/") for line in out.splitlines()[1:] if "!v/" in line]
    return sorted(set(names))


def speakers(count: int, seed: int) -> list[Speaker]:
    """`count` distinct speakers, drawn reproducibly, shared among the installed engines."""
    rng = random.Random(seed)
    available = engines()
    voices = {"flite": sorted(FLITE_VOICES), "festival": festival_voices()}
    shares = {e: round(SHARES[e] * count) for e in ("flite", "festival") if e in available}
    chosen = []
    for engine, n in shares.items():
        for k in range(n):
            voice = voices[engine][k % len(voices[engine])]
            pitch = rng.randint(*FLITE_VOICES[voice]) if engine == "flite" else 0
            chosen.append(Speaker(engine, voice, round(rng.uniform(*WARP_RANGE), 3), pitch))
    pool = [f"{accent}+{variant}" for accent in ACCENTS for variant in variants()]
    n_espeak = count - len(chosen)
    if n_espeak > len(pool):
        raise DataError(f"spoken-commands: asked for {count} speakers, espeak-ng offers {len(pool)}")
    return [Speaker("espeak", v, 1.0, 0) for v in rng.sample(pool, n_espeak)] + chosen


def _read(path: str) -> np.ndarray:
    return resample(*read_audio(Path(path)))


def _warp(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play back `factor` times faster: shorter, higher pitch and formants."""
    if factor == 1.0:
        return samples
    positions = np.arange(0, len(samples) - 1, factor)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def synthesize_all(speaker: Speaker, takes: list[tuple[str, float, int]]) -> list[np.ndarray]:
    """Each (word, speed, espeak-ng pitch 0-99) as float32 at 16 kHz; speed > 1 is faster."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [f"{tmp}/{k}.wav" for k in range(len(takes))]
        if speaker.engine == "espeak":
            for (word, speed, pitch), path in zip(takes, paths):
                subprocess.run([espeak(), "-v", speaker.voice, "-s", str(int(160 * speed)), "-p", str(pitch),
                                "-w", path, word], capture_output=True, check=True)
        elif speaker.engine == "flite":
            for (word, speed, _), path in zip(takes, paths):
                subprocess.run(["flite", "-voice", speaker.voice, "--setf", f"duration_stretch={1 / speed:.3f}",
                                "--setf", f"int_f0_target_mean={speaker.pitch}", "-t", word, "-o", path],
                               capture_output=True, check=True)
        else:  # festival: one process for all takes (loading a voice takes longer than speaking)
            script = [f"(voice_{speaker.voice})"]
            for (word, speed, _), path in zip(takes, paths):
                script += [f"(Parameter.set 'Duration_Stretch {1 / speed:.3f})",
                           f'(utt.save.wave (utt.synth (Utterance Text "{word}")) "{path}" \'riff)']
            Path(f"{tmp}/script.scm").write_text("\n".join(script) + "\n")
            subprocess.run(["festival", "-b", f"{tmp}/script.scm"], capture_output=True, check=True)
        return [_warp(_read(path), speaker.warp) for path in paths]


def split_voices(voices: list[Speaker], split: tuple[float, float], seed: int) -> list[str]:
    """'train', 'validation' or 'test' per speaker: whole voices (engine + voice) held out, in a
    seeded order, until each held-out split has its share of speakers; every engine keeps at
    least one voice in training."""
    groups = sorted({(s.engine, s.voice) for s in voices})
    random.Random(seed).shuffle(groups)
    size = {g: sum((s.engine, s.voice) == g for s in voices) for g in groups}
    left = {e: sum(g[0] == e for g in groups) for e in {g[0] for g in groups}}
    wanted = {"test": max(1, round(split[1] * len(voices))), "validation": max(1, round(split[0] * len(voices)))}
    which = {}
    for group in groups:
        target = next((name for name in ("test", "validation") if wanted[name] > 0), None)
        if target is None or left[group[0]] == 1:
            which[group] = "train"
            continue
        which[group] = target
        wanted[target] -= size[group]
        left[group[0]] -= 1
    return [which[(s.engine, s.voice)] for s in voices]


def fit_to_one_second(samples: np.ndarray, offset: int) -> np.ndarray:
    """Place an utterance in a 1 s clip starting at `offset` (cropped when longer)."""
    clip = np.zeros(SAMPLE_RATE, dtype=np.float32)
    samples = samples[:SAMPLE_RATE]
    start = int(np.clip(offset, 0, SAMPLE_RATE - len(samples)))
    clip[start:start + len(samples)] = samples
    return clip


def write_wav(path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """16-bit mono WAV to a path or a binary file object."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path = str(path)
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())


def background_noises(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """White, pink and brown noise plus mains hum: what _background_noise_ holds in Speech Commands."""
    n = NOISE_SECONDS * SAMPLE_RATE
    white = rng.normal(0, 1, n)
    spectrum = np.fft.rfft(rng.normal(0, 1, n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 1.0)
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    brown = np.fft.irfft(spectrum / freqs, n)
    t = np.arange(n) / SAMPLE_RATE
    hum = np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t) + 0.1 * white
    return {name: (0.5 * x / np.abs(x).max()).astype(np.float32)
            for name, x in (("white", white), ("pink", pink), ("brown", brown), ("hum", hum))}


def generate(root: Path, speaker_count: int, utterances: int, seed: int,
             split: tuple[float, float] = (0.15, 0.15)) -> Path:
    """Write the tree under `root` (skipped when it is complete already)."""
    done = root / ".complete"
    if done.exists():
        return root
    if root.exists():
        shutil.rmtree(root)  # a half-written tree from an interrupted run
    rng = np.random.default_rng(seed)
    voices = speakers(speaker_count, seed)
    noises = background_noises(rng)
    for name, samples in noises.items():
        write_wav(root / NOISE / f"{name}.wav", samples)

    jobs = []  # per speaker: [(relative path, word or None for silence, speed, pitch, offset fraction)]
    for s, voice in enumerate(voices):
        words = [(w, w) for w in KEYWORDS for _ in range(utterances)]
        words += [(UNKNOWN, w) for w in rng.choice(UNKNOWN_WORDS, size=2 * utterances, replace=False)]
        words += [(SILENCE, None)] * max(1, utterances // 2)
        jobs.append([(f"{folder}/s{s:03d}_nohash_{k}.wav", word, float(rng.uniform(0.75, 1.3)),
                      int(rng.integers(20, 80)), float(rng.random()))
                     for k, (folder, word) in enumerate(words)])

    def render(speaker_jobs, voice):
        spoken = [(word, speed, pitch) for _, word, speed, pitch, _ in speaker_jobs if word is not None]
        utterances = iter(synthesize_all(voice, spoken))
        for relative, word, _, _, where in speaker_jobs:
            if word is None:
                noise = noises[list(noises)[int(where * 4) % 4]]
                start = int(where * (len(noise) - SAMPLE_RATE))
                clip = noise[start:start + SAMPLE_RATE] * (0.05 + 0.5 * where)
            else:
                samples = next(utterances)
                clip = fit_to_one_second(samples, int(where * max(0, SAMPLE_RATE - len(samples))))
            write_wav(root / relative, clip)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(render, jobs, voices))

    which = split_voices(voices, split, seed)
    for list_name, name in (("validation_list.txt", "validation"), ("testing_list.txt", "test")):
        ids = {f"s{s:03d}_" for s, w in enumerate(which) if w == name}
        lines = sorted(job[0] for speaker_jobs in jobs for job in speaker_jobs if job[0].split("/")[1][:5] in ids)
        (root / list_name).write_text("\n".join(lines) + "\n")
    (root / "speakers.txt").write_text("".join(f"s{s:03d} {v.engine} {v.voice} {w}\n"
                                               for s, (v, w) in enumerate(zip(voices, which))))
    (root / NOTES_FILE).write_text("".join(n + "\n" for n in missing_engines_note()))
    done.write_text("ok\n")
    return root
