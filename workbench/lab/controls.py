"""The launcher's controls: one widget per common RunConfig field and per option the chosen task
and model declare, built from their types, defaults, allowed values and help."""

from __future__ import annotations

import dataclasses
from typing import Any

from workbench import config as config_module
from workbench.config import ConfigError, Option, RunConfig
from workbench.tasks import get_task, task_names
from workbench.tasks.configure import declared_options

# Fields with a fixed set of values; `task`, `dataset`, `model` and `loss` come from the tasks.
CHOICES = {
    "optimizer": config_module.OPTIMIZERS,
    "activation": config_module.ACTIVATIONS,
    "lr_schedule": config_module.SCHEDULES,
    "strategy": config_module.STRATEGIES,
    "precision": config_module.PRECISIONS,
}
# Numeric fields worth a slider: (min, max, step); every other number gets a plain number box.
SLIDERS = {
    "epochs": (0, 200, 1),  # 0 = the task's default
    "batch_size": (8, 512, 8),
    "dropout": (0.0, 0.9, 0.05),
    "momentum": (0.0, 0.99, 0.01),
    "validation_split": (0.05, 0.5, 0.05),
    "patience": (0, 20, 1),
}
LOG_SLIDERS = {"learning_rate": (-5, 0)}  # powers of ten
MAIN_FIELDS = ("task", "dataset", "model", "epochs", "batch_size", "optimizer", "learning_rate", "activation",
               "loss", "dropout", "l2", "seed")
OTHER_DATASET = "dataset_path"  # free text beside the dataset dropdown, for folder:PATH and csv:PATH
POLL_SECONDS = 2.0


def field_option(field: dataclasses.Field) -> Option:
    """A common RunConfig field described like a declared option, so both get controls alike."""
    kind = {"int": int, "float": float, "str": str, "bool": bool}.get(field.type, field.type)
    return Option(field.name, kind, field.default, field.metadata.get("help", ""))


def declared(task_name: str, model: str) -> dict[str, Option]:
    """The options the task and model declare (a model function's keyword parameters included)."""
    try:
        return {option.name: option for option in declared_options(task_name, model)}
    except ConfigError:  # a model reference typed halfway: its options appear once it loads
        return {}


def task_choices(task_name: str) -> dict[str, tuple[str, ...]]:
    """The values the task-dependent dropdowns offer, each task default first."""
    task = get_task(task_name)
    first = lambda default, values: (default, *[v for v in values if v != default])  # noqa: E731
    return {
        "dataset": first(task.default_dataset, task.datasets),
        "model": first(task.default_model, task.models),
        "loss": ("",) + tuple(task.losses),  # "" = the model's default loss
    }


def control_for(field: Option, choices: tuple | None = None):
    """One widget for one config field or option: a dropdown for a fixed set of values, a slider
    for the numbers in SLIDERS, a checkbox for booleans, a number or text box otherwise. The
    help text is the tooltip."""
    import ipywidgets as widgets

    kind = field.type
    choices = choices or field.choices or None
    common = {"description": field.name, "tooltip": field.help,
              "style": {"description_width": "130px"}, "layout": widgets.Layout(width="420px")}
    default = field.default
    if choices is not None:
        options = [(value or "(default)", value) for value in choices]
        return widgets.Dropdown(options=options, value=default if default in choices else choices[0], **common)
    if kind is bool:
        return widgets.Checkbox(value=bool(default), indent=True, **common)
    if field.name in LOG_SLIDERS:
        low, high = LOG_SLIDERS[field.name]
        return widgets.FloatLogSlider(value=default, base=10, min=low, max=high, step=0.1, readout_format=".1e",
                                      **common)
    if field.name in SLIDERS:
        low, high, step = SLIDERS[field.name]
        slider = widgets.IntSlider if kind is int else widgets.FloatSlider
        return slider(value=default, min=low, max=high, step=step, **common)
    if kind is int:
        return widgets.IntText(value=default, **common)
    if kind is float:
        return widgets.FloatText(value=default, **common)
    return widgets.Text(value=str(default), placeholder=field.help, **common)


def build_controls(task_name: str | None = None) -> dict[str, Any]:
    """A widget for every common RunConfig field and every option the task and its default model
    declare, plus the free-text dataset path."""
    import ipywidgets as widgets

    task_name = task_name or RunConfig().task
    per_task = task_choices(task_name)
    controls = {}
    for field in dataclasses.fields(RunConfig):
        if field.name not in RunConfig.field_names():
            continue
        if field.name == "task":
            choices = tuple(task_names())
        else:
            choices = per_task.get(field.name) or CHOICES.get(field.name)
        controls[field.name] = control_for(field_option(field), choices)
    controls["task"].value = task_name
    for name, option in declared(task_name, controls["model"].value).items():
        controls[name] = control_for(option)
    # A log slider cannot show "0 = the model's default": it shows that default's value instead.
    controls["learning_rate"].value = get_task(task_name).default_learning_rate_for(controls["model"].value)
    controls[OTHER_DATASET] = widgets.Text(
        value="", description="other dataset", placeholder="e.g. folder:PATH (overrides the dropdown)",
        tooltip="a dataset given by path, for tasks that read folders or files",
        style={"description_width": "130px"}, layout=widgets.Layout(width="420px"))
    return controls


def widgets_box(children: list):
    import ipywidgets as widgets

    return widgets.VBox(children)
