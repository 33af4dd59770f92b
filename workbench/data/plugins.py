"""Datasets that other installed packages add to a task, through the entry-point group
`workbench.datasets`:

    [project.entry-points."workbench.datasets"]
    wine = "workbench_tabular.data:WINE"      # a workbench.data.plugins.Dataset

A dataset names its task and loads the three splits itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Callable

from workbench.config import Option
from workbench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from workbench.config import RunConfig
    from workbench.data.splits import Splits

DATASETS_GROUP = "workbench.datasets"


@dataclass(frozen=True)
class Dataset:
    """A named dataset of one task: `load(config)` returns its train/validation/test Splits."""

    task: str
    load: Callable[["RunConfig"], "Splits"]
    description: str = ""
    options: tuple[Option, ...] = ()


@functools.cache
def plugin_datasets() -> dict[str, Dataset]:
    """Dataset name -> Dataset, from every installed package; two claims on one name are an error."""
    found: dict[str, Dataset] = {}
    origin: dict[str, str] = {}
    for point in entry_points(group=DATASETS_GROUP):
        if point.name in found:
            raise ConfigError("dataset", point.name,
                              f"one dataset per name: '{point.name}' is claimed by both {origin[point.name]} "
                              f"and {point.value} (entry point group {DATASETS_GROUP}); uninstall one of them")
        try:
            dataset = point.load()
        except Exception as exc:  # a broken plugin must name itself, whatever it raised
            raise ConfigError("dataset", point.name, f"a dataset that imports: {point.value} failed with "
                              f"{type(exc).__name__}: {exc}") from None
        if not isinstance(dataset, Dataset):
            raise ConfigError("dataset", point.name, f"a workbench.data.plugins.Dataset at {point.value}, "
                              f"not {type(dataset).__name__}")
        found[point.name], origin[point.name] = dataset, point.value
    return found


def datasets_of(task: str) -> dict[str, Dataset]:
    return {name: d for name, d in plugin_datasets().items() if d.task == task}
