"""`workbench tune` (an Optuna study, through notebooks/tune.ipynb or in this process) and
`workbench dashboard`."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time

from workbench.cli.flags import add_bind_flags, add_config_flags, config_values, require_loopback
from workbench.config import RunConfig
from workbench.tasks.configure import make_config


def add_commands(subparsers) -> None:
    tune = subparsers.add_parser("tune", help="tune hyper-parameters with Optuna (through notebooks/tune.ipynb)",
                                 description="Run or continue an Optuna study; one MLflow parent run per study, "
                                             "one child run per trial.")
    add_config_flags(tune)
    tune.add_argument("--trials", type=int, default=20, help="finished trials the study should hold (default 20)")
    tune.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    tune.add_argument("--study", help="study name (default TASK-DATASET-MODEL); same name + storage = same study")
    tune.add_argument("--storage", help="journal:PATH (default: the workbench home) or postgresql://USER:PASS@HOST/DB")
    tune.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    tune.add_argument("--sampler", default="tpe", help="tpe (default), random, cmaes, gp")
    tune.add_argument("--pruner", default="hyperband", help="hyperband (default), median, none")
    tune.add_argument("--search-space", metavar="YAML", help="override the task's search space")
    tune.add_argument("--register", metavar="NAME",
                      help="retrain the best config on train+validation, test it, register it as NAME "
                           "(alias 'champion' moves only when the test score improves; significantly, with --seeds)")
    tune.add_argument("--seeds", type=int, default=1, metavar="N",
                      help="train every trial (and the --register retrain) over N seeds; a trial scores the "
                           "mean of its seed group (default 1)")
    tune.add_argument("--in-process", action="store_true", help="run here, without the notebook")
    tune.add_argument("--cell-timeout", type=int, default=24 * 3600, metavar="SECONDS")
    tune.set_defaults(handler=cmd_tune)

    dashboard = subparsers.add_parser("dashboard", help="optuna-dashboard over the tuning storage",
                                      description="Serve optuna-dashboard over the study storage.")
    dashboard.add_argument("--storage", help="as for `workbench tune` (default: the workbench home)")
    add_bind_flags(dashboard, port=8080)
    dashboard.set_defaults(handler=cmd_dashboard)


TUNING_ARGUMENTS = ("trials", "timeout", "study", "storage", "workers", "sampler", "pruner", "search_space", "register",
                    "seeds")


def tuning_arguments(args: argparse.Namespace) -> dict:
    """`workbench tune` flags as keyword arguments of workbench.tuning.tune."""
    return {**config_values(args), "trials": args.trials, "timeout": args.timeout, "study": args.study, "storage": args.storage,
            "workers": args.workers, "sampler": args.sampler, "pruner": args.pruner,
            "search_space": args.search_space, "register": args.register, "seeds": args.seeds}


def cmd_tune(args: argparse.Namespace) -> int:
    from workbench.seeds import seed_list
    from workbench.tuning import study_name_for, tune

    arguments = tuning_arguments(args)
    base = make_config({k: v for k, v in arguments.items() if k not in TUNING_ARGUMENTS})
    study_name = study_name_for(args.study, base)  # a bad name or seed count: exit 2 before any study or run
    seed_list(base.seed, args.seeds)
    if args.in_process:
        result = tune(**arguments)
    else:
        result = tune_with_notebook(arguments, base, study_name, args.cell_timeout)
    if result is None:
        return 1
    print(f"\nstudy {result.study_name}: {result.counts}")
    print(f"  best value  {result.best_value}\n  best params {result.best_params}")
    print(f"  MLflow parent run {result.parent_run_id}; open it with `workbench ui`")
    if result.registration:
        r = result.registration
        print(f"  registered {r.name} version {r.version}: {r.metric} {r.score:.4f} over {len(r.scores)} seed(s); "
              + ("now the champion" if r.champion else f"champion stays version {r.previous_champion}")
              + f" ({r.why})")
    return 0


def tune_with_notebook(arguments: dict, base: RunConfig, study_name: str, cell_timeout: int):
    """Execute notebooks/tune.ipynb; attach it to the study's parent run; return the study's outcome."""
    from workbench import tracking
    from workbench.home import NOTEBOOKS_DIR, executed_notebooks
    from workbench.notebooks import attach, execute
    from workbench.tuning import TuningResult
    from workbench.tuning.mlflow_bridge import find_parent
    from workbench.tuning.space import load_space
    from workbench.tuning.storage import redacted
    from workbench.tasks import get_task

    load_space(arguments["search_space"], get_task(base.task).search_space(base.model), base)  # fail early
    file_name = re.sub(r"[^\w.-]", "_", study_name, flags=re.ASCII)[:100]  # a study name may hold / and run long
    executed = executed_notebooks() / f"tune-{file_name}-{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
    config = {k: v for k, v in arguments.items() if k in base.to_dict()}
    parameters = {**{k: v for k, v in arguments.items() if k not in config}, "study": study_name, "config": config}
    error = execute(NOTEBOOKS_DIR / "tune.ipynb", parameters, executed, cell_timeout)
    parent = find_parent(study_name, redacted(arguments["storage"]), base.experiment)
    if parent and executed.exists():
        attach(parent, executed)
    print(f"executed notebook: {executed}")
    if error:
        print(f"workbench tune: {error}", file=sys.stderr)
        return None
    summary = tracking.client().get_run(parent)
    metrics = summary.data.metrics
    return TuningResult(study_name, parent, json.loads(summary.data.tags.get("best_params", "{}")),
                        next((v for k, v in metrics.items() if k.startswith("best_val")), None),
                        {k.removeprefix("trials_"): int(v) for k, v in metrics.items() if k.startswith("trials_")})


def cmd_dashboard(args: argparse.Namespace) -> int:
    require_loopback(args.host, args.allow_remote, "dashboard")
    try:
        import optuna_dashboard
    except ImportError:
        print("workbench dashboard: optuna-dashboard is not installed (pip install optuna-dashboard)",
              file=sys.stderr)
        return 2
    from workbench.tuning.storage import open_storage, redacted

    print(f"optuna-dashboard on http://{args.host}:{args.port} over {redacted(args.storage)}", flush=True)
    # The dashboard opens no runs, so SIGTERM may end it at once. Raising it as an exception instead
    # can land inside a request, where wsgiref's handler swallows it and the server never stops.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    optuna_dashboard.run_server(open_storage(args.storage), host=args.host, port=args.port)
    return 0
