"""`workbench ui`, `workbench server` and `workbench lab`: the servers a user opens in a browser."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from workbench.cli.flags import add_bind_flags, require_loopback
from workbench.errors import ConfigError


def add_commands(subparsers) -> None:
    ui = subparsers.add_parser("ui", help="MLflow UI over the workbench store",
                               description="Serve the MLflow UI over the workbench tracking store.")
    add_bind_flags(ui, port=5000)
    ui.add_argument("--open", action="store_true", help="open the training-runs view in a browser once it answers")
    ui.set_defaults(handler=cmd_ui)

    server = subparsers.add_parser("server", help="MLflow tracking server on PostgreSQL; this home logs to it",
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

    lab = subparsers.add_parser("lab", help="JupyterLab with the workbench kernel",
                                description="Start JupyterLab (token auth on) with the workbench kernel registered.")
    add_bind_flags(lab, port=8888)
    lab.add_argument("--root", metavar="DIR", help="the folder JupyterLab shows (default: the project)")
    lab.set_defaults(handler=cmd_lab)


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
    from workbench.server import mlflow_server_environment
    from workbench.tracking import links

    require_loopback(args.host, args.allow_remote, "ui")
    uri = tracking.tracking_uri()
    if uri.startswith(("http://", "https://")):  # a tracking server serves its own UI
        print(f"this home logs to the tracking server {uri}: open its UI there", flush=True)
        links.print_training_views(uri)
        return 0
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(args.host, args.host)
    base = f"http://[{host}]:{args.port}" if ":" in host else f"http://{host}:{args.port}"
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port)]
    print(f"MLflow UI on {base} over {uri}", flush=True)
    first = links.print_training_views(base)
    if args.open:
        open_when_ready(base, first or base)
    os.execve(sys.executable, command, mlflow_server_environment())


def open_when_ready(base: str, url: str) -> None:
    """A detached helper that opens `url` in the browser once the UI answers (this process becomes the UI)."""
    import subprocess

    script = ("import time, urllib.request, webbrowser\n"
              "for _ in range(300):\n"
              "    try:\n"
              f"        urllib.request.urlopen({base + '/health'!r}, timeout=2).close(); break\n"
              "    except OSError:\n"
              "        time.sleep(1)\n"
              f"webbrowser.open({url!r})\n")
    subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cmd_lab(args: argparse.Namespace) -> int:
    from workbench.home import PROJECT_ROOT, home
    from workbench.notebooks import ensure_kernel

    require_loopback(args.host, args.allow_remote, "lab")
    ensure_kernel()
    # Kernels start in the notebook's folder: pin the home so their runs land where `workbench ui` looks.
    os.environ["WORKBENCH_HOME"] = str(home())
    jupyter = shutil.which("jupyter", path=os.path.dirname(sys.executable)) or "jupyter"
    root = os.path.abspath(args.root) if args.root else str(PROJECT_ROOT)
    if not os.path.isdir(root):
        raise ConfigError("root", args.root, "an existing folder")
    command = [jupyter, "lab", f"--ServerApp.ip={args.host}", f"--ServerApp.port={args.port}",
               "--ServerApp.open_browser=False", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses that unless told
        print("workbench lab: running as root, so JupyterLab starts with --allow-root", flush=True)
        command.append("--allow-root")
    os.execv(jupyter, command)
