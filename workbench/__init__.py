"""Workbench: Keras models for images, text, speech and driving, trained through papermill
notebooks, tuned with Optuna and tracked in MLflow.

    import workbench
    result = workbench.train("images", dataset="digits", epochs=1)
"""

import os

# TensorFlow's C++ logging floods notebooks and terminals; it must be set before TF loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from workbench.config import ConfigError, RunConfig  # noqa: E402
from workbench.data.splits import DataError  # noqa: E402
from workbench.runs import TrainingResult, load_data, train  # noqa: E402
from workbench.seeds import train_seeds  # noqa: E402
from workbench.tasks.configure import config_from_namespace, config_from_params, make_config  # noqa: E402

COMPARE = ("find_runs", "epoch_curves", "best_run", "parallel_coordinates", "run_url")  # from workbench.lab.compare

__all__ = ["ConfigError", "DataError", "RunConfig", "TrainingResult", "load_data", "config_from_namespace", "config_from_params", "make_config", "train", "train_seeds", *COMPARE]
__version__ = "0.1.0"


def __getattr__(name):
    # The comparison helpers need pandas and MLflow: load them on first use, not on `import workbench`.
    if name in COMPARE:
        from workbench.lab import compare

        return getattr(compare, name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
