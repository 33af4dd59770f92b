"""Damaged state files are kept aside, never silently reset or deleted.

A crash, a full disk or a hand edit can leave a state file that no longer parses. The command that
finds it renames it `<name>.corrupt-<time>` (so nothing is lost and the next command starts
clean) and says which file and where the copy is.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def set_aside(path: Path) -> Path:
    """Rename a damaged file next to itself; returns where it went."""
    kept = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, kept)
    return kept


def report(what: str, path: Path, problem: str, kept: Path, consequence: str) -> None:
    print(f"workbench: {what} {path} is damaged ({problem}); kept it as {kept}; {consequence}",
          file=sys.stderr, flush=True)
