"""A tuning worker: takes trials from a shared study until it holds the requested number.

Any process started with the same study and storage joins; `python -m workbench.tuning.workers
--study NAME --storage URI` is what `workbench tune --workers N` starts N times.
"""

from __future__ import annotations

import argparse
import sys
import time

import optuna
from optuna.trial import TrialState

from workbench.config import MAX_SEED
from workbench.tasks.configure import make_config
from workbench.procs import usable_cores
from workbench.tuning.storage import WORKER_ATTR, open_storage, this_worker

SETTINGS_ATTR = "workbench"
CORES_ATTR = "cores"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class SurplusTrial(Exception):
    """Another worker already started the last trial the study needs."""


def counts(study: optuna.Study) -> dict[str, int]:
    trials = study.get_trials(deepcopy=False)
    return {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}


def is_surplus(study: optuna.Study, trial: optuna.Trial, total: int) -> bool:
    """True when the finished trials plus the running ones started before this one fill the quota."""
    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in FINISHED for t in trials)
    earlier_running = sum(t.state == TrialState.RUNNING and t.number < trial.number for t in trials)
    return done + earlier_running >= total


def objective_for(study: optuna.Study, settings: dict, data, stop: dict):
    from workbench import tracking
    from workbench.runs import train
    from workbench.tasks import get_task
    from workbench.tuning.pruning import PruningCallback
    from workbench.tuning.space import suggest

    base = make_config(settings["base"])
    monitor = get_task(base.task).monitor

    def objective(trial: optuna.Trial) -> float:
        if is_surplus(study, trial, settings["trials"]):
            trial.set_user_attr("surplus", True)
            stop["now"] = True
            raise SurplusTrial()
        trial.set_user_attr(WORKER_ATTR, this_worker())
        trial.set_user_attr(CORES_ATTR, usable_cores())  # the CPU cores it ran on (None: not known here)
        config = base.replace(**suggest(trial, settings["space"]))
        tags = {"optuna.study": study.study_name, "optuna.trial": str(trial.number)}
        pruning = PruningCallback(trial, monitor)
        run = dict(data=data, parent_run_id=settings["parent_run_id"], run_name=f"trial-{trial.number}", tags=tags,
                   evaluate=False, callbacks=[pruning], stopped_early=(optuna.TrialPruned,))
        seeds = settings.get("seeds", 1)
        try:
            if seeds == 1:
                result = train(config, verbose=0, **run)
                trial.set_user_attr("mlflow_run_id", result.run_id)
                return result.metrics[f"best_{monitor}"]
            return _seed_group_value(trial, config, seeds, monitor, run)
        except optuna.TrialPruned:
            _tag_latest_child(tracking, settings["parent_run_id"], trial.number, "pruned", "true")
            raise

    return objective


def _seed_group_value(trial: optuna.Trial, config, seeds: int, monitor: str, run: dict) -> float:
    """The trial as a seed group: its value is the mean best validation score over the seeds. Only
    the first seed reports to the pruner (Optuna keeps one value per step); a pruned seed prunes
    the trial."""
    from workbench.seeds import train_seeds

    group = train_seeds(config, seeds, **run)
    trial.set_user_attr("mlflow_run_id", group.parent_run_id)
    if group.failed:
        raise RuntimeError(f"seeds failed: {group.failed}")
    summary = group.summaries[f"best_{monitor}"]
    trial.set_user_attr("seed_std", summary.std)
    return summary.mean


def _tag_latest_child(tracking, parent_run_id: str, number: int, key: str, value: str) -> None:
    client = tracking.client()
    parent = client.get_run(parent_run_id)
    runs = client.search_runs([parent.info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.`optuna.trial` = '{number}'")
    for run in runs:
        client.set_tag(run.info.run_id, key, value)


def sampler_seed(seed: int, index: int, held: int) -> int:
    """The seed of worker `index`'s sampler on a study that holds `held` trials: workers differ by
    index, and a continued study moves on past the proposals it already tried. It wraps around, as
    numpy takes 0..MAX_SEED only."""
    return (seed + index + 1000 * held) % (MAX_SEED + 1)


def run_worker(study_name: str, storage_uri: str | None, data=None, index: int = 0) -> None:
    """Work on the study; `index` tells parallel workers apart so their samplers differ."""
    from workbench.tasks import get_task
    from workbench.tuning import make_pruner, make_sampler

    storage = open_storage(storage_uri)
    settings = optuna.load_study(study_name=study_name, storage=storage).user_attrs[SETTINGS_ATTR]
    base = make_config(settings["base"])
    study = optuna.load_study(study_name=study_name, storage=storage,
                              pruner=make_pruner(settings["pruner"], get_task(base.task).max_epochs(base)))
    held = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(settings["sampler"], sampler_seed(base.seed, index, held))
    if data is None:
        data = get_task(base.task).load_data(base)
    stop = {"now": False}
    objective = objective_for(study, settings, data, stop)
    while not stop["now"]:
        now = counts(study)
        if now["complete"] + now["pruned"] >= settings["trials"]:
            return
        if settings.get("deadline") and time.time() > settings["deadline"]:
            return
        # One trial per optimize() call keeps Optuna's heartbeat and stale-trial handling.
        study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="join a workbench tuning study as a worker")
    parser.add_argument("--study", required=True)
    parser.add_argument("--storage", default=None)
    parser.add_argument("--index", type=int, default=0, help="worker number (varies the sampler seed)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_worker(args.study, args.storage, index=args.index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
