"""The `workbench` command: train, rerun, compare, diff, tune, dashboard, server, ui, lab, demo, pipeline, schedule, scheduler.

Each command lives in a module of this package; this one builds the parser and turns errors
into exit codes, in one place: 0 success, 1 the run failed (or what it needs is busy), 2 bad
input before anything ran (a flag, file or dataset, named in one message), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from workbench.cli import compare, demo, diff, pipelines, rerun, servers, train, tune
from workbench.cli.flags import model_option_flags
from workbench.errors import BadInput, Busy

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
        return args.handler(args)
    except (BadInput, Busy) as exc:
        code, prefix = next((code, prefix) for kind, code, prefix in EXIT_CODES if isinstance(exc, kind))
        print(f"{command}: {prefix}{exc}", file=sys.stderr)
        return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (train, rerun, compare, diff, servers, tune, demo, pipelines):  # the order of `workbench --help`
        module.add_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
