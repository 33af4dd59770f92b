"""`workbench demo`: the quickstart pipeline on embedded defaults, then where to look."""

from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="run the quickstart pipeline on embedded defaults and show where to look",
                                 description="Run pipelines/quickstart.yaml: a short training run of every task "
                                             "through the notebooks, then a comparison with the baselines.")
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench import tracking
    from workbench.cli.pipelines import run_file
    from workbench.home import PROJECT_ROOT

    code = run_file(str(PROJECT_ROOT / "pipelines" / "quickstart.yaml"))
    print(f"\nlook at the runs: workbench ui   (MLflow UI on http://127.0.0.1:5000 over {tracking.tracking_uri()}; "
          "experiments workbench-pipelines, workbench-images, workbench-text, workbench-speech)")
    return code
