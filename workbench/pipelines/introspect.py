"""A step's notebook, read without running it: where it is and what its `parameters` cell defines.
Also how paths appear in messages."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from workbench.home import NOTEBOOKS_DIR, PROJECT_ROOT

NOT_LITERAL = object()  # a notebook default that is an expression: any value is accepted


def find_notebook(value: Any, fail) -> Path:
    """A notebook in notebooks/ by name, or a path relative to the repository (or absolute)."""
    if not isinstance(value, str) or not value.strip():
        raise fail("required: a notebook in notebooks/ (e.g. train.ipynb) or a path relative to the repository")
    for candidate in (NOTEBOOKS_DIR / value, PROJECT_ROOT / value):
        if candidate.suffix == ".ipynb" and candidate.is_file():
            return candidate.resolve()
    available = ", ".join(sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")))
    raise fail(f"{value!r} not found in notebooks/ ({available}) nor relative to the repository root "
               f"{PROJECT_ROOT}")


def notebook_parameters(path: Path, text: str, fail) -> dict[str, Any] | None:
    """Names assigned in the cell tagged `parameters`, with their literal defaults; None without one."""
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError, TypeError):
        raise fail(f"{display_path(path)} is not a notebook (JSON with cells)") from None
    for cell in cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
            try:
                tree = ast.parse("\n".join(lines))
            except SyntaxError as exc:
                raise fail(f"{display_path(path)}: the parameters cell is not valid Python: {exc}") from None
            found = {}
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else \
                    [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
                for target in targets:
                    if isinstance(target, ast.Name):
                        try:
                            found[target.id] = ast.literal_eval(node.value)
                        except ValueError:
                            found[target.id] = NOT_LITERAL
            return found
    return None


def display_path(path: Path) -> str:
    """Relative to the working directory when under it, as the user typed it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
