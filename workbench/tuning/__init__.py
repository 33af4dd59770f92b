"""Hyper-parameter tuning with Optuna, tracked in MLflow.

    import workbench.tuning
    result = workbench.tuning.tune(task="images", dataset="digits", trials=20, epochs=5)

One study = one MLflow parent run; each trial is a child run trained by `workbench.train` and
judged on validation only. Pruning (Hyperband by default) stops weak trials from their
per-epoch validation metric. Studies live in a journal file in the workbench home or in a
database (PostgreSQL) that workers on several machines share.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.config import MAX_NAME_LENGTH, ConfigError, RunConfig, check_name
from workbench.tasks.configure import make_config

SAMPLERS = ("tpe", "random", "cmaes", "gp")
PRUNERS = ("hyperband", "median", "none")


@dataclass
class TuningResult:
    study_name: str
    parent_run_id: str
    best_params: dict[str, Any]
    best_value: float | None
    counts: dict[str, int]
    figures: dict = field(default_factory=dict)
    registration: Any = None


MAX_STUDY_NAME = MAX_NAME_LENGTH - len("study-")  # the study's MLflow parent run is named study-NAME


def default_study_name(config: RunConfig) -> str:
    return f"{config.task}-{config.dataset.split('/')[-1]}-{config.model}"


def study_name_for(study: str | None, config: RunConfig) -> str:
    """`study` checked (a ConfigError naming 'study': it must fit MLflow's run names and the quotes
    of its searches), or the default name for `config`."""
    return check_name("study", study or default_study_name(config), MAX_STUDY_NAME, forbidden="'")


def make_sampler(name: str, seed: int):
    import optuna

    if name == "tpe":  # 5 random start-up trials (Optuna's default 10 eats small budgets)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    try:
        import torch  # noqa: F401  (GPSampler's dependency)
    except ImportError:
        raise ConfigError("sampler", name, "tpe, random, cmaes; 'gp' needs PyTorch (pip install torch)") from None
    return optuna.samplers.GPSampler(seed=seed)


def make_pruner(name: str, epochs: int):
    import optuna

    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def tune(task: str = "images", trials: int = 20, *, study: str | None = None, storage: str | None = None,
         workers: int = 1, sampler: str = "tpe", pruner: str = "hyperband", timeout: float | None = None,
         search_space: str | dict | None = None, register: str | None = None, progress: bool = True,
         seeds: int = 1, **config_values: Any) -> TuningResult:
    """Run (or continue) a study until it holds `trials` finished trials; see module docs."""
    import optuna

    from workbench.distribute import cpu_slots, gpu_slots, visible_gpu_ids
    from workbench.procs import pinned_to, usable_cores
    from workbench.seeds import seed_list
    from workbench.tasks import get_task
    from workbench.tuning import mlflow_bridge
    from workbench.tuning.space import load_space
    from workbench.tuning.storage import open_storage, redacted, storage_kind, sweep_dead_trials
    from workbench.tuning.workers import SETTINGS_ATTR, counts, run_worker

    base = make_config(task=task, **config_values)
    for name, value, allowed in (("trials", trials, "an integer >= 1"), ("workers", workers, "an integer >= 1")):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(name, value, allowed)
    seed_list(base.seed, seeds)  # a bad count is an error before the study exists
    study_name = study_name_for(study, base)
    if sampler not in SAMPLERS:
        raise ConfigError("sampler", sampler, ", ".join(SAMPLERS))
    if pruner not in PRUNERS:
        raise ConfigError("pruner", pruner, ", ".join(PRUNERS))
    task_spec = get_task(base.task)
    space = load_space(search_space, task_spec.search_space(base.model), base)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_object = open_storage(storage)
    the_study = optuna.create_study(
        study_name=study_name, storage=storage_object, load_if_exists=True,
        direction="maximize" if task_spec.monitor_mode == "max" else "minimize",
        sampler=make_sampler(sampler, base.seed), pruner=make_pruner(pruner, task_spec.max_epochs(base)))
    parent = mlflow_bridge.open_parent(study_name, redacted(storage), base.experiment, {
        "study": study_name, "storage_kind": storage_kind(storage), "sampler": sampler, "pruner": pruner,
        "trials": trials, "workers": workers, "seeds": seeds,
        "objective": f"best {task_spec.monitor}" + (f", mean of {seeds} seeds" if seeds > 1 else ""),
        **{f"base.{k}": v for k, v in base.to_dict().items() if k not in space}})
    the_study.set_user_attr(SETTINGS_ATTR, {
        "base": base.to_dict(), "space": space, "trials": trials, "seeds": seeds, "parent_run_id": parent,
        "sampler": sampler, "pruner": pruner,
        "deadline": time.time() + timeout if timeout else None})
    retried = sweep_dead_trials(the_study)
    if retried:
        mlflow_bridge.fail_children(parent, retried, "the worker running this trial died")
        if progress:
            print(f"trials {retried} belonged to workers that died: marked failed, parameters queued again")

    error = None
    try:
        if workers == 1:
            data = task_spec.load_data(base)
            _with_progress(the_study, trials, progress, lambda: run_worker(study_name, storage, data=data))
        else:
            command = [sys.executable, "-m", "workbench.tuning.workers", "--study", study_name]
            command += ["--storage", storage] if storage else []
            slots = gpu_slots(visible_gpu_ids(), workers)  # one GPU per worker process when there are GPUs
            usable = usable_cores()
            cores = cpu_slots(usable, workers) if usable else [None] * workers
            processes = [subprocess.Popen([*command, "--index", str(i)], preexec_fn=pinned_to(cores[i]),
                                          env={**os.environ, **({"CUDA_VISIBLE_DEVICES": slot} if slot else {})})
                         for i, slot in enumerate(slots)]
            _with_progress(the_study, trials, progress, lambda: [p.wait() for p in processes])
            failed = [p.returncode for p in processes if p.returncode]
            if failed:
                error = f"{len(failed)} of {workers} workers exited with an error ({failed})"
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        figures = mlflow_bridge.close_parent(parent, the_study, task_spec.monitor, error)

    registration = None
    best = the_study.best_trial if counts(the_study)["complete"] else None
    if register and best is not None:
        from workbench.tuning.champion import retrain_and_register

        registration = retrain_and_register(base.replace(**best.params), task_spec.load_data(base), register,
                                            parent, seeds)
    return TuningResult(study_name, parent, best.params if best else {}, best.value if best else None,
                        counts(the_study), figures, registration)


def _with_progress(study, total: int, show: bool, work) -> None:
    """Run `work` while a progress bar follows the study: finished / pruned / failed / best."""
    import threading

    from tqdm.auto import tqdm

    from workbench.tuning.workers import counts

    if not show:
        work()
        return
    done = threading.Event()
    bar = tqdm(total=total, desc="trials", unit="trial")

    def follow():
        while not done.wait(1.0):
            _refresh(bar, study, counts)
        _refresh(bar, study, counts)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        work()
    finally:
        done.set()
        thread.join()
        bar.close()


def _refresh(bar, study, counts) -> None:
    now = counts(study)
    try:
        best = f"{study.best_value:.4f}"
    except ValueError:
        best = None
    surplus = sum(bool(t.user_attrs.get("surplus")) for t in study.get_trials(deepcopy=False))
    state = dict(pruned=now["pruned"], failed=now["fail"] - surplus, best=best)
    if state == getattr(bar, "last_state", None) and now["complete"] + now["pruned"] == bar.n:
        return  # redraw only on change: logs and notebooks stay readable
    bar.last_state = state
    bar.update(max(0, min(now["complete"] + now["pruned"], bar.total) - bar.n))
    bar.set_postfix(**state, refresh=True)
