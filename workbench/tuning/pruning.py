"""Reports each epoch's validation metric to Optuna and stops unpromising trials."""

from __future__ import annotations

import keras
import optuna


class MissingMetricError(KeyError):
    """The pruner watches a metric the model does not produce: fail instead of tuning blind."""


class PruningCallback(keras.callbacks.Callback):
    """Like optuna-integration's KerasPruningCallback, but a missing metric is an error."""

    def __init__(self, trial: optuna.Trial, monitor: str):
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.reported: set[int] = set()  # a trial trained over seeds reports its first seed's curve

    def on_epoch_end(self, epoch, logs=None):
        if epoch in self.reported:
            return
        self.reported.add(epoch)
        logs = logs or {}
        if self.monitor not in logs:
            raise MissingMetricError(f"pruning monitors '{self.monitor}' but the epoch logs only have "
                                     f"{', '.join(sorted(logs)) or 'nothing'}")
        self.trial.report(float(logs[self.monitor]), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch + 1}: {self.monitor}={logs[self.monitor]:.4f}")
