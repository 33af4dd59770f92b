"""Search spaces: which RunConfig fields a study varies, and over what range.

A space is a mapping `field -> spec`, declared by each task next to its models and overridable
from YAML:

    learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    optimizer: {type: categorical, choices: [adam, sgd, rmsprop]}
    batch_size: {type: categorical, choices: [32, 64, 128]}

A trial's values are merged into the base config and validated as a normal RunConfig.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.config import ConfigError, RunConfig
from workbench.errors import BadInput

SPEC_TYPES = ("float", "int", "categorical")


class SearchSpaceError(BadInput):
    """A search space that cannot be used; names the source, the parameter and what is wrong."""


def load_space(source: str | Path | dict | None, default: dict[str, dict], base: RunConfig) -> dict[str, dict]:
    """The task's default space, replaced field by field by a YAML file or a dict."""
    if source is None or source == "":
        overrides, where = {}, "default"
    elif isinstance(source, dict):
        overrides, where = source, "search space"
    else:
        import yaml

        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise SearchSpaceError(f"search space {where}: file not found")
        try:
            overrides = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SearchSpaceError(f"search space {where}: not valid YAML ({exc})") from None
        if not isinstance(overrides, dict):
            raise SearchSpaceError(f"search space {where}: expected a mapping of RunConfig fields to specs")
    space = {**default, **overrides}
    for name, spec in space.items():
        check_spec(name, spec, where, base)
    return space


def check_spec(name: str, spec: Any, where: str, base: RunConfig) -> None:
    fields = list(base.to_dict())  # the common fields and the options of this task and model
    if name not in fields or name in ("task", "dataset", "experiment"):
        raise SearchSpaceError(f"search space {where}: '{name}' is not a tunable field or option of "
                               f"{base.task}/{base.model} (tunable: "
                               f"{', '.join(f for f in fields if f not in ('task', 'dataset', 'experiment'))})")
    if not isinstance(spec, dict) or spec.get("type") not in SPEC_TYPES:
        raise SearchSpaceError(f"search space {where}: parameter '{name}' needs type: one of "
                               f"{', '.join(SPEC_TYPES)} (got {spec!r})")
    allowed_keys = {"type", "choices"} if spec["type"] == "categorical" else {"type", "low", "high", "log", "step"}
    if set(spec) - allowed_keys:
        raise SearchSpaceError(f"search space {where}: parameter '{name}': unknown keys "
                               f"{sorted(set(spec) - allowed_keys)} (allowed: {', '.join(sorted(allowed_keys))})")
    if spec["type"] == "categorical":
        values = spec.get("choices")
        if not isinstance(values, list) or not values:
            raise SearchSpaceError(f"search space {where}: parameter '{name}' needs a non-empty list of choices")
    else:
        values = [spec.get("low"), spec.get("high")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) or values[0] >= values[1]:
            raise SearchSpaceError(f"search space {where}: parameter '{name}' needs numbers low < high "
                                   f"(got low={values[0]!r}, high={values[1]!r})")
        if spec.get("log") and values[0] <= 0:
            raise SearchSpaceError(f"search space {where}: parameter '{name}': log scale needs low > 0")
    for value in values:  # every value the study may try must make a valid RunConfig
        try:
            base.replace(**{name: value})
        except ConfigError as exc:
            raise SearchSpaceError(f"search space {where}: parameter '{name}': {value!r} is not allowed "
                                   f"({exc.allowed})") from None


def suggest(trial, space: dict[str, dict]) -> dict[str, Any]:
    values = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            values[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec["type"] == "int":
            values[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")),
                                             step=int(spec.get("step", 1)))
        else:
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                               log=bool(spec.get("log")), step=spec.get("step"))
    return values
