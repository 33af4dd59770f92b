"""Task registry: the built-in tasks, and tasks other installed packages declare.

A package adds a task through the entry-point group `workbench.tasks`:

    [project.entry-points."workbench.tasks"]
    tabular = "workbench_tabular:TabularTask"

Modules are imported on first use so that validating a config never imports TensorFlow.
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points

from workbench.errors import ConfigError
from workbench.tasks.base import Task

BUILTIN = {
    "images": "workbench.tasks.images:ImagesTask",
    "text": "workbench.tasks.text:TextTask",
    "speech": "workbench.tasks.speech:SpeechTask",
    "driving": "workbench.tasks.driving:DrivingTask",
    "gan": "workbench.tasks.gan:GanTask",
    "generate": "workbench.tasks.generate:GenerateTask",
    "transcribe": "workbench.tasks.transcribe:TranscribeTask",
    "traffic": "workbench.tasks.traffic:TrafficTask",
    "lanes": "workbench.tasks.lanes:LanesTask",
}
TASKS_GROUP = "workbench.tasks"
_instances: dict[str, Task] = {}


@functools.cache
def registry() -> dict[str, str]:
    """Task name -> "module:Class", built-in first; two claims on one name are an error."""
    found = dict(BUILTIN)
    for point in entry_points(group=TASKS_GROUP):
        if point.name in found:
            raise ConfigError("task", point.name,
                              f"one task per name: '{point.name}' is claimed by both {found[point.name]} and "
                              f"{point.value} (entry point group {TASKS_GROUP}); uninstall one of them")
        found[point.name] = point.value
    return found


def task_names() -> list[str]:
    return list(registry())


def get_task(name: str) -> Task:
    if name not in _instances:
        tasks = registry()
        if name not in tasks:
            raise ConfigError("task", name, ", ".join(tasks))
        module_name, _, class_name = tasks[name].partition(":")
        try:
            task_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError("task", name, f"a task class that imports: {tasks[name]} failed with "
                              f"{type(exc).__name__}: {exc}") from None
        _instances[name] = task_class()
    return _instances[name]


__all__ = ["Task", "get_task", "registry", "task_names"]
