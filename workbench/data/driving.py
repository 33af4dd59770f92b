"""Driving data: CarRacing recordings (cached), Udacity simulator logs, splits, stacks, road masks.

Frames are 96x96 RGB uint8 with a steering label in [-1, 1] (+1 = right). Data comes in
*sequences*, consecutive frames of one drive (a recorded track, or a contiguous stretch of a
Udacity log), and splits are made of whole sequences: neighbouring frames are near duplicates,
so a frame-level random split would leak the test set into training.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.data.splits import DataError
from workbench.data.utf8 import read_utf8

FRAME_SIZE = 96
TEST_FRACTION = 0.2        # of tracks (carracing) or log segments (udacity)
DEFAULT_TRACKS = 24
LOG_SEGMENTS = 10          # a Udacity log is cut into this many contiguous segments before splitting
RECORDING_VERSION = 3      # part of the cache key: bump when the expert or the recorder changes
INDICATOR_ROWS = 12        # CarRacing's bottom bar (speed, ABS, steering, gyro): not road, not scenery
UDACITY_COLUMNS = ("center", "left", "right", "steering", "throttle", "brake", "speed")


@dataclass
class Sequence:
    """Consecutive frames of one drive."""

    name: str
    frames: np.ndarray                # (n, 96, 96, 3) uint8
    steering: np.ndarray              # (n,) float32 in [-1, 1]
    speed: np.ndarray                 # (n,) float32
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class SequenceSplits:
    train: list[Sequence]
    val: list[Sequence]
    test: list[Sequence]
    source: str
    notes: list[str] = field(default_factory=list)


# ---- CarRacing ----------------------------------------------------------------------------

def track_seeds(tracks: int, seed: int) -> list[int]:
    """The reset seeds of the tracks a run records: a block of 1000 per run seed."""
    return [seed * 1000 + i for i in range(tracks or DEFAULT_TRACKS)]


def recording_path(track_seed: int, steps: int) -> Path:
    from workbench.home import data_cache

    length = f"{steps}steps" if steps else "lap"
    return data_cache() / "carracing" / f"v{RECORDING_VERSION}-track{track_seed}-{length}.npz"


def record_tracks(seeds: list[int], steps: int, progress=print) -> list[Sequence]:
    """One sequence per track seed, recorded once by the expert and cached as npz afterwards."""
    from workbench import simulator

    sequences = []
    for number, seed in enumerate(seeds, 1):
        path = recording_path(seed, steps)
        if not path.exists():
            progress(f"recording track {seed} ({number}/{len(seeds)}) with the expert driver")
            recording = simulator.record_track(seed, steps)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
            np.savez_compressed(partial, frames=recording.frames, steering=recording.steering,
                                speed=recording.speed, coverage=recording.coverage, reward=recording.reward)
            os.replace(partial, path)  # other processes see a whole file or none
        with np.load(path) as stored:
            sequences.append(Sequence(f"track {seed}", stored["frames"], stored["steering"], stored["speed"],
                                      {"track_seed": seed, "coverage": float(stored["coverage"]),
                                       "reward": float(stored["reward"])}))
    return sequences


def split_sequences(sequences: list[Sequence], validation_split: float, seed: int | None = None):
    """Whole sequences to test, validation and train (at least one each); shuffled when `seed` is given."""
    order = list(range(len(sequences)))
    if seed is not None:
        order = list(np.random.default_rng(seed).permutation(len(sequences)))
    n_test = max(1, round(TEST_FRACTION * len(order)))
    n_val = max(1, round(validation_split * len(order)))
    if len(order) - n_test - n_val < 1:
        raise DataError(f"{len(order)} sequences cannot be split into train, validation and test "
                        f"({n_test} test, {n_val} validation): record more")
    pick = lambda idx: [sequences[i] for i in sorted(idx)]  # noqa: E731 (keep drive order)
    return pick(order[n_test + n_val:]), pick(order[n_test:n_test + n_val]), pick(order[:n_test])


def load_carracing(tracks: int, steps: int, seed: int, validation_split: float) -> SequenceSplits:
    seeds = track_seeds(tracks, seed)
    sequences = record_tracks(seeds, steps)
    train, val, test = split_sequences(sequences, validation_split)
    return SequenceSplits(train, val, test, source=f"gymnasium CarRacing-v3, expert recordings of tracks "
                                                   f"{seeds[0]}-{seeds[-1]} ({recording_path(seeds[0], steps).parent})")


# ---- Udacity simulator logs ---------------------------------------------------------------

@dataclass
class _LogRow:
    line: int
    images: dict[str, Path]   # camera -> file
    steering: float
    speed: float


def _image_path(csv_dir: Path, raw: str) -> Path:
    """Whatever the simulator wrote (C:\\...\\IMG\\x.jpg, /home/.../IMG/x.jpg, IMG/x.jpg) -> IMG/x.jpg."""
    return csv_dir / "IMG" / re.split(r"[\\/]", raw.strip())[-1]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_driving_log(csv_path: Path, cameras: tuple[str, ...]) -> list[_LogRow]:
    """Rows of a driving_log.csv (header optional); steering checked, image files resolved."""
    if not csv_path.is_file():
        raise DataError(f"udacity driving log {csv_path} does not exist (expected a driving_log.csv)")
    reader = csv.reader(io.StringIO(read_utf8(csv_path, "udacity driving log"), newline=""))
    try:
        lines = [(number, row) for number, row in enumerate(reader, 1) if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise DataError(f"{csv_path}, row {reader.line_num}: {exc}") from None
    if lines and len(lines[0][1]) > 3 and _number(lines[0][1][3]) is None:
        lines = lines[1:]  # a header row (center,left,right,steering,...)
    if not lines:
        raise DataError(f"udacity driving log {csv_path} has no rows")
    rows = []
    for number, row in lines:
        if len(row) < 4:
            raise DataError(f"{csv_path}, row {number}: expected the columns {','.join(UDACITY_COLUMNS)}, "
                            f"got {len(row)} value(s)")
        steering = _number(row[3])
        if steering is None or not np.isfinite(steering):
            raise DataError(f"{csv_path}, row {number}: steering {row[3].strip()!r} is not a number")
        if not -1.0 <= steering <= 1.0:
            raise DataError(f"{csv_path}, row {number}: steering {steering} is outside [-1, 1]")
        images = {camera: _image_path(csv_path.parent, row[column]) for column, camera in enumerate(UDACITY_COLUMNS[:3])
                  if camera in cameras and row[column].strip()}
        if "center" not in images:
            raise DataError(f"{csv_path}, row {number}: no center camera image")
        speed = _number(row[6]) if len(row) > 6 else None
        rows.append(_LogRow(number, images, steering, speed if speed is not None else 0.0))
    missing = [(row.line, path) for row in rows for path in row.images.values() if not path.is_file()]
    if missing:
        line, first = missing[0]
        raise DataError(f"{csv_path}: {len(missing)} image(s) named in the log are missing; first: {first} "
                        f"(row {line})")
    return rows


def _load_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def load_udacity(csv_path: str | Path, steering_correction: float, validation_split: float,
                 seed: int) -> SequenceSplits:
    """A Udacity simulator log split by contiguous segments; side cameras (corrected) in training only."""
    from PIL import Image

    csv_path = Path(csv_path).expanduser().resolve()
    cameras = ("center", "left", "right") if steering_correction > 0 else ("center",)
    rows = read_driving_log(csv_path, cameras)
    reference, odd = None, []
    frames: dict[str, list] = {camera: [] for camera in cameras}
    for row in rows:
        for camera in cameras:
            if camera not in row.images:
                frames[camera].append(None)
                continue
            image = _load_image(row.images[camera])
            reference = reference or image.size
            if image.size != reference:
                odd.append((row.images[camera], image.size))
            frames[camera].append(np.asarray(image.resize((FRAME_SIZE, FRAME_SIZE), Image.BILINEAR), np.uint8))
    notes = []
    if odd:
        path, (width, height) = odd[0]
        notes.append(f"{len(odd)} image(s) in {csv_path.parent / 'IMG'} are not {reference[0]}x{reference[1]} "
                     f"like the first one (e.g. {path.name}: {width}x{height}); resized to "
                     f"{FRAME_SIZE}x{FRAME_SIZE} like every image")
    steering = np.asarray([row.steering for row in rows], np.float32)
    speed = np.asarray([row.speed for row in rows], np.float32)

    segments = np.array_split(np.arange(len(rows)), min(LOG_SEGMENTS, len(rows)))
    centre = [Sequence(f"rows {rows[idx[0]].line}-{rows[idx[-1]].line}", np.stack([frames["center"][i] for i in idx]),
                       steering[idx], speed[idx], {"rows": (rows[idx[0]].line, rows[idx[-1]].line)})
              for idx in segments]
    train, val, test = split_sequences(centre, validation_split, seed)
    sides = []
    for sequence in train:
        first, last = sequence.info["rows"]
        idx = [i for i, row in enumerate(rows) if first <= row.line <= last]
        for camera, sign in (("left", 1.0), ("right", -1.0)):
            kept = [i for i in idx if camera in frames and frames[camera][i] is not None]
            if kept:
                label = np.clip(steering[kept] + sign * steering_correction, -1, 1).astype(np.float32)
                sides.append(Sequence(f"{sequence.name} ({camera} camera)",
                                      np.stack([frames[camera][i] for i in kept]), label, speed[kept], sequence.info))
    return SequenceSplits(train + sides, val, test, source=str(csv_path), notes=notes)


# ---- examples -----------------------------------------------------------------------------

def examples(sequences: list[Sequence], frame_stack: int = 0):
    """(x, y, sequence index) over sequences; with `frame_stack` each x is that many consecutive
    frames ending at the labelled one (oldest first), never crossing a sequence boundary."""
    xs, ys, owner = [], [], []
    for number, sequence in enumerate(sequences):
        if frame_stack:
            if len(sequence) < frame_stack:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(sequence.frames, frame_stack, axis=0)
            xs.append(np.moveaxis(windows, -1, 1))  # (n - T + 1, T, 96, 96, 3)
            ys.append(sequence.steering[frame_stack - 1:])
        else:
            xs.append(sequence.frames)
            ys.append(sequence.steering)
        owner.append(np.full(len(ys[-1]), number, np.int32))
    if not xs:
        shape = (0, frame_stack, FRAME_SIZE, FRAME_SIZE, 3) if frame_stack else (0, FRAME_SIZE, FRAME_SIZE, 3)
        return np.zeros(shape, np.uint8), np.zeros(0, np.float32), np.zeros(0, np.int32)
    return np.concatenate(xs), np.concatenate(ys).astype(np.float32), np.concatenate(owner)


def road_mask(frames: np.ndarray) -> np.ndarray:
    """1 where a CarRacing frame (fixed colours) shows road: the grey asphalt (rendered as 100-107 in
    every channel, edges blended) and the red/white kerbs; 0 for grass, the car and the bottom bar."""
    frames = np.asarray(frames, np.int16)
    low, high = frames.min(axis=-1), frames.max(axis=-1)
    red, green, blue = frames[..., 0], frames[..., 1], frames[..., 2]
    asphalt = (high - low <= 6) & (low >= 92) & (high <= 118)
    kerb_red = (red >= 235) & (green <= 60) & (blue <= 60)   # the car's red is ~204
    kerb_white = low >= 235
    mask = asphalt | kerb_red | kerb_white
    mask[..., frames.shape[-3] - INDICATOR_ROWS:, :] = False
    return mask[..., None].astype(np.uint8)


def flip_horizontally(x, y, flip_target: bool = False):
    """Mirror a frame (or stack) left-right; steering changes sign, a mask (flip_target) is mirrored too."""
    import tensorflow as tf

    mirrored = tf.reverse(x, axis=[-2])  # width is the second-to-last axis of (H, W, C) and (T, H, W, C)
    return mirrored, (tf.reverse(y, axis=[-2]) if flip_target else -y)
