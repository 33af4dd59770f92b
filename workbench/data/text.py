"""Text sources: Debian fortunes by topic, class-per-folder .txt trees, and CSV files.

Each loader returns the texts as a NumPy array of str, integer labels and the class names.
Duplicates are dropped before any split, so no text can land in two splits.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.data.splits import DataError

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNE_TOPICS = ("art", "computers", "people", "politics", "science", "work")
MIN_TEXT_CHARS = 20  # shorter records are signatures or stray lines, not quotations


@dataclass
class TextSource:
    texts: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    source: str
    notes: list[str]


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _deduplicate(texts: list[str], labels: list[int], class_names: list[str], where: str) -> TextSource:
    """Drop near-empty texts, exact repeats, and texts filed under two classes (ambiguous)."""
    by_key: dict[str, set[int]] = {}
    first: dict[str, str] = {}
    for text, label in zip(texts, labels):
        key = normalized(text).lower()
        if len(key) < MIN_TEXT_CHARS:
            continue
        by_key.setdefault(key, set()).add(label)
        first.setdefault(key, normalized(text))
    kept = [(first[k], next(iter(v))) for k, v in by_key.items() if len(v) == 1]
    notes = [f"{len(texts) - len(kept)} of {len(texts)} texts dropped (shorter than {MIN_TEXT_CHARS} "
             "characters, duplicated, or filed under two classes)"]
    if not kept:
        raise DataError(f"{where}: no usable texts (each needs at least {MIN_TEXT_CHARS} characters)")
    out_texts, out_labels = zip(*kept)
    # object arrays of str: what Keras (and MLflow serving) accept for a string model input
    return TextSource(np.array(out_texts, dtype=object), np.array(out_labels, dtype=np.int64), class_names,
                      where, notes)


def load_fortunes(folder: Path = FORTUNES_DIR, topics: tuple[str, ...] = FORTUNE_TOPICS) -> TextSource:
    missing = [t for t in topics if not (folder / t).is_file()]
    if missing:
        raise DataError(f"fortunes: {', '.join(str(folder / t) for t in missing)} not found. Install them with "
                        "`sudo apt-get install fortunes`, or use --dataset csv:PATH / folder:PATH")
    texts, labels = [], []
    for label, topic in enumerate(topics):
        content = (folder / topic).read_text(encoding="utf-8", errors="replace")
        for record in re.split(r"^%\s*$", content, flags=re.MULTILINE):
            texts.append(record)
            labels.append(label)
    return _deduplicate(texts, labels, list(topics), str(folder))


def load_text_folder(path: str) -> TextSource:
    """One sub-folder of .txt files per class (the aclImdb layout); empty files are skipped with a warning."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"text folder dataset: {root} is not a directory")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for class_dir in class_dirs:
        files = sorted(class_dir.glob("*.txt"))
        if not files:
            raise DataError(f"text folder dataset: class folder {class_dir} has no .txt files")
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"text folder dataset: {file} is not UTF-8 text ({exc.reason})") from None
            if not text.strip():
                warnings.warn(f"skipping empty text file {file}", stacklevel=2)
    if len(class_dirs) < 2:
        raise DataError(f"text folder dataset: {root} has {len(class_dirs)} class folder(s); need at least 2")
    import keras

    class_names = [d.name for d in class_dirs]
    dataset = keras.utils.text_dataset_from_directory(
        root, labels="inferred", label_mode="int", class_names=class_names, batch_size=None, shuffle=False,
        verbose=False)
    texts, labels = [], []
    for text, label in dataset.as_numpy_iterator():
        texts.append(text.decode("utf-8"))
        labels.append(int(label))
    return _deduplicate(texts, labels, class_names, str(root.resolve()))


def load_text_csv(path: str, text_column: str = "text", label_column: str = "label") -> TextSource:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"csv dataset: {file} is not a file")
    with file.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for wanted, option in ((text_column, "text_column"), (label_column, "label_column")):
            if wanted not in columns:
                raise DataError(f"csv dataset: {file} has no '{wanted}' column (columns: {', '.join(columns)}; "
                                f"choose another with {option})")
        rows = [(row[text_column] or "", (row[label_column] or "").strip()) for row in reader]
    rows = [(text, label) for text, label in rows if label]
    class_names = sorted({label for _, label in rows})
    if len(class_names) < 2:
        raise DataError(f"csv dataset: {file} has {len(class_names)} distinct label(s); need at least 2")
    index = {name: i for i, name in enumerate(class_names)}
    return _deduplicate([t for t, _ in rows], [index[label] for _, label in rows], class_names,
                        str(file.resolve()))
