"""`workbench train`: one run, through notebooks/train.ipynb or in this process, and its summary."""

from __future__ import annotations

import argparse
import signal
import sys

from workbench.cli.flags import add_config_flags, config_values
from workbench.config import RunConfig
from workbench.errors import BadInput, ConfigError
from workbench.tasks.configure import config_from_params, make_config


def add_commands(subparsers) -> None:
    train = subparsers.add_parser("train", help="train one model (through notebooks/train.ipynb by default)",
                                  description="Train one model and log it to MLflow.")
    add_config_flags(train)
    train.add_argument("--in-process", action="store_true",
                       help="run the same code in this process, without a notebook")
    train.add_argument("--resume", metavar="RUN_ID",
                       help="continue a killed run from its last finished epoch (config comes from the run)")
    train.add_argument("--cell-timeout", type=int, default=3600, metavar="SECONDS",
                       help="per-cell time limit in the notebook (default 3600)")
    train.add_argument("--seeds", type=int, metavar="N",
                       help="train the configuration N times (seeds seed, seed+1, ...) as one group: a parent "
                            "run with the mean, std and 95%% CI of every metric, a child run per seed")
    train.set_defaults(handler=cmd_train)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return make_config(config_values(args))


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        config = config_of_run(args.resume, args)
    else:
        config = config_from_args(args)
    if args.seeds is not None:
        return run_seeds(config, args)
    return run_training(config, in_process=args.in_process, run_id=args.resume, cell_timeout=args.cell_timeout)


def run_seeds(config: RunConfig, args: argparse.Namespace) -> int:
    """`--seeds N`: the group, then its main metric per seed and with its confidence interval."""
    from workbench.seeds import seed_list, train_seeds

    if args.resume:
        raise ConfigError("seeds", args.seeds, "no --seeds with --resume (a resumed run is one seed)")
    seed_list(config.seed, args.seeds)  # a bad count is an error before the group run exists
    group = train_seeds(config, args.seeds, in_process=args.in_process, cell_timeout=args.cell_timeout, verbose=2)
    main = group.main_metric
    print(f"\nseed group {group.parent_run_id}: {len(group.run_ids)} runs, {len(group.failed)} failed")
    for seed, error in group.failed.items():
        print(f"  seed {seed}: FAILED: {error}", file=sys.stderr)
    if main in group.summaries:
        print(f"  {main}: {group.summaries[main].describe()}")
    print(f"  compare with another group: workbench compare {group.parent_run_id} OTHER_GROUP_OR_RUN")
    return 1 if group.failed else 0


def config_of_run(run_id: str, args: argparse.Namespace) -> RunConfig:
    from workbench.tracking import queries

    from workbench import tracking

    params = queries.existing_run_params(run_id, "resume")
    if tracking.run_status(run_id) == "FINISHED":  # resuming would train it again into the same run
        raise ConfigError("resume", run_id, "a run that was stopped (KILLED or FAILED); this one FINISHED: "
                          f"`workbench rerun {run_id}` trains it again as a new run")
    given = {k: v for k, v in vars(args).items() if k in params and v is not None and str(v) != params[k]}
    if given:
        raise ConfigError("resume", run_id, "no other config flags: the config is the run's own "
                          f"(got {', '.join(given)})")
    return config_from_params(params)


def run_training(config: RunConfig, in_process: bool, run_id: str | None = None, cell_timeout: int = 3600) -> int:
    return train_once(config, in_process, run_id, cell_timeout)[0]


def train_once(config: RunConfig, in_process: bool, run_id: str | None = None,
               cell_timeout: int = 3600) -> tuple[int, str | None]:
    """(exit code, run id) of one training run, summarised on the terminal."""
    # Stopping a run (the launcher's Stop, Ctrl-C) is SIGINT, which ends it KILLED. A shell that starts
    # a program in the background makes it ignore SIGINT, and its children inherit that: undo it.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if in_process:
        from workbench.runs import train

        try:
            result = train(config, run_id=run_id)
        except BadInput:
            raise
        except Exception as exc:
            print(f"workbench train: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1, None
        if result.run_id is None:
            print("this worker is not the chief: it trained its share, the chief logs the run")
            return 0, None
        run_id, error = result.run_id, None
    else:
        from workbench.notebooks import train_with_notebook

        outcome = train_with_notebook(config, run_id=run_id, cell_timeout=cell_timeout)
        run_id, error = outcome.run_id, outcome.error
        if outcome.executed.exists():
            print(f"executed notebook: {outcome.executed}")
    from workbench import tracking  # after the notebook: loading MLflow overlapped with its kernel

    print_run_summary(run_id)
    if error:
        print(f"workbench train: run {run_id} FAILED: {error}", file=sys.stderr)
        return 1, run_id
    return (0 if tracking.run_status(run_id) == "FINISHED" else 1), run_id


def print_run_summary(run_id: str) -> None:
    from workbench import tracking
    from workbench.tracking import links

    from workbench.tasks import get_task

    run = tracking.client().get_run(run_id)
    metrics = run.data.metrics
    main = get_task(run.data.params["task"]).main_metric if "task" in run.data.params else "test_accuracy"
    wanted = dict.fromkeys((main, "test_accuracy", "test_macro_f1", "test_loss", f"baseline_{main}",
                            "train_val_gap_accuracy"))  # the task's own score first, then the common ones
    shown = [k for k in wanted if k in metrics]
    print(f"\nrun {run_id}: {run.info.status}")
    for key in shown:
        print(f"  {key:<24} {metrics[key]:.4f}")
    print(f"  tracking store           {tracking.tracking_uri()}")
    print(f"  artifacts                {run.info.artifact_uri}")
    print(f"  open it:                 workbench ui   then  {links.run_url(run_id, run.info.experiment_id)}")
