"""The Task interface: what every domain (images, text, ...) provides to the shared training path.

A task owns its data sources, its model builders, its evaluation and its classical baseline.
Keep imports of TensorFlow inside methods: the class attributes are read while validating a
config, which must stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.config import Option
from workbench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    from matplotlib.figure import Figure

    from workbench.config import RunConfig
    from workbench.data.splits import Splits


@dataclass
class Evaluation:
    """What a task reports after the single pass over the test split."""

    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, "Figure"] = field(default_factory=dict)
    tables: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # extra artifacts, e.g. misclassified audio


class Task:
    name: str = ""
    datasets: tuple[str, ...] = ()          # named datasets
    dataset_prefixes: tuple[str, ...] = ()  # e.g. "folder:" for folder:PATH
    models: tuple[str, ...] = ()
    losses: tuple[str, ...] = ()
    default_dataset: str = ""
    default_model: str = ""
    default_loss: str = ""
    monitor: str = "val_loss"          # what early stopping and pruning watch
    monitor_mode: str = "min"
    main_metric: str = "test_loss"     # what seed groups and `workbench compare` judge a run by
    main_metric_mode: str = "min"
    default_epochs: int = 5            # 0: chosen from the data's size (see training.resolve_epochs)
    auto_steps: int = 3000             # with epochs chosen from the data: gradient steps aimed at,
    auto_epoch_range: tuple[int, int] = (10, 200)  # within these epochs,
    auto_patience: int = 10            # stopping after this many epochs without a better validation score,
    auto_patience_steps: int = 0       # or after this many gradient steps, whichever is longer (small sets
                                       # have few steps an epoch and noisy validation scores)
    options: tuple[Option, ...] = ()   # what runs of this task take beyond the common RunConfig fields
    model_options: dict[str, tuple[Option, ...]] = {}  # what only one of its models takes
    supports_user_models: bool = True  # `--model file.py:function` builds the model from ModelInputs

    def options_for(self, model: str) -> tuple[Option, ...]:
        """The task's options, its plugin datasets' options and the model's own."""
        from workbench.data.plugins import datasets_of

        found = {option.name: option for option in self.options}
        for dataset in datasets_of(self.name).values():
            found.update({option.name: option for option in dataset.options})
        found.update({option.name: option for option in self.model_options.get(model, ())})
        return tuple(found.values())

    def default_epochs_for(self, model: str) -> int:
        """The epochs used when the config gives none; 0 = chosen from the data's size."""
        return self.default_epochs

    def max_epochs(self, config: "RunConfig") -> int:
        """The most epochs a run of `config` can take (what a pruner's budget counts in)."""
        return config.epochs or self.auto_epoch_range[1]

    def default_dropout_for(self, model: str) -> float:
        """The dropout rate used when the config gives none (0)."""
        return 0.0

    def warmup_fraction_for(self, model: str) -> float:
        """Share of a cosine schedule's steps spent warming the rate up from 0 (pretrained models)."""
        return 0.0

    def default_learning_rate_for(self, model: str) -> float:
        """The step size used when the config gives none (pretrained models want smaller ones)."""
        return 1e-3

    def search_space(self, model: str) -> dict[str, dict]:
        """What tuning varies by default for `model` (see workbench.tuning.space for the format)."""
        return {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop", "sgd"]},
            "activation": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            "l2": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
            "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
        }

    def default_loss_for(self, model: str) -> str:
        """The loss used when the config names none (a task may differ per model)."""
        return self.default_loss

    def check_config(self, config: "RunConfig") -> None:
        """Cross-field checks that need no data (e.g. a loss that cannot fit a known dataset)."""

    def dataset_names(self) -> list[str]:
        """Named datasets: the task's own, then those installed packages add (`workbench.datasets`)."""
        from workbench.data.plugins import datasets_of

        return [*self.datasets, *datasets_of(self.name)]

    def check_dataset_name(self, dataset: str) -> None:
        if dataset in self.dataset_names() or any(dataset.startswith(p) and len(dataset) > len(p)
                                                  for p in self.dataset_prefixes):
            return
        allowed = self.dataset_names() + [p + "PATH" for p in self.dataset_prefixes]
        raise ConfigError("dataset", dataset, f"for task '{self.name}': " + ", ".join(allowed))

    # Everything below runs after validation and may import TensorFlow.

    def data_for(self, config: "RunConfig") -> "Splits":
        """The splits of `config.dataset`: a plugin dataset loads itself, the rest is `load_data`."""
        from workbench.data.plugins import datasets_of

        plugin = datasets_of(self.name).get(config.dataset)
        return plugin.load(config) if plugin else self.load_data(config)

    def load_data(self, config: "RunConfig") -> "Splits":
        raise NotImplementedError

    def model_for(self, config: "RunConfig", data: "Splits") -> "keras.Model":
        """The model of `config.model`: the task's own, or the user's function given ModelInputs."""
        from workbench.models import user

        if not user.is_reference(config.model):
            return self.build_model(config, data)
        model = user.build(config.model, self.model_inputs(config, data), config.options)
        self.check_model_output(model, config, data)
        return model

    def build_model(self, config: "RunConfig", data: "Splits") -> "keras.Model":
        raise NotImplementedError

    def model_inputs(self, config: "RunConfig", data: "Splits"):
        """What a user's model function is given: one example's shape and type, the outputs wanted."""
        from workbench.models.user import ModelInputs

        return ModelInputs(task=self.name, shape=tuple(data.x_train.shape[1:]), dtype=str(data.x_train.dtype),
                           num_outputs=self.output_width(config, data), output_activation=self.output_activation(config),
                           class_names=list(data.class_names), examples=data.x_train[:1000])

    def output_width(self, config: "RunConfig", data: "Splits") -> int:
        return data.num_classes

    def output_activation(self, config: "RunConfig") -> str:
        return "linear"

    def check_model_output(self, model: "keras.Model", config: "RunConfig", data: "Splits") -> None:
        """A user's model must end in what the loss expects; say so before any run is created."""
        wanted = self.output_width(config, data)
        shape = tuple(model.output_shape) if not isinstance(model.output_shape, list) else None
        if shape is None or len(shape) != 2 or shape[-1] != wanted:
            raise ConfigError("model", config.model,
                              f"a model whose output is (batch, {wanted}) for task '{self.name}' on "
                              f"'{config.dataset}' with loss {config.loss}; it outputs {model.output_shape}")

    def metrics(self, config: "RunConfig", data: "Splits") -> list:
        return ["accuracy"]

    def compile(self, model: "keras.Model", config: "RunConfig", data: "Splits", replicas: int = 1) -> None:
        """Optimizer, loss and metrics; a task with a custom train_step (e.g. a GAN) overrides it."""
        from workbench.models.compiling import compile_model

        compile_model(model, config, self, data, replicas)

    def epoch_callbacks(self, config: "RunConfig", data: "Splits", run) -> list:
        """Extra Keras callbacks; `run` is the run's logger (log_figure, log_metrics, log_bytes, ...)."""
        return []

    def test_metrics(self, model: "keras.Model", config: "RunConfig", data: "Splits") -> dict[str, float]:
        """The loss on the test split (metrics beyond it come from `evaluate`)."""
        from workbench.data.batches import input_pipeline

        test = input_pipeline(data.x_test, self.targets(data.y_test, config, data), 256, shuffle=False, seed=0)
        results = model.evaluate(test, verbose=0, return_dict=True)
        return {"test_loss": float(results["loss"])}

    def exported_model(self, model: "keras.Model", data: "Splits"):
        """What is logged as the run's model, with an input example: (model, example)."""
        return model, data.x_test[:5]

    def targets(self, y, config: "RunConfig", data: "Splits"):
        """Labels as the loss wants them (e.g. one-hot for categorical losses)."""
        return y

    def train_augmentation(self, data: "Splits", config: "RunConfig"):
        """A per-example tf.data function (x, y) -> (x, y) applied to training batches only, or None."""
        return None

    def evaluate(self, model: "keras.Model", data: "Splits", config: "RunConfig") -> Evaluation:
        raise NotImplementedError

    def baseline(self, data: "Splits", config: "RunConfig") -> dict[str, float]:
        """A classical model on the same splits; metric names start with 'baseline_'."""
        return {}

    def preview(self, data: "Splits") -> list:
        """Things to display in a notebook about a few training examples (figures, audio players)."""
        raise NotImplementedError


class ClassificationTask(Task):
    """A task whose models end in class probabilities: accuracy and targets follow the loss."""

    monitor = "val_accuracy"
    monitor_mode = "max"
    main_metric = "test_accuracy"
    main_metric_mode = "max"

    def output_width(self, config: "RunConfig", data: "Splits") -> int:
        return 1 if config.loss == "binary_crossentropy" else data.num_classes

    def output_activation(self, config: "RunConfig") -> str:
        return "sigmoid" if config.loss == "binary_crossentropy" else "softmax"

    def metrics(self, config: "RunConfig", data: "Splits") -> list:
        from workbench.models.blocks import classification_metric

        return [classification_metric(config)]

    def targets(self, y, config: "RunConfig", data: "Splits"):
        from workbench.models.blocks import classification_targets

        return classification_targets(y, data.num_classes, config)
