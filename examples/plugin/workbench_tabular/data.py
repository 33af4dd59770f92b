"""Tabular datasets: real measurements that scikit-learn ships, split and standardized."""

from __future__ import annotations

import numpy as np

from workbench.data.plugins import Dataset
from workbench.data.splits import Splits, split_holdout

TEST_FRACTION = 0.2


def load_sklearn(name: str, config) -> Splits:
    """Stratified train/validation/test splits, standardized with the training split's statistics."""
    from sklearn import datasets

    bunch = {"breast-cancer": datasets.load_breast_cancer, "wine": datasets.load_wine}[name]()
    x = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = split_holdout(x, y, TEST_FRACTION, config.seed)
    x_train, x_val, y_train, y_val = split_holdout(x_rest, y_rest, config.validation_split, config.seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6  # the test split stays unseen
    scale = lambda part: ((part - mean) / std).astype(np.float32)  # noqa: E731
    return Splits(scale(x_train), y_train, scale(x_val), y_val, scale(x_test), y_test,
                  class_names=[str(c) for c in bunch.target_names], name=name,
                  source=f"scikit-learn {name} ({len(x)} rows, {x.shape[1]} features)",
                  notes=[f"features: {', '.join(map(str, bunch.feature_names[:5]))}, ..."])


# A dataset another package adds to a task: `workbench.datasets` entry point `wine` points here.
WINE = Dataset(task="tabular", load=lambda config: load_sklearn("wine", config),
               description="178 wines from three cultivars, 13 chemical measurements (UCI, via scikit-learn)")
