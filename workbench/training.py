"""The training engine: seeding, tf.data input, optimizer/loss, checkpoint-resume, NaN guard.

Knows Keras and the RunConfig, nothing about tracking: the tracking callback comes in as one of
`callbacks`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from workbench.config import RunConfig
from workbench.data.batches import input_pipeline, predict  # noqa: F401  (the engine's public helpers)
from workbench.data.splits import Splits
from workbench.errors import TrainingDiverged
from workbench.models.compiling import compile_model, make_optimizer  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover
    from workbench.tasks.base import Task


def seed_everything(seed: int) -> None:
    """Same seed, same splits, same initial weights, same shuffling order, same result."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def resolve_epochs(config: RunConfig, task: "Task", data: Splits, replicas: int = 1) -> RunConfig:
    """With epochs 0 (the task picks them): enough epochs for the task's gradient-step target on
    this data's size, and early stopping on validation unless the config sets a patience.

    Counting steps rather than epochs is what makes one default fit a 500-clip folder and a
    50,000-image set alike."""
    if config.epochs:
        return config
    steps_per_epoch = data.steps_per_epoch(config.batch_size * replicas)
    low, high = task.auto_epoch_range
    epochs = int(np.clip(-(-task.auto_steps // steps_per_epoch), low, high))
    patience = max(task.auto_patience, -(-task.auto_patience_steps // steps_per_epoch))
    return config.replace(epochs=epochs, patience=config.patience or min(patience, epochs))


class NaNGuard(keras.callbacks.TerminateOnNaN):
    """Stops at the first non-finite loss and remembers where, so the run can fail with a reason."""

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.diverged: str | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.diverged is None:
            self.diverged = (f"training diverged: loss became {float(loss)} at epoch {self.epoch + 1}, "
                             f"batch {batch + 1} (try a smaller learning_rate or another optimizer)")
            self.model.stop_training = True


def resumable_epoch(backup_dir: Path) -> int:
    """The epoch a BackupAndRestore folder would resume at (0 when there is nothing to resume)."""
    metadata = backup_dir / "training_metadata.json"
    if not metadata.exists():
        return 0
    return int(json.loads(metadata.read_text()).get("epoch", 0))


ROOM_MARGIN = 256 * 1024  # bytes beyond a checkpoint's size that must stay free (metadata, file system)


class WriteFailed(OSError):
    """A checkpoint could not be written (a full disk, a file-size limit): the run ends FAILED with
    the path, and the last checkpoint that was written whole stays for `--resume`."""

    def __init__(self, path: Path, error: OSError):
        full = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        super().__init__(error.errno, f"{'disk full' if full else 'cannot write'}: {path} ({error.strerror or error})")


def write_whole(path: Path, write, expected_bytes: int) -> None:
    """`write(temporary path)`, then rename it over `path`: a crash or a full disk mid-write leaves
    the previous file whole. The temporary name keeps the suffixes Keras checks.

    HDF5 (Keras' weights format) cannot be trusted to fail cleanly on a full disk: its file objects
    then crash the interpreter at exit. So the space is checked first, against the file it replaces
    (the same model writes the same size) or `expected_bytes`."""
    pending = path.with_name(f"pending-{path.name}")
    needed = (path.stat().st_size if path.exists() else expected_bytes) + ROOM_MARGIN
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        raise WriteFailed(path, OSError(errno.ENOSPC, f"{free} bytes free, about {needed} needed"))
    try:
        write(pending)
        os.replace(pending, path)
    except OSError as exc:
        pending.unlink(missing_ok=True)
        raise WriteFailed(path, exc) from None


def variable_bytes(variables) -> int:
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, with each checkpoint written whole or not at all."""

    def _save_model(self):
        Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        write_whole(Path(self._weights_path), lambda p: self.model.save_weights(str(p), overwrite=True),
                    variable_bytes(self.model.weights))
        metadata = json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen})
        write_whole(Path(self._training_metadata_path), lambda p: p.write_text(metadata), len(metadata))


class EpochCheckpoints(keras.callbacks.Callback):
    """The whole model (weights and optimizer state) after each epoch, as `epoch-NNN.keras`."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            optimizer = self.model.optimizer.variables if self.model.optimizer else []
            write_whole(self.folder / f"epoch-{epoch + 1:03d}.keras", self.model.save,
                        variable_bytes([*self.model.weights, *optimizer]))
        except WriteFailed:
            raise
        except Exception as exc:  # a model Keras cannot serialize still trains; it just cannot be forked
            print(f"epoch checkpoints off for this run: {type(exc).__name__}: {exc}")
            self.on_epoch_end = lambda *args, **kwargs: None


def epoch_checkpoint(folder: Path, epoch: int) -> Path:
    return folder / f"epoch-{epoch:03d}.keras"


def fit(model: keras.Model, config: RunConfig, task: "Task", data: Splits, backup_dir: Path,
        callbacks: list[keras.callbacks.Callback] = (), verbose: int = 2, replicas: int = 1,
        initial_epoch: int = 0, epochs_dir: Path | None = None) -> keras.callbacks.History:
    """Train on the training split, validate on the validation split; the test split stays unseen.

    `config.batch_size` is per replica; the global batch is batch_size x replicas."""
    batch = config.batch_size * replicas
    train = input_pipeline(data.x_train, task.targets(data.y_train, config, data), batch,
                           shuffle=True, seed=config.seed, augment=task.train_augmentation(data, config))
    val = input_pipeline(data.x_val, task.targets(data.y_val, config, data), batch,
                         shuffle=False, seed=config.seed)
    guard = NaNGuard()
    # Order matters: the backup is written before the tracking callback records the epoch,
    # so an epoch seen in MLflow can always be resumed from.
    all_callbacks = [SafeBackupAndRestore(str(backup_dir)), guard]
    if epochs_dir is not None and config.epoch_checkpoints:
        all_callbacks.append(EpochCheckpoints(epochs_dir))
    if config.patience:
        all_callbacks.append(keras.callbacks.EarlyStopping(
            monitor=task.monitor, mode=task.monitor_mode, patience=config.patience,
            restore_best_weights=True))
    all_callbacks.extend(callbacks)
    history = model.fit(train, validation_data=val, epochs=config.epochs, callbacks=all_callbacks,
                        shuffle=False, verbose=verbose, initial_epoch=initial_epoch)  # the dataset shuffles itself
    if guard.diverged:
        raise TrainingDiverged(guard.diverged)
    return history
