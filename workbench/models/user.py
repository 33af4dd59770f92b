"""The user's own model: `--model my_models.py:small_cnn` or `--model mypkg.models:small_cnn`.

The function receives a `ModelInputs` (what the task feeds the model and wants back) and returns
a Keras model; the task compiles and trains it. Its keyword parameters, each with a default,
become options of the run like any other: flags, notebook parameters, launcher controls, search
spaces, MLflow params.

    def small_cnn(inputs, filters: int = 32, dropout_rate: float = 0.25):
        ...
        return keras.Model(...)
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench.config import Option
from workbench.errors import ConfigError

SUPPORTED_TYPES = (int, float, str, bool)


@dataclass(frozen=True)
class ModelInputs:
    """What a user's model function is given: the input it reads and the output it must produce."""

    task: str
    shape: tuple            # one example's shape, without the batch axis; () for a raw string
    dtype: str              # "float32", "string", ...
    num_outputs: int        # classes (or values) the last layer must produce
    output_activation: str  # "softmax", "sigmoid" or "linear": what the task's loss expects
    class_names: list[str] = field(default_factory=list)
    examples: Any = None    # a sample of training inputs, e.g. to adapt a TextVectorization layer


def is_reference(model: str) -> bool:
    """A user model is named `module:function` or `path/to/file.py:function`."""
    return ":" in model


def absolute(reference: str) -> str:
    """A file reference with an absolute path, so a kernel or step in another folder finds the same file."""
    where, _, name = reference.rpartition(":")
    if is_reference(reference) and where.endswith(".py"):
        return f"{Path(where).expanduser().resolve()}:{name}"
    return reference


def load(reference: str) -> Callable:
    """The function a reference names; a ConfigError naming the reference when it cannot be had."""
    where, _, name = reference.rpartition(":")
    if not where or not name.isidentifier():
        raise ConfigError("model", reference, "a built-in model, or module:function or path/to/file.py:function")
    module = _module_of(reference, where)
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError("model", reference, f"a function: {where} has no callable '{name}'")
    return function


def _module_of(reference: str, where: str):
    try:
        if where.endswith(".py"):
            path = Path(where).expanduser().resolve()
            if not path.is_file():
                raise ConfigError("model", reference, f"an existing .py file: {path} is not one "
                                  "(module:function or path/to/file.py:function)")
            return _file_module(str(path))
        return importlib.import_module(where)
    except ConfigError:
        raise
    except Exception as exc:  # whatever the user's module raises while importing
        raise ConfigError("model", reference, f"a module that imports: {where} failed with "
                          f"{type(exc).__name__}: {exc}") from None


@functools.cache
def _file_module(path: str):
    name = "workbench_user_model_" + hashlib.sha1(path.encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def options(reference: str) -> tuple[Option, ...]:
    """The function's keyword parameters after the first (the inputs), as options."""
    function = load(reference)
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        hints = {}
    parameters = list(inspect.signature(function).parameters.values())
    if not parameters or parameters[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                                   inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise ConfigError("model", reference, "a function whose first parameter receives the task's ModelInputs")
    declared = []
    for parameter in parameters[1:]:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if parameter.default is inspect.Parameter.empty:
            raise ConfigError("model", reference, f"a default for every option: parameter '{parameter.name}' has "
                              "none (write e.g. `filters: int = 32`)")
        kind = hints.get(parameter.name, type(parameter.default))
        if kind not in SUPPORTED_TYPES:
            raise ConfigError("model", reference, f"options of type int, float, str or bool: parameter "
                              f"'{parameter.name}' is {getattr(kind, '__name__', kind)}")
        if not isinstance(parameter.default, kind) and not (kind is float and isinstance(parameter.default, int)):
            raise ConfigError("model", reference, f"a default of the declared type: parameter '{parameter.name}' "
                              f"is {kind.__name__} but defaults to {parameter.default!r}")
        declared.append(Option(parameter.name, kind, kind(parameter.default), help=f"option of {reference}"))
    return tuple(declared)


def build(reference: str, inputs: ModelInputs, values: dict[str, Any]):
    """Call the user's function with its options; it must return a Keras model."""
    import keras

    function = load(reference)
    model = function(inputs, **{option.name: values[option.name] for option in options(reference)})
    if not isinstance(model, keras.Model):
        raise ConfigError("model", reference, f"a function that returns a keras.Model; it returned "
                          f"{type(model).__name__}")
    return model


def source(reference: str) -> tuple[str, bytes] | None:
    """(file name, source) of the module the function lives in, to log beside the run."""
    function = load(reference)
    path = inspect.getsourcefile(function)
    if not path or not Path(path).is_file():
        return None
    return Path(path).name, Path(path).read_bytes()
