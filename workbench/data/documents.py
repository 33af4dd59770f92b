"""Documents for language modelling, split by document so no text is in two splits.

The named corpora come through the text task's loaders (their labels are ignored). A `folder:`
is every .txt file under it, with or without class sub-folders, and a `csv:` only needs its text
column: a language model has no labels to ask for. Duplicate texts are dropped before the split.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.data.utf8 import read_utf8
from workbench.errors import DataError

ALLOWED = "fortunes, rotten-tomatoes, folder:PATH (.txt files) or csv:PATH (a text column)"


@dataclass
class Documents:
    texts: list[str]
    groups: list[str] | None  # e.g. the movie of each review: a split keeps each group whole
    source: str
    notes: list[str]


def load_documents(dataset: str, text_column: str = "text") -> Documents:
    from workbench.data import text as sources

    if dataset in ("fortunes", "rotten-tomatoes"):
        source = sources.load_fortunes() if dataset == "fortunes" else sources.load_rotten_tomatoes()
        groups = None if source.groups is None else [str(g) for g in source.groups]
        return Documents([str(t) for t in source.texts], groups, source.source, list(source.notes))
    if dataset.startswith("csv:"):
        return _csv(dataset, Path(dataset.removeprefix("csv:")).expanduser(), text_column)
    return _folder(dataset, Path(dataset.removeprefix("folder:")).expanduser())


def _kept(dataset: str, texts: list[str], source: str, what: str) -> Documents:
    unique = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if not unique:
        raise DataError(f"dataset '{dataset}': no text to learn from ({what}); a language model needs "
                        f"non-empty documents: {ALLOWED}")
    notes = [f"{len(texts) - len(unique)} of {len(texts)} documents dropped (empty or duplicated)"]
    return Documents(unique, None, source, notes)


def _folder(dataset: str, root: Path) -> Documents:
    if not root.is_dir():
        raise DataError(f"dataset '{dataset}': {root} is not a directory (allowed: {ALLOWED})")
    files = sorted(root.rglob("*.txt"))
    texts = [read_utf8(file, f"dataset '{dataset}'") for file in files]
    return _kept(dataset, texts, str(root.resolve()), f"{len(files)} .txt files, none with text")


def _csv(dataset: str, file: Path, column: str) -> Documents:
    if not file.is_file():
        raise DataError(f"dataset '{dataset}': {file} is not a file (allowed: {ALLOWED})")
    reader = csv.DictReader(io.StringIO(read_utf8(file, f"dataset '{dataset}'"), newline=""))
    try:
        if column not in (reader.fieldnames or []):
            raise DataError(f"dataset '{dataset}': {file} has no '{column}' column (columns: "
                            f"{', '.join(reader.fieldnames or [])}; choose another with text_column)")
        texts = [row[column] or "" for row in reader]
    except csv.Error as exc:
        raise DataError(f"dataset '{dataset}': {file} line {reader.line_num}: {exc}") from None
    return _kept(dataset, texts, str(file.resolve()), f"{len(texts)} rows, none with text in '{column}'")


def split_documents(documents: Documents, fractions: tuple[float, float], seed: int):
    """(train, validation, test) lists of texts; `fractions` are validation's and test's shares.
    Whole groups move together when the source has them."""
    keys = documents.groups or [str(i) for i in range(len(documents.texts))]
    names = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(names))
    n_val, n_test = (max(1, int(round(len(names) * f))) for f in fractions)
    if len(names) < 3 or n_val + n_test >= len(names):
        raise DataError(f"{documents.source}: {len(names)} documents are too few to split into training, "
                        "validation and test (at least 3 are needed, and many more to learn from)")
    part = {names[i]: 2 for i in order[:n_test]} | {names[i]: 1 for i in order[n_test:n_test + n_val]}
    splits: tuple[list[str], list[str], list[str]] = ([], [], [])
    for text, key in zip(documents.texts, keys):
        splits[part.get(key, 0)].append(text)
    return splits
