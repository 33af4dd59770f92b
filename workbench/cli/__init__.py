"""The `workbench` command: train, rerun, compare, diff, tune, dashboard, server, ui, lab, demo, pipeline, schedule, scheduler.

Each command lives in a module of this package; this one builds the parser and turns errors
into exit codes, in one place: 0 success, 1 the run failed (or what it needs is busy), 2 bad
input before anything ran (a flag, file or dataset, named in one message), 130 interrupted
(Ctrl-C), 143 stopped by SIGTERM (`timeout`, systemd, Kubernetes, the launcher's Stop): both end
the run KILLED with one line, no traceback.

Commands that start work first close the runs of this host that a killed process left RUNNING.
"""

from __future__ import annotations

import argparse
import signal
import sys

from workbench.cli import compare, demo, diff, pipelines, rerun, servers, train, tune
from workbench.cli.flags import model_option_flags
from workbench.errors import BadInput, Busy, Stopped

EXIT_CODES = ((BadInput, 2, "error: "), (Busy, 1, ""))  # what each error class exits with, and its prefix


def main(argv: list[str] | None = None) -> int:
    command = "workbench"
    try:
        parser = build_parser()  # reads every task's declared options, plugins' included
        args, extra = parser.parse_known_args(argv)
        command = f"workbench {args.command}"
        if extra and not hasattr(args, "model_options"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if extra:  # only commands with config flags take a model function's own --NAME VALUE options
            args.model_options = model_option_flags(extra)
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _stop)
        if _starts_work(args):
            _close_lost_runs()
        return args.handler(args)
    except (BadInput, Busy) as exc:
        code, prefix = next((code, prefix) for kind, code, prefix in EXIT_CODES if isinstance(exc, kind))
        print(f"{command}: {prefix}{exc}", file=sys.stderr)
        return code
    except Stopped:
        print(f"{command}: stopped by SIGTERM", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


def _stop(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop is enough; cleanup must not be cut short
    raise Stopped()


def _starts_work(args) -> bool:
    """Commands that open runs. The notebook path of `train` sweeps beside its kernel instead
    (notebooks.train_with_notebook), so as not to wait for MLflow to load first."""
    if args.command == "train":
        return args.in_process or args.seeds is not None
    if args.command == "pipeline":
        return args.pipeline_command == "run"
    return args.command in ("rerun", "tune", "scheduler", "ui", "demo")


def _close_lost_runs() -> None:
    from workbench import tracking
    from workbench.home import home
    from workbench.tracking.owners import close_lost_runs

    uri = tracking.tracking_uri()
    if not tracking.uses_embedded_store(uri) or (home() / "mlflow.db").exists():  # a new home has none
        close_lost_runs()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (train, rerun, compare, diff, servers, tune, demo, pipelines):  # the order of `workbench --help`
        module.add_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
