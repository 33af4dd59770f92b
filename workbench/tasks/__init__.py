"""Task registry. Adding a task = one module under tasks/ plus one line here.

Modules are imported on first use so that validating a config never imports TensorFlow.
"""

from __future__ import annotations

import importlib

from workbench.tasks.base import Task

_REGISTRY = {
    "images": "workbench.tasks.images:ImagesTask",
    "text": "workbench.tasks.text:TextTask",
    "speech": "workbench.tasks.speech:SpeechTask",
    "driving": "workbench.tasks.driving:DrivingTask",
    "gan": "workbench.tasks.gan:GanTask",
}
_instances: dict[str, Task] = {}


def task_names() -> list[str]:
    return list(_REGISTRY)


def get_task(name: str) -> Task:
    if name not in _instances:
        if name not in _REGISTRY:
            from workbench.config import ConfigError

            raise ConfigError("task", name, ", ".join(_REGISTRY))
        module_name, class_name = _REGISTRY[name].split(":")
        _instances[name] = getattr(importlib.import_module(module_name), class_name)()
    return _instances[name]


__all__ = ["Task", "get_task", "task_names"]
