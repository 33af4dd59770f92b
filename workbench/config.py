"""RunConfig: everything one training run needs, validated before any data is loaded.

Every entry point (CLI flags, papermill parameters, MLproject, pipelines, tuning trials)
builds a RunConfig through `RunConfig.from_dict`, so every value is checked by the same
code and every error names the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError

OPTIMIZERS = ("adam", "sgd", "rmsprop")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu")
SCHEDULES = ("cosine", "constant")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
EMBEDDINGS = ("learned", "glove", "glove-frozen")
LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse", "mae", "huber")


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
    dropout: float = field(default=0.0, metadata=_help("dropout rate in [0, 1)"))
    l1: float = field(default=0.0, metadata=_help("L1 weight penalty"))
    l2: float = field(default=0.0, metadata=_help("L2 weight penalty"))
    patience: int = field(default=0, metadata=_help("early-stopping patience in epochs; 0 = off"))
    seed: int = field(default=42, metadata=_help("seed for splits, initialisation and shuffling"))
    validation_split: float = field(default=0.1, metadata=_help("fraction of training data held out for validation"))
    image_size: int = field(default=0, metadata=_help("image side in pixels for folder datasets; 0 = 64"))
    strategy: str = field(default="auto", metadata=_help("tf.distribute strategy: " + ", ".join(STRATEGIES)))
    precision: str = field(default="auto", metadata=_help("dtype policy: " + ", ".join(PRECISIONS)))
    jit_compile: bool = field(default=False, metadata=_help("compile the training step with XLA"))
    steps_per_execution: int = field(default=1, metadata=_help("batches per compiled call (fewer host round trips)"))
    vocabulary_size: int = field(default=0, metadata=_help("text: most frequent words kept; 0 = from the data "
                                                           "(words seen at least twice, at most 20,000)"))
    sequence_length: int = field(default=0, metadata=_help("text: tokens read per text (minilm: its maximum "
                                                           "length); 0 = from the data (95th percentile)"))
    embeddings: str = field(default="learned", metadata=_help("text sequence models: " + ", ".join(EMBEDDINGS)
                                                              + " (GloVe 6B 50-d, fine-tuned or frozen)"))
    frozen_layers: int = field(default=0, metadata=_help("minilm: encoder layers kept frozen, counted from the "
                                                         "input; -1 = all (only the head learns)"))
    text_column: str = field(default="text", metadata=_help("text column of csv: datasets"))
    label_column: str = field(default="label", metadata=_help("label column of csv: datasets"))
    augment: bool = field(default=False, metadata=_help("images: random shifts of training images, plus left-right "
                                                          "flips where labels allow (fashion-mnist)"))
    steering_correction: float = field(default=0.2, metadata=_help("driving, udacity:PATH: steering added for the left "
                                                                     "camera and subtracted for the right; 0 = center only"))
    frame_stack: int = field(default=4, metadata=_help("driving, cnn-lstm: consecutive frames per example"))
    tracks: int = field(default=0, metadata=_help("driving, carracing: tracks recorded; 0 = 24"))
    track_steps: int = field(default=0, metadata=_help("driving, carracing: steps recorded per track; 0 = one lap"))
    closed_loop_steps: int = field(default=0, metadata=_help("driving: steps the model drives each held-out track "
                                                               "after training; 0 = one lap, -1 = skip"))
    latent_dim: int = field(default=64, metadata=_help("gan: size of the generator's noise vector"))
    experiment: str = field(default="", metadata=_help("MLflow experiment; empty = workbench-<task>"))

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None = None, **overrides: Any) -> "RunConfig":
        """Coerce, check and complete a config; raises ConfigError on the first bad value."""
        merged = {**(values or {}), **overrides}
        known = {f.name: f for f in dataclasses.fields(cls)}
        for name in merged:
            if name not in known:
                raise ConfigError(name, merged[name], "a RunConfig field: " + ", ".join(known))
        coerced = {}
        for name, value in merged.items():
            if value is None:  # papermill/CLI "not given"
                continue
            coerced[name] = _coerce(name, value, known[name].type)
        config = cls(**coerced)
        config._check_ranges()
        return config._with_task_defaults()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "RunConfig":
        return RunConfig.from_dict(self.to_dict(), **changes)

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
        _require(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _require(0 < self.validation_split < 1, "validation_split", self.validation_split, "a number in (0, 1)")
        _require(self.strategy in STRATEGIES, "strategy", self.strategy, ", ".join(STRATEGIES))
        _require(self.precision in PRECISIONS, "precision", self.precision, ", ".join(PRECISIONS))
        _require(self.steps_per_execution >= 1, "steps_per_execution", self.steps_per_execution, "an integer >= 1")
        _require(self.image_size >= 0, "image_size", self.image_size, "an integer >= 0 (0 = default)")
        _require(0 <= self.steering_correction <= 1, "steering_correction", self.steering_correction, "a number in [0, 1]")
        _require(self.frame_stack >= 2, "frame_stack", self.frame_stack, "an integer >= 2")
        _require(self.tracks >= 0, "tracks", self.tracks, "an integer >= 0 (0 = default)")
        _require(self.track_steps >= 0, "track_steps", self.track_steps, "an integer >= 0 (0 = one lap)")
        _require(self.closed_loop_steps >= -1, "closed_loop_steps", self.closed_loop_steps,
                 "an integer >= -1 (0 = one lap, -1 = skip)")
        _require(self.vocabulary_size >= 0, "vocabulary_size", self.vocabulary_size, "an integer >= 0 (0 = from the data)")
        _require(self.sequence_length >= 0, "sequence_length", self.sequence_length,
                 "an integer >= 0 (0 = from the data)")
        _require(self.embeddings in EMBEDDINGS, "embeddings", self.embeddings, ", ".join(EMBEDDINGS))
        _require(self.frozen_layers >= -1, "frozen_layers", self.frozen_layers, "an integer >= -1 (-1 = all)")
        _require(self.latent_dim >= 1, "latent_dim", self.latent_dim, "an integer >= 1")

    def _with_task_defaults(self) -> "RunConfig":
        from workbench.tasks import get_task, task_names

        _require(self.task in task_names(), "task", self.task, ", ".join(task_names()))
        task = get_task(self.task)
        model = self.model or task.default_model
        config = dataclasses.replace(
            self,
            dataset=self.dataset or task.default_dataset,
            model=model,
            epochs=self.epochs or task.default_epochs_for(model),  # 0 stays 0: epochs from the data
            learning_rate=self.learning_rate or task.default_learning_rate_for(model),
            loss=self.loss or task.default_loss_for(model),
            experiment=self.experiment or f"workbench-{self.task}",
        )
        task.check_dataset_name(config.dataset)
        _require(config.model in task.models, "model", config.model,
                 f"for task '{task.name}': " + ", ".join(task.models))
        _require(config.loss in task.losses, "loss", config.loss,
                 f"for task '{task.name}': " + ", ".join(task.losses))
        task.check_config(config)
        return config


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
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(name, value, "a number")
    raise TypeError(f"unsupported field type {kind!r} for {name}")
