"""`workbench rerun RUN_ID [--set FIELD=VALUE ...]`: train again from the record; does it reproduce?"""

from __future__ import annotations

import argparse
import sys

from workbench.errors import BadInput, ConfigError


def add_commands(subparsers) -> None:
    rerun = subparsers.add_parser(
        "rerun", help="train a run again from its record and say whether it reproduces",
        description="Rebuild a run's configuration from its params (with --set changes), train it again, and "
                    "compare the new run with the record: code version, libraries, devices, data digests, and "
                    "every test and baseline metric.")
    rerun.add_argument("run_id", metavar="RUN_ID")
    rerun.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="change one field or option of the recorded configuration (repeatable)")
    rerun.add_argument("--tolerance", type=float, default=None, metavar="X",
                       help="largest metric difference still called reproduced (default 1e-6)")
    rerun.add_argument("--from-epoch", type=int, metavar="K",
                       help="fork: a new run that starts from this run's model after epoch K (weights and "
                            "optimizer state) and trains its remaining epochs, linked to it (in this process)")
    rerun.add_argument("--in-process", action="store_true", help="train in this process, without the notebook")
    rerun.add_argument("--cell-timeout", type=int, default=3600, metavar="SECONDS")
    rerun.set_defaults(handler=cmd_rerun)


def cmd_rerun(args: argparse.Namespace) -> int:
    from workbench import reruns
    from workbench.cli.train import train_once

    tolerance = reruns.DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    if tolerance < 0:
        raise ConfigError("tolerance", tolerance, "a number >= 0")
    config, changed = reruns.rerun_config(args.run_id, reruns.parse_assignments(args.set))
    if args.from_epoch is not None:
        return fork(args.run_id, config, args.from_epoch)
    code, run_id = train_once(config, args.in_process, cell_timeout=args.cell_timeout)
    if run_id is None:
        return code
    reruns.link(args.run_id, run_id)
    result = reruns.compare_with_record(args.run_id, run_id, config, changed, tolerance)
    print("\n" + result.report())
    return code


def fork(origin: str, config, epoch: int) -> int:
    """`--from-epoch K`: the origin's model after epoch K, trained on to the configured epochs."""
    from workbench import reruns
    from workbench.cli.train import print_run_summary
    from workbench.runs import train

    start = reruns.fork_point(origin, config, epoch)
    try:
        result = train(config, fork=start)
    except BadInput:
        raise
    except Exception as exc:  # the fork's run ended FAILED with the error; say it here too
        print(f"workbench rerun: fork failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    reruns.link_fork(origin, result.run_id)
    print_run_summary(result.run_id)
    print(f"\nfork {result.run_id} of {origin}: started from its epoch {epoch}, trained epochs {epoch + 1} "
          f"to {config.epochs}")
    return 0

