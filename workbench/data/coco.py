"""A user's COCO-format object-detection dataset (`coco:PATH`): images, boxes and class names.

Every image is letterboxed to one frame size (scaled to fit, keeping its aspect ratio, padded
bottom/right with black) and its boxes are scaled by the same factor, so boxes are always
[x0, y0, x1, y1] float32 in the pixels of the frame they belong to; labels are class indices
0..C-1 into `class_names`, the categories in increasing id order.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.data.utf8 import read_utf8
from workbench.errors import DataError

WHAT = "coco dataset"
SHAPE = ('a COCO detection file is a JSON object with "images" (id, file_name), "annotations" '
         '(id, image_id, category_id, bbox [x, y, width, height]) and "categories" (id, name)')
BOX_TOLERANCE = 1.0   # pixels a box may stick out of its image (rounding in labelling tools); clipped
NOTES_PER_KIND = 10   # one line per skipped item up to this many, then a count, so notes stay readable


@dataclass
class DetectionData:
    frames: np.ndarray            # (n, H, W, 3) uint8, every image letterboxed to one size
    boxes: list[np.ndarray]       # n arrays (k_i, 4) float32, in the letterboxed frame's pixels
    labels: list[np.ndarray]      # n arrays (k_i,) int32
    class_names: list[str]        # category names in increasing category id order
    names: list[str]              # image file names
    notes: list[str] = field(default_factory=list)
    source: str = ""              # the annotations file path

    def __len__(self) -> int:
        return len(self.frames)


def annotations_file(path: Path) -> Path:
    """The annotations file of `path`: the file itself, or in a folder its annotations.json, else
    its only *.json file."""
    path = Path(path).expanduser()
    if path.is_file():
        return path.resolve()
    if not path.is_dir():
        raise DataError(f"{WHAT}: {path} does not exist (expected a COCO annotations .json file or a folder "
                        f"holding annotations.json)")
    if (path / "annotations.json").is_file():
        return (path / "annotations.json").resolve()
    candidates = sorted(p for p in path.glob("*.json") if p.is_file())
    if len(candidates) == 1:
        return candidates[0].resolve()
    if not candidates:
        raise DataError(f"{WHAT}: {path} holds no annotations.json (nor any other .json file)")
    raise DataError(f"{WHAT}: {path} holds no annotations.json and {len(candidates)} other .json files "
                    f"({', '.join(p.name for p in candidates[:5])}); name the annotations file itself")


class _Skipped:
    """Skipped items, by kind; `notes()` gives one line per item, the rest of a long kind as a count."""

    def __init__(self):
        self.kinds: dict[str, list[str]] = {}

    def add(self, kind: str, line: str):
        self.kinds.setdefault(kind, []).append(line)

    def notes(self) -> list[str]:
        lines = []
        for kind, items in self.kinds.items():
            lines += items[:NOTES_PER_KIND]
            if len(items) > NOTES_PER_KIND:
                lines.append(f"... and {len(items) - NOTES_PER_KIND} more {kind}")
        return lines


def _read_json(file: Path) -> dict:
    text = read_utf8(file, WHAT)
    if not text.strip():
        raise DataError(f"{WHAT}: {file} is empty; {SHAPE}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{WHAT}: {file} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                        f"column {exc.colno}") from None
    if not isinstance(document, dict):
        raise DataError(f"{WHAT}: {file} holds a JSON {type(document).__name__}, not an object; {SHAPE}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(document.get(key), list) or not document[key]:
            state = "is missing" if key not in document else "is empty" if document[key] == [] else "is not a list"
            raise DataError(f'{WHAT}: {file}: "{key}" {state}; {SHAPE}')
    return document


def _field(file: Path, entry, key: str, kinds: tuple, where: str):
    """entry[key], checked to be one of `kinds` (bool is never a number here)."""
    value = entry.get(key) if isinstance(entry, dict) else None
    if value is None or isinstance(value, bool) or not isinstance(value, kinds):
        got = "missing" if value is None else repr(value)
        raise DataError(f'{WHAT}: {file}: {where} has no valid "{key}" (got {got})')
    return value


def _categories(file: Path, document: dict) -> tuple[dict, list[str]]:
    """{category id: class index} and the names, in increasing id order."""
    named = {}
    for number, entry in enumerate(document["categories"]):
        category_id = _field(file, entry, "id", (int,), f"category #{number}")
        name = _field(file, entry, "name", (str,), f"category {category_id}")
        if category_id in named:
            raise DataError(f"{WHAT}: {file}: category id {category_id} appears twice "
                            f"({named[category_id]!r} and {name!r})")
        named[category_id] = name
    ids = sorted(named)
    return {category_id: index for index, category_id in enumerate(ids)}, [named[i] for i in ids]


def _images(file: Path, document: dict) -> dict:
    """{image id: file name}, in file order."""
    images = {}
    for number, entry in enumerate(document["images"]):
        image_id = _field(file, entry, "id", (int, str), f"image #{number}")
        file_name = _field(file, entry, "file_name", (str,), f"image {image_id}")
        if image_id in images:
            raise DataError(f"{WHAT}: {file}: image id {image_id} appears twice "
                            f"({images[image_id]} and {file_name})")
        images[image_id] = file_name
    return images


def _annotations(file: Path, document: dict, images: dict, classes: dict, skipped: _Skipped) -> dict:
    """{image id: [(annotation id, class index, [x, y, w, h])]}; crowd regions left out."""
    per_image: dict = {image_id: [] for image_id in images}
    crowd = 0
    for number, entry in enumerate(document["annotations"]):
        ann_id = entry.get("id", f"#{number}") if isinstance(entry, dict) else f"#{number}"
        where = f"annotation {ann_id}"
        image_id = _field(file, entry, "image_id", (int, str), where)
        category_id = _field(file, entry, "category_id", (int,), where)
        if image_id not in images:
            raise DataError(f"{WHAT}: {file}: {where} refers to image_id {image_id!r}, which is not among "
                            f'"images"')
        if category_id not in classes:
            raise DataError(f"{WHAT}: {file}: {where} has category_id {category_id}, which is not among "
                            f'"categories" (known ids: {", ".join(map(str, sorted(classes)))})')
        bbox = entry.get("bbox")
        if (not isinstance(bbox, list) or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in bbox)):
            raise DataError(f'{WHAT}: {file}: {where} (image {images[image_id]}) has bbox {bbox!r}; '
                            f"expected [x, y, width, height], four numbers in pixels")
        if entry.get("iscrowd", 0):
            crowd += 1  # crowd regions mark many objects at once: no single box to learn
            continue
        per_image[image_id].append((ann_id, classes[category_id], [float(v) for v in bbox]))
    if crowd:
        skipped.add("crowd", f"{crowd} crowd annotation(s) (iscrowd: 1) skipped: they mark groups, not objects")
    return per_image


def _find_image(folder: Path, file_name: str) -> Path | None:
    for candidate in (folder / file_name, folder / "images" / file_name):
        if candidate.is_file():
            return candidate
    return None


def _open_rgb(path: Path):
    """The image as RGB, or the reason it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")  # PIL warns when a palette with transparency goes straight to RGB
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        return str(exc) or type(exc).__name__


def letterbox(image, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """A PIL image scaled to fit (height, width) keeping its aspect ratio, padded bottom/right with
    black, as uint8 (H, W, 3); and the scale factor applied."""
    from PIL import Image

    height, width = size
    scale = min(height / image.height, width / image.width)
    new_size = (max(1, min(width, round(image.width * scale))), max(1, min(height, round(image.height * scale))))
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:new_size[1], :new_size[0]] = np.asarray(image.resize(new_size, Image.BILINEAR), np.uint8)
    return frame, scale


def _boxes(rows: list, file_name: str, width: int, height: int, skipped: _Skipped):
    """Boxes as [x0, y0, x1, y1] in the image's pixels (within tolerance: clipped), labels; a box
    outside its image is skipped with a note."""
    boxes, labels = [], []
    for ann_id, label, (x, y, w, h) in rows:
        outside = (w <= 0 or h <= 0 or x < -BOX_TOLERANCE or y < -BOX_TOLERANCE
                   or x + w > width + BOX_TOLERANCE or y + h > height + BOX_TOLERANCE)
        if outside:
            skipped.add("boxes outside their image", f"annotation {ann_id}: box [x={x:g}, y={y:g}, w={w:g}, h={h:g}] "
                        f"is not inside image {file_name} ({width}x{height}): skipped")
            continue
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(width), x + w), min(float(height), y + h)
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            skipped.add("boxes outside their image", f"annotation {ann_id}: box [x={x:g}, y={y:g}, w={w:g}, h={h:g}] "
                        f"is empty inside image {file_name} ({width}x{height}): skipped")
            continue
        boxes.append([x0, y0, x1, y1])
        labels.append(label)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int32)


def load_coco(path: str | Path, size: tuple[int, int] = (256, 256)) -> DetectionData:
    """The images and boxes of a COCO detection file, letterboxed to `size` (height, width).

    Images are looked up next to the annotations file, then in its `images/` subfolder. Images
    that are missing or cannot be decoded, boxes outside their image and crowd annotations are
    skipped with a note; images without annotations stay (they teach what is not an object).
    A malformed file, an annotation naming an unknown image or category, or nothing usable left is
    a DataError."""
    file = annotations_file(Path(path))
    folder = file.parent
    document = _read_json(file)
    classes, class_names = _categories(file, document)
    images = _images(file, document)
    skipped = _Skipped()
    per_image = _annotations(file, document, images, classes, skipped)

    frames, boxes, labels, names = [], [], [], []
    missing = unreadable = 0
    declared = {entry["id"]: entry for entry in document["images"]}
    for image_id, file_name in images.items():
        found = _find_image(folder, file_name)
        if found is None:
            missing += 1
            skipped.add("missing images", f"image {file_name} (id {image_id}) is in neither {folder} nor "
                        f"{folder / 'images'}: skipped with its {len(per_image[image_id])} box(es)")
            continue
        image = _open_rgb(found)
        if isinstance(image, str):
            unreadable += 1
            skipped.add("unreadable images", f"image {found} cannot be decoded ({image}): skipped")
            continue
        stated = (declared[image_id].get("width"), declared[image_id].get("height"))
        if stated != (None, None) and stated != image.size:
            # boxes are checked against the pixels actually there, which is what they were drawn on
            skipped.add("images of another size than stated", f"image {file_name} is {image.size[0]}x{image.size[1]}, "
                        f"not {stated[0]}x{stated[1]} as the annotations say; its real size is used")
        image_boxes, image_labels = _boxes(per_image[image_id], file_name, image.width, image.height, skipped)
        frame, scale = letterbox(image, size)
        image_boxes = image_boxes * np.float32(scale)
        image_boxes[:, 0::2] = np.clip(image_boxes[:, 0::2], 0, size[1])
        image_boxes[:, 1::2] = np.clip(image_boxes[:, 1::2], 0, size[0])
        frames.append(frame)
        boxes.append(image_boxes.astype(np.float32))
        labels.append(image_labels)
        names.append(file_name)

    notes = skipped.notes()
    if not frames:
        reasons = ", ".join(part for part in (f"{missing} missing" if missing else "",
                                              f"{unreadable} undecodable" if unreadable else "") if part)
        raise DataError(f"{WHAT}: {file}: none of its {len(images)} image(s) could be read ({reasons}); images "
                        f"are looked up in {folder} and {folder / 'images'}; first: {notes[0] if notes else '-'}")
    if not any(len(b) for b in boxes):
        raise DataError(f"{WHAT}: {file}: no usable box is left in its {len(frames)} readable image(s)"
                        + (f" ({'; '.join(notes[:3])})" if notes else ""))
    return DetectionData(np.stack(frames), boxes, labels, class_names, names, notes, str(file))


def split_detection(data: DetectionData, validation_split: float, seed: int,
                    test_fraction: float = 0.2) -> tuple[list[int], list[int], list[int]]:
    """Image indices for train, validation and test (at least one each), assigned at random by
    `seed`; each list in dataset order."""
    count = len(data.frames)
    order = [int(i) for i in np.random.default_rng(seed).permutation(count)]
    n_test = max(1, round(test_fraction * count))
    n_val = max(1, round(validation_split * count))
    if count - n_test - n_val < 1:
        raise DataError(f"{WHAT}: {data.source}: {count} usable image(s) cannot be split into train, validation "
                        f"and test ({n_test} test, {n_val} validation, at least 1 train): add images")
    return sorted(order[n_test + n_val:]), sorted(order[n_test:n_test + n_val]), sorted(order[:n_test])
