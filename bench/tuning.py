"""Search efficiency: Optuna (TPE + Hyperband) vs random search without pruning vs KerasTuner's
Hyperband, on the same task, search space and budget of training epochs.

    .venv/bin/python bench/tuning.py [--dataset digits|fashion-mnist] [--budget EPOCHS] [--seeds N] [--first-seed S]
                                     [--methods M,...] [--targets A,B,...] [--study-prefix P]
                                     [--space FILE.yaml] [--save F.json]
    .venv/bin/python bench/tuning.py --report F.json,G.json [--targets ...]

Task: images/<dataset>/mlp, the images task's default search space (learning rate, optimizer,
activation, dropout, L2, batch size) or that space with the fields of --space replaced (every
method searches the same space), at most 9 epochs per trial. fashion-mnist uses 12,000 of its
training images (all 6,000 validation images) so that a search fits in minutes on a laptop. For
every method and seed it records the validation accuracy of every epoch, in order; from that, the
best within the budget and the number of epochs spent when the validation accuracy first reached
each target. Epochs are counted the same way for all methods (one Keras epoch = one unit), so
per-trial overheads do not enter. No MLflow logging: this measures the search, not the tracking.

--report reads searches saved by --save (e.g. methods or seeds run in parallel processes) and
prints the same table; a method's searches found in several files are taken as further seeds.

Targets: the fixed ones given (digits: 0.99, 0.98, 0.97), and "random-p90", the accuracy that one
in ten random-search trials reaches in the same run (a top-10% configuration, whatever the
dataset's scale). The goal is judged at the first target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402

from workbench.tasks.configure import make_config  # noqa: E402
from workbench.config import RunConfig  # noqa: E402
from workbench.tasks import get_task  # noqa: E402
from workbench.training import compile_model, input_pipeline, seed_everything  # noqa: E402
from workbench.tuning import make_pruner, make_sampler  # noqa: E402
from workbench.tuning.space import load_space, suggest  # noqa: E402

MAX_EPOCHS = 9
FIXED_TARGETS = {"digits": (0.99, 0.98, 0.97), "fashion-mnist": ()}  # 0.99 on digits: at most 1 of 144 wrong
FASHION_TRAIN_IMAGES = 12_000
TASK = get_task("images")
BASE = DATA = SPACE = None  # set by load(): the benchmark's run config, data and search space
STUDY_PREFIX = "bench"  # --study-prefix: another prefix, other Hyperband brackets for the same seeds


def load(dataset: str, space: str | None) -> None:
    global BASE, DATA, SPACE
    BASE = make_config(task="images", dataset=dataset, model="mlp", epochs=MAX_EPOCHS, lr_schedule="constant")
    SPACE = load_space(space, TASK.search_space("mlp"), BASE)
    DATA = TASK.load_data(BASE)
    if dataset == "fashion-mnist":
        DATA.x_train, DATA.y_train = DATA.x_train[:FASHION_TRAIN_IMAGES], DATA.y_train[:FASHION_TRAIN_IMAGES]


class Budget:
    """Counts epochs across all trials and keeps every epoch's validation accuracy, in order."""

    def __init__(self, limit: int):
        self.limit, self.accuracies = limit, []

    @property
    def used(self) -> int:
        return len(self.accuracies)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    @property
    def best(self) -> float:
        return max(self.accuracies, default=0.0)

    def __deepcopy__(self, memo):  # KerasTuner deep-copies callbacks per trial; all trials share one budget
        return self

    def record(self, val_accuracy: float) -> None:
        self.accuracies.append(val_accuracy)

    def first_hit(self, target: float) -> int | None:
        """Epochs spent when the validation accuracy first reached `target` (None: never)."""
        return next((i + 1 for i, a in enumerate(self.accuracies) if a >= target), None)


class Counting(keras.callbacks.Callback):
    def __init__(self, budget: Budget, on_epoch=None, spent_error: type[Exception] | None = None):
        super().__init__()
        self.budget, self.on_epoch, self.spent_error = budget, on_epoch, spent_error

    def on_epoch_begin(self, epoch, logs=None):
        # Only a tuner that starts trials by itself (KerasTuner) can start one with the budget spent.
        if self.spent_error and self.budget.exhausted:
            raise self.spent_error("budget of epochs spent")

    def on_epoch_end(self, epoch, logs=None):
        self.budget.record(float(logs["val_accuracy"]))
        if self.on_epoch:
            self.on_epoch(epoch, logs)
        if self.budget.exhausted:
            self.model.stop_training = True


def train_epochs(config: RunConfig, epochs: int, callbacks) -> float:
    seed_everything(config.seed)
    model = TASK.build_model(config, DATA)
    compile_model(model, config, TASK, DATA)
    train = input_pipeline(DATA.x_train, DATA.y_train, config.batch_size, True, config.seed)
    val = input_pipeline(DATA.x_val, DATA.y_val, 256, False, config.seed)
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=0)
    return max(history.history.get("val_accuracy", [0.0]))


def optuna_search(seed: int, budget: Budget, sampler, pruner) -> None:
    # A fixed name: Hyperband assigns trials to brackets by a hash of it, so a random one varies the result.
    study = optuna.create_study(study_name=f"{STUDY_PREFIX}-seed{seed}", direction="maximize", sampler=sampler,
                                pruner=pruner)

    def objective(trial):
        def report(epoch, logs):
            trial.report(float(logs["val_accuracy"]), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        config = BASE.replace(seed=seed, **suggest(trial, SPACE))
        return train_epochs(config, MAX_EPOCHS, [Counting(budget, report)])

    while not budget.exhausted:
        study.optimize(objective, n_trials=1)


def keras_tuner_search(seed: int, budget: Budget) -> None:
    import keras_tuner as kt

    # The same space in KerasTuner's terms. Not workbench.tuning.space.suggest behind an adapter: that
    # passes step=1 to every int, and KerasTuner reads a step on a log scale as a factor.
    def suggest_kt(hp, name, spec):
        if spec["type"] == "categorical":
            return hp.Choice(name, spec["choices"])
        sampling = "log" if spec.get("log") else "linear"
        if spec["type"] == "int":
            return hp.Int(name, int(spec["low"]), int(spec["high"]), step=spec.get("step"), sampling=sampling)
        return hp.Float(name, float(spec["low"]), float(spec["high"]), step=spec.get("step"), sampling=sampling)

    class HyperModel(kt.HyperModel):
        def build(self, hp):
            values = {name: suggest_kt(hp, name, spec) for name, spec in SPACE.items()}
            self.config = BASE.replace(seed=seed, **values)
            seed_everything(seed)  # the same initial weights as the Optuna trials, and repeatable searches
            model = TASK.build_model(self.config, DATA)
            compile_model(model, self.config, TASK, DATA)
            return model

        def fit(self, hp, model, *args, **kwargs):
            train = input_pipeline(DATA.x_train, DATA.y_train, self.config.batch_size, True, seed)
            return model.fit(train, *args, **kwargs)

    tuner = kt.Hyperband(HyperModel(), objective="val_accuracy", max_epochs=MAX_EPOCHS, factor=3,
                         hyperband_iterations=100, seed=seed, directory=tempfile.mkdtemp(), overwrite=True)
    val = input_pipeline(DATA.x_val, DATA.y_val, 256, False, seed)
    try:
        # KerasTuner retries a trial that raises an ordinary error, for ever; only FatalError ends the search.
        tuner.search(validation_data=val, callbacks=[Counting(budget, spent_error=kt.errors.FatalError)], verbose=0)
    except kt.errors.FatalError:
        pass


def run(method: str, seed: int, limit: int) -> Budget:
    budget = Budget(limit)
    if method == "optuna-tpe-hyperband":  # the workbench's own defaults
        optuna_search(seed, budget, make_sampler("tpe", seed), make_pruner("hyperband", MAX_EPOCHS))
    elif method == "random-no-pruning":
        optuna_search(seed, budget, optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner())
    else:
        keras_tuner_search(seed, budget)
    return budget


METHODS = ("optuna-tpe-hyperband", "random-no-pruning", "kerastuner-hyperband")


def mean_epochs_to(target: float, budgets: list[Budget]) -> float:
    hits = [b.first_hit(target) for b in budgets]
    return statistics.mean(hits) if None not in hits else float("nan")


def random_p90(budgets: list[Budget]) -> float:
    """The best accuracy of the top tenth of random-search trials (MAX_EPOCHS long; a search's last
    trial may be cut short by the budget)."""
    trial_bests = [max(b.accuracies[i:i + MAX_EPOCHS]) for b in budgets for i in range(0, b.used, MAX_EPOCHS)]
    return float(np.quantile(trial_bests, 0.9, method="lower"))


def search_all(dataset: str, space: str | None, limit: int, seeds: range, methods: tuple[str, ...],
               save: str | None) -> dict[str, list[Budget]]:
    load(dataset, space)
    print(f"images/{dataset}/mlp ({len(DATA.y_train)} training, {len(DATA.y_val)} validation images), "
          f"budget {limit} epochs per search, seeds {seeds.start}..{seeds.stop - 1}, space {space or 'default'}\n")
    searches = {}
    for method in methods:
        budgets = searches[method] = []
        for seed in seeds:
            budgets.append(run(method, seed, limit))
            print(f"  {method} seed {seed}: best {budgets[-1].best:.4f}", file=sys.stderr, flush=True)
            if save:  # after every search: a long run stopped early keeps what it measured
                Path(save).write_text(json.dumps({m: [b.accuracies for b in bs] for m, bs in searches.items()}))
    return searches


def saved(files: list[str]) -> dict[str, list[Budget]]:
    """Searches written by --save; a method's searches in several files are further seeds, in order."""
    searches = {}
    for file in files:
        for method, runs in json.loads(Path(file).read_text()).items():
            for accuracies in runs:
                searches.setdefault(method, []).append(Budget(len(accuracies)))
                searches[method][-1].accuracies = accuracies
    return searches


def report(searches: dict[str, list[Budget]], targets: tuple[float, ...]) -> None:
    if "random-no-pruning" in searches:
        targets = (*targets, random_p90(searches["random-no-pruning"]))
        print(f"random-p90 target: {targets[-1]:.4f}\n")
    print("| method | best val accuracy per seed | " + " | ".join(f"epochs to {t:.4f} per seed (mean)" for t in targets) + " |")
    print("|---|---|" + "---|" * len(targets))
    for method, budgets in searches.items():
        cells = [", ".join(str(b.first_hit(t) or f"not within {b.used}") for b in budgets) + f" ({mean_epochs_to(t, budgets):.1f})"
                 for t in targets]
        print(f"| {method} | {', '.join(f'{b.best:.4f}' for b in budgets)} | " + " | ".join(cells) + " |")
    if not set(METHODS) <= set(searches):
        return
    for target in targets:
        ours, random, kerastuner = (mean_epochs_to(target, searches[m]) for m in METHODS)
        print(f"\ntarget {target:.4f}: Optuna / random epochs {ours / random:.2f} (goal ≤ 0.50); "
              f"Optuna / KerasTuner {ours / kerastuner:.2f} (goal ≤ 1.00)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=tuple(FIXED_TARGETS), default="digits")
    parser.add_argument("--budget", type=int, default=200, help="training epochs per search")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ...")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--study-prefix", default=STUDY_PREFIX, help="Optuna study names are <prefix>-seed<N>")
    parser.add_argument("--save", help="write every search's per-epoch validation accuracies to this JSON file")
    parser.add_argument("--targets", help="fixed target accuracies, comma-separated (default: the dataset's)")
    parser.add_argument("--space", help="YAML search space replacing fields of the task's default one")
    parser.add_argument("--report", help="comma-separated --save files: print their table, search nothing")
    args = parser.parse_args()
    STUDY_PREFIX = args.study_prefix
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fixed = tuple(float(t) for t in args.targets.split(",")) if args.targets else FIXED_TARGETS[args.dataset]
    if args.report:
        found = saved(args.report.split(","))
    else:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        found = search_all(args.dataset, args.space, args.budget, seeds, tuple(args.methods.split(",")), args.save)
    report(found, fixed)
