"""What a pipeline step hands on: values its notebook records for the steps after it.

A step notebook records a value with

    from workbench.pipelines.outputs import record
    record("best_config", {"learning_rate": 0.003, "dropout": 0.1})

and a downstream step receives it as a papermill parameter through a reference in the pipeline
file: `config: "${steps.tune.outputs.best_config}"`. The runner tells the step's kernel where to
write through an environment variable; outside a pipeline `record` does nothing, so the same
notebook still runs by hand in JupyterLab. Reading a pipeline run back from MLflow is
`workbench.pipelines.runs`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

OUTPUTS_ENV = "WORKBENCH_STEP_OUTPUTS"  # JSON file the step's outputs go to

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OutputError(ValueError):
    """A value that cannot be handed downstream (bad name, not JSON)."""


def record(name: str, value: Any) -> None:
    """Hand `value` (anything JSON can hold; numpy scalars and arrays are converted) to downstream
    steps as `${steps.<this step>.outputs.<name>}`. Recording a name twice keeps the last value."""
    if not isinstance(name, str) or not NAME.match(name):
        raise OutputError(f"output name {name!r}: use letters, digits and _ (it appears in "
                          "${steps.STEP.outputs.NAME} references)")
    try:
        encoded = json.loads(json.dumps(value, default=_plain))
    except (TypeError, ValueError) as exc:
        raise OutputError(f"output {name!r}: {exc}; record numbers, strings, booleans, None, "
                          "lists and dicts of them") from None
    path = os.environ.get(OUTPUTS_ENV)
    if not path:
        return  # not inside a pipeline step
    outputs = read_outputs(Path(path))
    outputs[name] = encoded
    write_json(Path(path), outputs)


def recorded() -> dict[str, Any]:
    """The outputs this step recorded so far ({} outside a pipeline)."""
    path = os.environ.get(OUTPUTS_ENV)
    return read_outputs(Path(path)) if path else {}


def read_outputs(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_json(path: Path, content: Any) -> None:
    """Write through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(content, indent=1, sort_keys=True))
    os.replace(tmp, path)
