"""The `workbench` command: train, ui, lab, demo.

Exit codes: 0 success, 1 the run failed, 2 bad input (config or data) before anything ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import shutil
import sys

from workbench.config import ConfigError, RunConfig
from workbench.data.splits import DataError

LOOPBACK_HELP = "bind address (loopback unless --allow-remote)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, DataError) as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
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

    lab = commands.add_parser("lab", help="JupyterLab with the workbench kernel",
                              description="Start JupyterLab (token auth on) with the workbench kernel registered.")
    add_bind_flags(lab, port=8888)
    lab.set_defaults(handler=cmd_lab)

    demo = commands.add_parser("demo", help="train on real data with embedded defaults and show where to look",
                               description="Train the default image model on Fashion-MNIST (digits when "
                                           "Fashion-MNIST is not installed) through the notebook path.")
    demo.add_argument("--epochs", type=int, default=2, help="epochs for the demo run (default 2)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field; values are parsed and checked by RunConfig itself."""
    group = parser.add_argument_group("run configuration (see RunConfig)")
    for f in dataclasses.fields(RunConfig):
        default = f.default if f.default != "" else "task default"
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, metavar=f.name.upper(),
                           help=f"{f.metadata.get('help', '')} (default: {default})")


def add_bind_flags(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help=LOOPBACK_HELP)
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port})")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow binding a non-loopback address (anyone who can reach it can use it)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    values = {name: getattr(args, name) for name in RunConfig.field_names() if getattr(args, name) is not None}
    return RunConfig.from_dict(values)


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        config = config_of_run(args.resume, args)
    else:
        config = config_from_args(args)
    return run_training(config, in_process=args.in_process, run_id=args.resume, cell_timeout=args.cell_timeout)


def config_of_run(run_id: str, args: argparse.Namespace) -> RunConfig:
    from mlflow.exceptions import MlflowException

    from workbench import tracking

    try:
        params = tracking.client().get_run(run_id).data.params
    except MlflowException:
        raise ConfigError("resume", run_id, "the id of a run in the tracking store "
                          f"({tracking.tracking_uri()})") from None
    given = {k: v for k, v in vars(args).items() if k in params and v is not None and str(v) != params[k]}
    if given:
        raise ConfigError("resume", run_id, "no other config flags: the config is the run's own "
                          f"(got {', '.join(given)})")
    return RunConfig.from_dict({k: v for k, v in params.items() if k in RunConfig.field_names()})


def run_training(config: RunConfig, in_process: bool, run_id: str | None = None, cell_timeout: int = 3600) -> int:
    from workbench import tracking

    if in_process:
        from workbench.runs import train

        try:
            result = train(config, run_id=run_id)
        except (ConfigError, DataError):
            raise
        except Exception as exc:
            print(f"workbench train: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        run_id, error = result.run_id, None
    else:
        from workbench.notebooks import train_with_notebook

        outcome = train_with_notebook(config, run_id=run_id, cell_timeout=cell_timeout)
        run_id, error = outcome.run_id, outcome.error
        if outcome.executed.exists():
            print(f"executed notebook: {outcome.executed}")
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


def cmd_ui(args: argparse.Namespace) -> int:
    from workbench import tracking

    require_loopback(args.host, args.allow_remote, "ui")
    uri = tracking.tracking_uri()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port)]
    print(f"MLflow UI on http://{args.host}:{args.port} over {uri}", flush=True)
    os.execv(sys.executable, command)


def cmd_lab(args: argparse.Namespace) -> int:
    from workbench.home import PROJECT_ROOT
    from workbench.notebooks import ensure_kernel

    require_loopback(args.host, args.allow_remote, "lab")
    ensure_kernel()
    jupyter = shutil.which("jupyter", path=os.path.dirname(sys.executable)) or "jupyter"
    command = [jupyter, "lab", f"--ServerApp.ip={args.host}", f"--ServerApp.port={args.port}",
               "--ServerApp.open_browser=False", f"--ServerApp.root_dir={PROJECT_ROOT}"]
    os.execv(jupyter, command)


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.data.images import FASHION_FILES, fashion_mnist_dirs

    have_fashion = any(all((d / f).exists() for f in FASHION_FILES.values()) for d in fashion_mnist_dirs())
    dataset = "fashion-mnist" if have_fashion else "digits"
    if not have_fashion:
        print("Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist); "
              "the demo uses the bundled digits instead.")
    config = RunConfig.from_dict(task="images", dataset=dataset, model="cnn", epochs=args.epochs)
    print(f"demo: training images/{dataset}/cnn for {config.epochs} epochs through notebooks/train.ipynb")
    return run_training(config, in_process=False)


if __name__ == "__main__":
    sys.exit(main())
