"""`workbench diff A B`: two runs side by side, their executed notebooks included, as one HTML page."""

from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    diff = subparsers.add_parser(
        "diff", help="what differs between two runs: config, metrics, environment, data, notebooks",
        description="Compare two runs: configuration, metrics, environment and code version, data digests, and "
                    "an nbdime-aligned diff of their executed notebooks (outputs and images included). The HTML "
                    "page is logged into run B under diffs/ and its path printed.")
    diff.add_argument("a", metavar="A", help="run id (the reference)")
    diff.add_argument("b", metavar="B", help="run id (compared with A; the page is logged here)")
    diff.add_argument("--output", metavar="HTML", help="also write the page to this file")
    diff.set_defaults(handler=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.lab.diff import diff_runs

    result = diff_runs(args.a, args.b)
    print(result.summary())
    print(f"  page         logged to run {args.b} as {result.artifact}")
    if args.output:
        Path(args.output).write_text(result.html, encoding="utf-8")
        print(f"               and written to {args.output}")
    return 0
