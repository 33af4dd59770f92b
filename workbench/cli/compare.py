"""`workbench compare A B`: is B really better than A, or within the seed spread?"""

from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    compare = subparsers.add_parser(
        "compare", help="compare two runs or seed groups with a significance test",
        description="The difference of one metric between A and B (runs, or seed groups from `workbench train "
                    "--seeds N`), with its 95%% confidence interval and Welch's t-test, in plain words.")
    compare.add_argument("a", metavar="A", help="run id or seed-group run id (the reference)")
    compare.add_argument("b", metavar="B", help="run id or seed-group run id (compared with A)")
    compare.add_argument("--metric", help="metric to compare (default: the task's main metric, e.g. test_accuracy)")
    compare.set_defaults(handler=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from workbench.lab.compare import compare_groups

    difference = compare_groups(args.a, args.b, args.metric)
    print(f"{difference.metric}")
    print(f"  A {args.a}: {difference.a.describe()}")
    print(f"  B {args.b}: {difference.b.describe()}")
    print(f"  B - A: {difference.verdict()}")
    return 0
