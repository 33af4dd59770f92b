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

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise MissingMetricError(f"pruning monitors '{self.monitor}' but the epoch logs only have "
                                     f"{', '.join(sorted(logs)) or 'nothing'}")
        self.trial.report(float(logs[self.monitor]), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch + 1}: {self.monitor}={logs[self.monitor]:.4f}")


class SharedHistoryHyperband(optuna.pruners.BasePruner):
    """Hyperband brackets decide pruning; the sampler learns from the trials of every bracket.

    Optuna's HyperbandPruner also hides the other brackets' trials from the sampler, so TPE starts
    over in each bracket, random start-up trials included. BOHB (Falkner et al., 2018) fits one
    model to all brackets. Optuna filters the sampler's view only for a HyperbandPruner, so this
    wrapper, which is not one, keeps the brackets for pruning and gives the sampler everything.
    """

    def __init__(self, min_resource: int, max_resource: int, reduction_factor: int = 3):
        self.brackets = optuna.pruners.HyperbandPruner(min_resource, max_resource, reduction_factor)

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return self.brackets.prune(study, trial)  # compares the trial with its own bracket only
