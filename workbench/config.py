"""RunConfig: everything one training run needs, validated before any data is loaded.

`RunConfig` holds what every run has. What only one task, dataset or model has (frame stacking,
latent size, CSV columns, a user model's keyword parameters) is declared there as an `Option`
and lands in `RunConfig.options`. Every entry point (CLI flags, papermill parameters, MLproject,
pipelines, tuning trials) builds a config through `workbench.tasks.make_config`, so every value is
checked by the same code and every error names the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError

OPTIMIZERS = ("adam", "sgd", "rmsprop")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu")
SCHEDULES = ("cosine", "constant")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
MAX_SEED = 2**32 - 1       # what numpy and TensorFlow seeds take
MAX_NAME_LENGTH = 250      # MLflow's experiment-name column is 256 characters on SQL stores
LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse", "mae", "huber", "ctc",
          "centernet")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class RunConfig:
    """One training run. Empty strings mean "the task's default" and are filled in by from_dict."""

    task: str = field(default="images", metadata=_help("what to learn: a registered task name"))
    dataset: str = field(default="", metadata=_help("dataset name or folder:PATH; empty = task default"))
    model: str = field(default="", metadata=_help("architecture; empty = task default"))
    epochs: int = field(default=0, metadata=_help("passes over the training split; 0 = the task's default (speech "
                                                  "and text: enough gradient steps for the data's size, stopping "
                                                  "early when validation stops improving)"))
    batch_size: int = field(default=64, metadata=_help("examples per gradient step"))
    optimizer: str = field(default="adam", metadata=_help("one of " + ", ".join(OPTIMIZERS)))
    learning_rate: float = field(default=0.0, metadata=_help("optimizer step size; 0 = the model's default "
                                                               "(1e-3; pretrained encoders 5e-5)"))
    lr_schedule: str = field(default="cosine", metadata=_help("learning-rate schedule: cosine decay to 0 "
                                                                "over the run, or constant"))
    momentum: float = field(default=0.9, metadata=_help("momentum for sgd (ignored otherwise)"))
    activation: str = field(default="relu", metadata=_help("hidden activation: " + ", ".join(ACTIVATIONS)))
    loss: str = field(default="", metadata=_help("training loss; empty = task default"))
    dropout: float = field(default=0.0, metadata=_help("dropout rate in [0, 1); 0 = the model's default (none; "
                                                       "text transformer 0.3)"))
    l1: float = field(default=0.0, metadata=_help("L1 weight penalty"))
    l2: float = field(default=0.0, metadata=_help("L2 weight penalty"))
    patience: int = field(default=0, metadata=_help("early-stopping patience in epochs; 0 = off"))
    seed: int = field(default=42, metadata=_help("seed for splits, initialisation and shuffling"))
    validation_split: float = field(default=0.1, metadata=_help("fraction of training data held out for validation"))
    strategy: str = field(default="auto", metadata=_help("tf.distribute strategy: " + ", ".join(STRATEGIES)))
    precision: str = field(default="auto", metadata=_help("dtype policy: " + ", ".join(PRECISIONS)))
    jit_compile: bool = field(default=False, metadata=_help("compile the training step with XLA"))
    steps_per_execution: int = field(default=1, metadata=_help("batches per compiled call (fewer host round trips)"))
    epoch_checkpoints: bool = field(default=True, metadata=_help(
        "keep the model after every epoch, to fork the run from any epoch (workbench rerun --from-epoch)"))
    system_metrics: bool = field(default=True, metadata=_help("log CPU, memory, disk (and GPU) use every few "
                                                              "seconds into the run's System metrics"))
    experiment: str = field(default="", metadata=_help("MLflow experiment; empty = workbench-<task>"))

    options: dict[str, Any] = field(default_factory=dict, metadata=_help(
        "what the task, dataset or model declares beyond the fields above (see Option)"))
    builder: Any = field(default=None, compare=False, repr=False, metadata=_help(
        "the function that made this config; replace() goes through it again"))

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> list[str]:
        """What every run has; a task's own options come on top (`options`)."""
        return [f.name for f in dataclasses.fields(cls) if f.name not in ("options", "builder")]

    @classmethod
    def checked(cls, values: dict[str, Any], options: dict[str, Any] | None = None, builder=None) -> "RunConfig":
        """The common fields coerced and range-checked; `values` must hold field names only."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        coerced = {name: _coerce(name, value, known[name].type) for name, value in values.items()
                   if value is not None}  # None: papermill/CLI "not given"
        config = cls(**coerced, options=dict(options or {}), builder=builder)
        config._check_ranges()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Flat: the fields and then the options, as flags, notebook parameters and MLflow params see them."""
        values = {name: getattr(self, name) for name in self.field_names()}
        return {**values, **self.options}

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with `changes`, checked again by whatever built this config."""
        if self.builder is None:  # built by hand: only the common fields are checked
            fields = {k: v for k, v in self.to_dict().items() if k in self.field_names()}
            fields.update({k: v for k, v in changes.items() if k in fields})
            options = {**self.options, **{k: v for k, v in changes.items() if k not in fields}}
            return RunConfig.checked(fields, options)
        return self.builder({**self.to_dict(), **changes})

    def __getattr__(self, name: str) -> Any:
        # Task code reads its own options as attributes: config.frame_stack.
        options = object.__getattribute__(self, "__dict__").get("options") or {}
        if name in options:
            return options[name]
        raise AttributeError(f"RunConfig has no field or option {name!r}")

    # ---- validation ---------------------------------------------------------------------

    def _check_ranges(self) -> None:
        _require(self.epochs >= 0, "epochs", self.epochs, "an integer >= 1, or 0 for the task's default")
        _require(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        _require(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, ", ".join(OPTIMIZERS))
        _require(self.learning_rate >= 0, "learning_rate", self.learning_rate,
                 "a number > 0, or 0 for the model's default")
        _require(self.lr_schedule in SCHEDULES, "lr_schedule", self.lr_schedule, ", ".join(SCHEDULES))
        _require(0 <= self.momentum < 1, "momentum", self.momentum, "a number in [0, 1)")
        _require(self.activation in ACTIVATIONS, "activation", self.activation, ", ".join(ACTIVATIONS))
        _require(self.loss == "" or self.loss in LOSSES, "loss", self.loss, ", ".join(LOSSES))
        _require(0 <= self.dropout < 1, "dropout", self.dropout, "a number in [0, 1)")
        _require(self.l1 >= 0, "l1", self.l1, "a number >= 0")
        _require(self.l2 >= 0, "l2", self.l2, "a number >= 0")
        _require(self.patience >= 0, "patience", self.patience, "an integer >= 0 (0 = off)")
        _require(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"an integer in 0..{MAX_SEED} (2**32 - 1)")
        _require(0 < self.validation_split < 1, "validation_split", self.validation_split, "a number in (0, 1)")
        _require(self.strategy in STRATEGIES, "strategy", self.strategy, ", ".join(STRATEGIES))
        _require(self.precision in PRECISIONS, "precision", self.precision, ", ".join(PRECISIONS))
        check_name("experiment", self.experiment)
        _require(self.steps_per_execution >= 1, "steps_per_execution", self.steps_per_execution, "an integer >= 1")

@dataclass(frozen=True)
class Option:
    """An option a task, dataset or model declares: flags, notebook parameters, launcher controls,
    search spaces and MLflow params all derive from it."""

    name: str
    type: type
    default: Any
    help: str = ""
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    allowed: str = ""  # how the allowed values read in an error, when the range alone says too little

    def __post_init__(self):
        if self.type not in (int, float, str, bool):
            raise ConfigError(self.name, self.type.__name__ if isinstance(self.type, type) else self.type,
                              "an option of type int, float, str or bool")

    def check(self, value: Any) -> Any:
        """The value coerced to the option's type, or a ConfigError naming the option."""
        value = _coerce(self.name, value, self.type)
        ok = (not self.choices or value in self.choices) and \
            (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)
        _require(ok, self.name, value, self.describe_allowed())
        return value

    def describe_allowed(self) -> str:
        if self.allowed:
            return self.allowed
        if self.choices:
            return ", ".join(map(str, self.choices))
        kind = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[self.type]
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} in [{self.minimum}, {self.maximum}]"
        if self.minimum is not None:
            return f"{kind} >= {self.minimum}"
        if self.maximum is not None:
            return f"{kind} <= {self.maximum}"
        return kind


def check_name(field_name: str, value: Any, limit: int = MAX_NAME_LENGTH, forbidden: str = "") -> str:
    """`value` if it is a printable name within MLflow's limits (at most `limit` characters, none of
    those in `forbidden`); else a ConfigError naming `field_name` and what is allowed."""
    ok = isinstance(value, str) and value.isprintable() and len(value) <= limit
    ok = ok and not any(c in value for c in forbidden)
    without = f" without {' or '.join(forbidden)}" if forbidden else ""
    _require(ok, field_name, value, f"a printable name{without} of at most {limit} characters")
    return value


def _require(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(name, value, allowed)


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """Accept the natural spellings of a value (CLI strings, YAML numbers), nothing looser."""
    kind = {"int": int, "float": float, "str": str, "bool": bool}.get(kind, kind)
    if kind is bool:
        if isinstance(value, bool):
            return value
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if isinstance(value, (str, int)) and str(value).strip().lower() in words:
            return words[str(value).strip().lower()]
        raise ConfigError(name, value, "true or false")
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(name, value, "a string")
        return value.strip()
    if isinstance(value, bool):
        raise ConfigError(name, value, f"a number ({kind.__name__}), not a boolean")
    if kind is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())  # "5" and "5.0" (MLproject floats) both mean 5
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(name, value, "an integer")
    if kind is float:
        number = None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
        if number is None:
            raise ConfigError(name, value, "a number")
        if not math.isfinite(number):  # inf would train into divergence, nan compares false everywhere
            raise ConfigError(name, value, "a finite number")
        return number
    raise TypeError(f"unsupported field type {kind!r} for {name}")
