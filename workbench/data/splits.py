"""Train/validation/test splits held in memory, and the one function that makes them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench.errors import ConfigError, DataError  # noqa: F401  (DataError: raised by every loader)


@dataclass
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    name: str
    source: str
    notes: list[str] = field(default_factory=list)
    extras: dict = field(default_factory=dict)  # task-specific: background noises, speakers, ...

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.x_train), "val": len(self.x_val), "test": len(self.x_test)}

    def steps_per_epoch(self, global_batch_size: int) -> int:
        """Gradient steps per pass over the training split (the last batch may be short)."""
        return -(-len(self.x_train) // global_batch_size)


def split_holdout(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, field: str = "validation_split"):
    """Split off `fraction` of the examples, stratified by label when every class can afford it."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y) if y.ndim == 1 and np.issubdtype(y.dtype, np.integer) else None
    n_holdout = int(round(len(y) * fraction))
    classes = int(np.count_nonzero(counts)) if counts is not None else 1
    if n_holdout < 1 or len(y) - n_holdout < classes:
        raise ConfigError(field, fraction,
                          f"a fraction that leaves at least one example on each side and {classes} (one per "
                          f"class) for training, of {len(y)} examples")
    stratify = None
    if counts is not None and counts[counts > 0].min() >= 2 and n_holdout >= np.count_nonzero(counts):
        stratify = y
    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=stratify)
