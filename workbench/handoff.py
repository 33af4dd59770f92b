"""The run hand-off between a command and the notebook kernel it starts.

The command names a file in WORKBENCH_RUN_ID_FILE; the first top-level run the kernel creates
writes its id there, so the command can attach the executed notebook to that run, or end it
FAILED when the kernel dies. A core module: tracking writes it when it creates the run, and
notebooks reads it, without either importing the other (or MLflow) for it.
"""

from __future__ import annotations

import os
from pathlib import Path

RUN_ID_FILE_ENV = "WORKBENCH_RUN_ID_FILE"  # where a kernel's new top-level run writes its id


def announce(run_id: str) -> None:
    """Tell the process that started this kernel which run it created (once: the first run wins)."""
    path = os.environ.get(RUN_ID_FILE_ENV)
    if path and not os.path.exists(path):
        Path(f"{path}.partial").write_text(run_id)
        os.replace(f"{path}.partial", path)  # the reader never sees half an id
