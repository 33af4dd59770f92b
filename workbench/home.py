"""The workbench home folder: embedded stores, caches and executed notebooks live here.

Default `./.workbench`, overridden by WORKBENCH_HOME. Each store can instead point at a server
(MLFLOW_TRACKING_URI for tracking).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


PRIVATE = 0o700  # the home holds runs, models, data and the server password: its owner's alone


def home() -> Path:
    path = Path(os.environ.get("WORKBENCH_HOME", ".workbench")).expanduser().resolve()
    path.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
    return path


def subdir(name: str) -> Path:
    path = home() / name
    path.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
    return path


def data_cache() -> Path:
    return subdir("data")


def checkpoints(run_id: str) -> Path:
    return subdir("checkpoints") / run_id


def epoch_checkpoints(run_id: str) -> Path:
    """The model after each epoch of a run (`epoch-003.keras`), to fork the run from any of them."""
    return subdir("epochs") / run_id


def executed_notebooks() -> Path:
    return subdir("notebooks")
