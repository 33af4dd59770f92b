"""The `workbench` command: train, tune, dashboard, server, ui, lab, demo, pipeline, schedule, scheduler.

Exit codes: 0 success, 1 the run failed, 2 bad input (config or data) before anything ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import shutil
import signal
import sys
import time

from workbench.config import ConfigError, RunConfig
from workbench.tasks.configure import config_from_params, make_config
from workbench.data.splits import DataError

LOOPBACK_HELP = "bind address (loopback unless --allow-remote)"


def main(argv: list[str] | None = None) -> int:
    from workbench.tuning.space import SearchSpaceError

    command = "workbench"
    try:
        parser = build_parser()  # reads every task's declared options, plugins' included
        args, extra = parser.parse_known_args(argv)
        command = f"workbench {args.command}"
        if extra and not hasattr(args, "model_options"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if extra:
            args.model_options = model_option_flags(extra)
        return args.handler(args)
    except (ConfigError, DataError, SearchSpaceError) as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train one model (through notebooks/train.ipynb by default)",
                                description="Train one model and log it to MLflow.")
    add_config_flags(train)
    train.add_argument("--in-process", action="store_true",
                       help="run the same code in this process, without a notebook")
    train.add_argument("--resume", metavar="RUN_ID",
                       help="continue a killed run from its last finished epoch (config comes from the run)")
    train.add_argument("--cell-timeout", type=int, default=3600, metavar="SECONDS",
                       help="per-cell time limit in the notebook (default 3600)")
    train.set_defaults(handler=cmd_train)

    ui = commands.add_parser("ui", help="MLflow UI over the workbench store",
                             description="Serve the MLflow UI over the workbench tracking store.")
    add_bind_flags(ui, port=5000)
    ui.set_defaults(handler=cmd_ui)

    server = commands.add_parser("server", help="MLflow tracking server on PostgreSQL; this home logs to it",
                                 description="Run an MLflow tracking server (PostgreSQL backend, proxied "
                                             "artifacts, optional basic auth) and make this home log to it.")
    server.add_argument("--backend", metavar="URL", help="postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    server.add_argument("--artifacts", metavar="DIR", help="where the server keeps artifacts "
                        "(default: <home>/server-artifacts)")
    server.add_argument("--auth", action="store_true", help="MLflow basic auth; admin password from "
                        "WORKBENCH_SERVER_PASSWORD, else <home>/server-password, else generated and printed once")
    server.add_argument("--workers", type=int, default=4, help="server worker processes (default 4)")
    server.add_argument("--forget", action="store_true",
                        help="stop logging this home to the recorded server (back to the embedded store)")
    add_bind_flags(server, port=5000)
    server.set_defaults(handler=cmd_server)

    lab = commands.add_parser("lab", help="JupyterLab with the workbench kernel",
                              description="Start JupyterLab (token auth on) with the workbench kernel registered.")
    add_bind_flags(lab, port=8888)
    lab.set_defaults(handler=cmd_lab)

    tune = commands.add_parser("tune", help="tune hyper-parameters with Optuna (through notebooks/tune.ipynb)",
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
                           "(alias 'champion' moves only when the test score improves)")
    tune.add_argument("--in-process", action="store_true", help="run here, without the notebook")
    tune.add_argument("--cell-timeout", type=int, default=24 * 3600, metavar="SECONDS")
    tune.set_defaults(handler=cmd_tune)

    dashboard = commands.add_parser("dashboard", help="optuna-dashboard over the tuning storage",
                                    description="Serve optuna-dashboard over the study storage.")
    dashboard.add_argument("--storage", help="as for `workbench tune` (default: the workbench home)")
    add_bind_flags(dashboard, port=8080)
    dashboard.set_defaults(handler=cmd_dashboard)

    demo = commands.add_parser("demo", help="run the quickstart pipeline on embedded defaults and show where to look",
                               description="Run pipelines/quickstart.yaml: a short training run of every task "
                                           "through the notebooks, then a comparison with the baselines.")
    demo.set_defaults(handler=cmd_demo)

    from workbench.pipelines.cli import add_pipeline_commands

    add_pipeline_commands(commands)  # pipeline run|validate, schedule add|list|remove, scheduler
    return parser


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field and per option a task or model declares; values are parsed
    and checked by make_config. A model function's own options come as --NAME VALUE too."""
    group = parser.add_argument_group("run configuration (see RunConfig)")
    for f in dataclasses.fields(RunConfig):
        if f.name not in RunConfig.field_names():
            continue
        default = f.default if f.default != "" else "task default"
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, metavar=f.name.upper(),
                           help=f"{f.metadata.get('help', '')} (default: {default})")
    group = parser.add_argument_group("options of one task or model (a model function's own: --NAME VALUE)")
    for name, (option, owners) in declared_flags().items():
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar=name.upper(),
                           help=f"{', '.join(owners)}: {option.help} (default: {option.default})")
    parser.set_defaults(model_options={})


def declared_flags() -> dict:
    """Option name -> (option, ["task" or "task/model", ...]) over every registered task."""
    from workbench.tasks import get_task, task_names

    found: dict = {}
    for name in task_names():
        task = get_task(name)
        owned = [(option, name) for option in task.options_for("")]
        owned += [(option, f"{name}/{model}") for model, options in task.model_options.items() for option in options]
        for option, owner in owned:
            found.setdefault(option.name, (option, []))[1].append(owner)
    return found


def model_option_flags(tokens: list[str]) -> dict[str, str]:
    """`--filters 64 --dropout-rate=0.3` -> {"filters": "64", "dropout_rate": "0.3"}; make_config checks them."""
    values, tokens = {}, list(tokens)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--") or len(token) < 3:
            raise ConfigError("arguments", token, "--NAME VALUE pairs (a model function's own options)")
        name, has_value, value = token[2:].partition("=")
        if not has_value:
            if not tokens or tokens[0].startswith("--"):
                raise ConfigError(name.replace("-", "_"), None, "a value after the flag")
            value = tokens.pop(0)
        values[name.replace("-", "_")] = value
    return values


def config_values(args: argparse.Namespace) -> dict:
    """What the config flags gave (fields, declared options, a model function's options)."""
    names = [*RunConfig.field_names(), *declared_flags()]
    return {**{name: getattr(args, name) for name in names if getattr(args, name, None) is not None},
            **args.model_options}


def add_bind_flags(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help=LOOPBACK_HELP)
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port})")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow binding a non-loopback address (anyone who can reach it can use it)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return make_config(config_values(args))


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        config = config_of_run(args.resume, args)
    else:
        config = config_from_args(args)
    return run_training(config, in_process=args.in_process, run_id=args.resume, cell_timeout=args.cell_timeout)


def config_of_run(run_id: str, args: argparse.Namespace) -> RunConfig:
    from workbench.tracking import queries

    params = queries.existing_run_params(run_id, "resume")
    given = {k: v for k, v in vars(args).items() if k in params and v is not None and str(v) != params[k]}
    if given:
        raise ConfigError("resume", run_id, "no other config flags: the config is the run's own "
                          f"(got {', '.join(given)})")
    return config_from_params(params)


def run_training(config: RunConfig, in_process: bool, run_id: str | None = None, cell_timeout: int = 3600) -> int:
    # Stopping a run (the launcher's Stop, Ctrl-C) is SIGINT, which ends it KILLED. A shell that starts
    # a program in the background makes it ignore SIGINT, and its children inherit that: undo it.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if in_process:
        from workbench.runs import train

        try:
            result = train(config, run_id=run_id)
        except (ConfigError, DataError):
            raise
        except Exception as exc:
            print(f"workbench train: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if result.run_id is None:
            print("this worker is not the chief: it trained its share, the chief logs the run")
            return 0
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
        return 1
    return 0 if tracking.run_status(run_id) == "FINISHED" else 1


def print_run_summary(run_id: str) -> None:
    from workbench import tracking

    run = tracking.client().get_run(run_id)
    metrics = run.data.metrics
    shown = [k for k in ("test_accuracy", "test_macro_f1", "test_loss", "baseline_test_accuracy",
                         "train_val_gap_accuracy") if k in metrics]
    print(f"\nrun {run_id}: {run.info.status}")
    for key in shown:
        print(f"  {key:<24} {metrics[key]:.4f}")
    print(f"  tracking store           {tracking.tracking_uri()}")
    print(f"  artifacts                {run.info.artifact_uri}")
    print(f"  open it:                 workbench ui   then  "
          f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run_id}")


def require_loopback(host: str, allow_remote: bool, command: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise ConfigError("host", host, f"a loopback address (127.0.0.1, ::1, localhost): `workbench {command}` "
                          "serves your runs and code without access control; pass --allow-remote to bind "
                          f"{host} anyway")


TUNING_ARGUMENTS = ("trials", "timeout", "study", "storage", "workers", "sampler", "pruner", "search_space", "register")


def tuning_arguments(args: argparse.Namespace) -> dict:
    """`workbench tune` flags as keyword arguments of workbench.tuning.tune."""
    return {**config_values(args), "trials": args.trials, "timeout": args.timeout, "study": args.study, "storage": args.storage,
            "workers": args.workers, "sampler": args.sampler, "pruner": args.pruner,
            "search_space": args.search_space, "register": args.register}


def cmd_tune(args: argparse.Namespace) -> int:
    from workbench.tuning import default_study_name, tune

    arguments = tuning_arguments(args)
    base = make_config({k: v for k, v in arguments.items() if k not in TUNING_ARGUMENTS})
    if args.in_process:
        result = tune(**arguments)
    else:
        result = tune_with_notebook(arguments, base, default_study_name(base), args.cell_timeout)
    if result is None:
        return 1
    print(f"\nstudy {result.study_name}: {result.counts}")
    print(f"  best value  {result.best_value}\n  best params {result.best_params}")
    print(f"  MLflow parent run {result.parent_run_id}; open it with `workbench ui`")
    if result.registration:
        r = result.registration
        print(f"  registered {r.name} version {r.version}: test accuracy {r.test_accuracy:.4f}; "
              + ("now the champion" if r.champion else f"champion stays version {r.previous_champion}"))
    return 0


def tune_with_notebook(arguments: dict, base: RunConfig, default_name: str, cell_timeout: int):
    """Execute notebooks/tune.ipynb; attach it to the study's parent run; return the study's outcome."""
    from workbench import tracking
    from workbench.home import NOTEBOOKS_DIR, executed_notebooks
    from workbench.notebooks import execute, to_html
    from workbench.tuning import TuningResult
    from workbench.tuning.mlflow_bridge import find_parent
    from workbench.tuning.space import load_space
    from workbench.tuning.storage import redacted
    from workbench.tasks import get_task

    load_space(arguments["search_space"], get_task(base.task).search_space(base.model), base)  # fail early
    study_name = arguments["study"] or default_name
    executed = executed_notebooks() / f"tune-{study_name}-{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
    config = {k: v for k, v in arguments.items() if k in base.to_dict()}
    parameters = {**{k: v for k, v in arguments.items() if k not in config}, "study": study_name, "config": config}
    error = execute(NOTEBOOKS_DIR / "tune.ipynb", parameters, executed, cell_timeout)
    parent = find_parent(study_name, redacted(arguments["storage"]), base.experiment)
    if parent and executed.exists():
        tracking.log_artifacts(parent, [p for p in (executed, to_html(executed)) if p], "notebook")
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
    optuna_dashboard.run_server(open_storage(args.storage), host=args.host, port=args.port)
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench import server
    from workbench.home import home

    if args.forget:
        from workbench.tracking.server_record import forget

        return forget()
    require_loopback(args.host, args.allow_remote, "server")
    artifacts = Path(args.artifacts).expanduser().resolve() if args.artifacts else home() / server.ARTIFACTS_DIR
    return server.serve(server.ServerSettings(args.backend, artifacts, args.auth, args.host, args.port,
                                              args.workers))


def cmd_ui(args: argparse.Namespace) -> int:
    from workbench import tracking

    require_loopback(args.host, args.allow_remote, "ui")
    uri = tracking.tracking_uri()
    if uri.startswith(("http://", "https://")):  # a tracking server serves its own UI
        print(f"this home logs to the tracking server {uri}: open its UI there", flush=True)
        return 0
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port)]
    print(f"MLflow UI on http://{args.host}:{args.port} over {uri}", flush=True)
    os.execv(sys.executable, command)


def cmd_lab(args: argparse.Namespace) -> int:
    from workbench.home import PROJECT_ROOT, home
    from workbench.notebooks import ensure_kernel

    require_loopback(args.host, args.allow_remote, "lab")
    ensure_kernel()
    # Kernels start in the notebook's folder: pin the home so their runs land where `workbench ui` looks.
    os.environ["WORKBENCH_HOME"] = str(home())
    jupyter = shutil.which("jupyter", path=os.path.dirname(sys.executable)) or "jupyter"
    command = [jupyter, "lab", f"--ServerApp.ip={args.host}", f"--ServerApp.port={args.port}",
               "--ServerApp.open_browser=False", f"--ServerApp.root_dir={PROJECT_ROOT}"]
    os.execv(jupyter, command)


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench import tracking
    from workbench.home import PROJECT_ROOT

    code = main(["pipeline", "run", str(PROJECT_ROOT / "pipelines" / "quickstart.yaml")])
    print(f"\nlook at the runs: workbench ui   (MLflow UI on http://127.0.0.1:5000 over {tracking.tracking_uri()}; "
          "experiments workbench-pipelines, workbench-images, workbench-text, workbench-speech)")
    return code


if __name__ == "__main__":
    sys.exit(main())
