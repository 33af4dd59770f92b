"""A keyword-spotting set synthesized with espeak-ng, written in the Speech Commands layout.

Speakers are (accent, voice variant) pairs; every speaker says every keyword a few times at
random speed and pitch. Speakers are split three ways and the validation and test speakers are
listed in `validation_list.txt` / `testing_list.txt`, exactly as in Speech Commands, so test
accuracy measures generalization to voices never heard in training. Generated once per size
and seed, then read from the cache like any other Speech Commands tree.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from workbench.data.splits import DataError

SAMPLE_RATE = 16_000
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine",
                 "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "learn", "follow",
                 "forward", "backward", "visual", "tell", "open", "left-handed", "dawn", "upper")
UNKNOWN, SILENCE, NOISE = "_unknown_", "_silence_", "_background_noise_"
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
NOISE_SECONDS = 20


def espeak() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise DataError("spoken-commands: espeak-ng is not installed; install it with "
                        "`sudo apt-get install espeak-ng`, or use --dataset folder:PATH with recorded speech")
    return binary


def variants() -> list[str]:
    out = subprocess.run([espeak(), "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1].removeprefix("!v/") for line in out.splitlines()[1:] if "!v/" in line]
    return sorted(set(names))


def speakers(count: int, seed: int) -> list[str]:
    """`count` distinct espeak voices 'accent+variant', drawn reproducibly."""
    pool = [f"{accent}+{variant}" for accent in ACCENTS for variant in variants()]
    if count > len(pool):
        raise DataError(f"spoken-commands: asked for {count} speakers, espeak-ng offers {len(pool)}")
    return random.Random(seed).sample(pool, count)


def synthesize(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """One utterance as float32 at 16 kHz (espeak-ng speaks at 22,050 Hz)."""
    from scipy.signal import resample_poly

    wav = subprocess.run([espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                         capture_output=True, check=True).stdout
    samples = np.frombuffer(wav[44:], dtype=np.int16).astype(np.float32) / 32768.0  # 44-byte RIFF header
    return resample_poly(samples, 320, 441).astype(np.float32)


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

    jobs = []  # (relative path, word or None for silence, voice, speed, pitch, offset fraction)
    for s, voice in enumerate(voices):
        speaker_id = f"s{s:03d}"
        words = [(w, w) for w in KEYWORDS for _ in range(utterances)]
        words += [(UNKNOWN, w) for w in rng.choice(UNKNOWN_WORDS, size=2 * utterances, replace=False)]
        words += [(SILENCE, None)] * max(1, utterances // 2)
        for k, (folder, word) in enumerate(words):
            jobs.append((f"{folder}/{speaker_id}_nohash_{k}.wav", word, voice, int(rng.integers(120, 210)),
                         int(rng.integers(20, 80)), float(rng.random())))

    def render(job):
        relative, word, voice, speed, pitch, where = job
        if word is None:
            noise = noises[list(noises)[int(where * 4) % 4]]
            start = int(where * (len(noise) - SAMPLE_RATE))
            clip = noise[start:start + SAMPLE_RATE] * (0.05 + 0.5 * where)
        else:
            samples = synthesize(word, voice, speed, pitch)
            clip = fit_to_one_second(samples, int(where * max(0, SAMPLE_RATE - len(samples))))
        write_wav(root / relative, clip)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(render, jobs))

    order = list(range(speaker_count))
    random.Random(seed).shuffle(order)
    n_val, n_test = max(1, round(split[0] * speaker_count)), max(1, round(split[1] * speaker_count))
    held = {"validation_list.txt": order[:n_val], "testing_list.txt": order[n_val:n_val + n_test]}
    for list_name, members in held.items():
        ids = {f"s{s:03d}_" for s in members}
        lines = sorted(job[0] for job in jobs if job[0].split("/")[1][:5] in ids)
        (root / list_name).write_text("\n".join(lines) + "\n")
    (root / "speakers.txt").write_text("\n".join(f"s{s:03d} {v}" for s, v in enumerate(voices)) + "\n")
    done.write_text("ok\n")
    return root
