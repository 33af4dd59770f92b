"""Building a RunConfig: the common fields, then the task's defaults and options.

`make_config` is the one door: CLI flags, papermill parameters, MLproject, pipelines, tuning
trials and Python calls all come through it, so a value is checked once, by the same code.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from workbench.config import Option, RunConfig
from workbench.errors import ConfigError
from workbench.models import user
from workbench.tasks import get_task, task_names


def make_config(config: RunConfig | Mapping | str | None = None, **overrides: Any) -> RunConfig:
    """Progressive disclosure: make_config("images"), make_config(config, epochs=1), make_config(task=...)."""
    if isinstance(config, str):
        overrides = {"task": config, **overrides}
        config = None
    values = config.to_dict() if isinstance(config, RunConfig) else dict(config or {})
    return build({**values, **overrides})


def build(values: Mapping[str, Any]) -> RunConfig:
    """Coerce, check and complete a flat dict of fields and options; ConfigError on the first bad value."""
    fields = RunConfig.field_names()
    common = {k: v for k, v in values.items() if k in fields}
    extra = {k: v for k, v in values.items() if k not in fields and v is not None}
    config = RunConfig.checked(common)
    if config.task not in task_names():
        raise ConfigError("task", config.task, ", ".join(task_names()))
    task = get_task(config.task)
    model = user.absolute(config.model) if config.model else task.default_model
    declared = {option.name: option for option in declared_options(config.task, model)}
    for name, value in extra.items():
        if name not in declared:
            owner = f"task '{task.name}'" + (f" with model '{model}'" if model else "")
            raise ConfigError(name, value, f"a RunConfig field ({', '.join(fields)}) or an option of {owner}"
                              + (f" ({', '.join(declared)})" if declared else " (it declares none)"))
    config = dataclasses.replace(
        config,
        dataset=config.dataset or task.default_dataset,
        model=model,
        epochs=config.epochs or task.default_epochs_for(model),  # 0 stays 0: epochs from the data
        learning_rate=config.learning_rate or task.default_learning_rate_for(model),
        dropout=config.dropout or task.default_dropout_for(model),
        loss=config.loss or task.default_loss_for(model),
        experiment=config.experiment or f"workbench-{config.task}",
        options={name: option.check(extra[name]) if name in extra else option.default
                 for name, option in declared.items()},
        builder=build,
    )
    task.check_dataset_name(config.dataset)
    if not user.is_reference(config.model) and config.model not in task.models:
        raise ConfigError("model", config.model, f"for task '{task.name}': " + ", ".join(task.models)
                          + (", or module:function / path/to/file.py:function" if task.supports_user_models else ""))
    if config.loss not in task.losses:
        raise ConfigError("loss", config.loss, f"for task '{task.name}': " + ", ".join(task.losses))
    task.check_config(config)
    return config


def declared_options(task_name: str, model: str = "") -> tuple[Option, ...]:
    """Every option a run of this task and model accepts: the task's, its datasets', the model's."""
    task = get_task(task_name)
    model = model or task.default_model
    found = list(task.options_for(model))
    if user.is_reference(model):
        if not task.supports_user_models:
            raise ConfigError("model", model, f"one of task '{task.name}''s own models: " + ", ".join(task.models)
                              + " (this task trains models it builds itself)")
        taken = {*RunConfig.field_names(), *(option.name for option in found)}
        for option in user.options(model):
            if option.name in taken:
                raise ConfigError("model", model, f"option names not already used by the run: parameter "
                                  f"'{option.name}' is a field or an option of task '{task.name}'; rename it")
            found.append(option)
    return tuple(found)


def accepted_names(task_name: str, model: str = "") -> list[str]:
    """The names a config of this task and model takes: the common fields, then its options."""
    return [*RunConfig.field_names(), *(option.name for option in declared_options(task_name, model))]


def config_from_params(params: Mapping[str, Any]) -> RunConfig:
    """A config from a run's recorded params (which also hold things that are not config, e.g. data sizes)."""
    task = params.get("task") or RunConfig.task
    names = accepted_names(task, params.get("model") or "")
    return build({k: v for k, v in params.items() if k in names})


def config_from_namespace(namespace: Mapping[str, Any]) -> RunConfig:
    """A config from a notebook's variables: its parameters cell plus what papermill injected."""
    task = namespace.get("task") or RunConfig.task
    names = accepted_names(task, namespace.get("model") or "")
    return build({k: namespace[k] for k in names if k in namespace})
