"""`${...}` references in step parameters: checked when the file is loaded, substituted when the
step is about to run."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterator

REFERENCE = re.compile(r"\$\{([^}]*)\}")
REFERENCE_FORMS = ("${params.NAME}", "${steps.STEP.outputs.NAME}", "${steps.STEP.outputs.NAME.KEY}",
                   "${steps.STEP.run_id}", "${pipeline.run_id}", "${pipeline.name}", "${pipeline.date}")

DEFERRED = object()  # a reference known only while the pipeline runs


def parse_reference(text: str) -> tuple[str, ...] | None:
    parts = tuple(p.strip() for p in text.split("."))
    if len(parts) == 2 and parts[0] == "params":
        return parts
    if len(parts) == 2 and parts[0] == "pipeline" and parts[1] in ("run_id", "name", "date"):
        return parts
    if len(parts) == 3 and parts[0] == "steps" and parts[2] == "run_id":
        return parts
    if len(parts) >= 4 and parts[0] == "steps" and parts[2] == "outputs" and all(parts[3:]):
        return parts
    return None


def references(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from REFERENCE.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def substitute(value: Any, lookup: Callable[[tuple[str, ...]], Any]) -> Any:
    """Replace ${...} references. A string that is one reference takes the referenced value (and
    its type); references inside a longer string are written into it."""
    if isinstance(value, dict):
        return {k: substitute(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, lookup) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = REFERENCE.fullmatch(value.strip())
    if whole:
        return lookup(parse_reference(whole.group(1)))

    def text(match: re.Match) -> str:
        found = lookup(parse_reference(match.group(1)))
        if found is DEFERRED:
            return match.group(0)
        return found if isinstance(found, str) else json.dumps(found)

    return REFERENCE.sub(text, value)


def known_now(value: Any, parameters: dict) -> Any:
    """`value` with the pipeline parameters written in; other references stay DEFERRED."""
    return substitute(value, lambda ref: parameters[ref[1]] if ref[0] == "params" else DEFERRED)


def check_references(where: str, value: Any, needs: list[str], parameters: dict, fail) -> None:
    for text in references(value):
        ref = parse_reference(text)
        if ref is None:
            raise fail(where, f"${{{text}}} is not a reference; use {', '.join(REFERENCE_FORMS)}")
        if ref[0] == "params" and ref[1] not in parameters:
            raise fail(where, f"${{{text}}}: unknown pipeline parameter {ref[1]!r}; declared: "
                       f"{', '.join(parameters) or 'none'}")
        if ref[0] == "steps" and ref[1] not in needs:
            raise fail(where, f"${{{text}}}: step {ref[1]!r} is not in this step's needs "
                       f"({', '.join(needs) or 'none'})")
