"""Tracking-server mode: `workbench server` runs an MLflow tracking server on PostgreSQL and
switches the workbench home over to it.

The embedded SQLite store is fine for one process at a time. When several processes write at
once (tuning workers, pipeline steps, people sharing a machine), runs go to `mlflow server`
instead: PostgreSQL holds the runs, the server proxies artifacts into a folder
(`--serve-artifacts`), and with `--auth` MLflow's basic-auth app asks for a user and password.

The home records the server in `<home>/server.json` (URL, backend without its password,
artifact folder, whether auth is on). From then on `workbench.tracking.tracking_uri()` returns
that URL, so `train`, `tune`, pipelines and notebook kernels started from this home log there,
until `workbench server --forget`. A recorded server that does not answer is an error naming both
ways out (start it again, or forget it), never a silent fall-back to the embedded store: that
would split one project's runs over two stores.

With `--auth` the admin password comes from WORKBENCH_SERVER_PASSWORD, else from
`<home>/server-password` (kept from an earlier start), else it is generated and printed once.
It is kept in that file (mode 0600) because MLflow clients authenticate through the
MLFLOW_TRACKING_USERNAME/PASSWORD environment variables: processes of this home get them from
the file when they are not set already.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.config import ConfigError
from workbench.home import home
from workbench.tracking.auth import has_other_password
from workbench.tracking.server_record import ADMIN_USER, PASSWORD_FILE, RECORD_FILE, answers, read_password, record_path

AUTH_CONFIG_FILE = "server-auth.ini"
AUTH_DB_FILE = "server-auth.db"
SECRET_KEY_FILE = "server-secret-key"
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
ARTIFACTS_DIR = "server-artifacts"
PASSWORD_ENV = "WORKBENCH_SERVER_PASSWORD"
MIN_PASSWORD_LENGTH = 12  # MLflow refuses shorter admin passwords
READY_TIMEOUT = 180  # seconds; migrations on a fresh database and a busy machine take a while
STOP_GRACE = 10  # seconds; MLflow's job consumers may ignore SIGTERM, then SIGKILL
BACKEND_FORM = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
# MLflow's server also starts a job runner and seven huey consumers for its GenAI jobs (scorers,
# prompt optimization, trace roll-ups): about 12 s of CPU and eight processes at each start, for
# features no workbench run uses. Off unless the user's environment turns them on.
JOBS_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


@dataclass(frozen=True)
class ServerSettings:
    backend: str
    artifacts: Path
    auth: bool = False
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 4

    @property
    def url(self) -> str:
        """Where clients on this machine reach it (a wildcard bind is reached on loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"


def _write_record(settings: ServerSettings) -> None:
    record = {"url": settings.url, "backend": redacted(settings.backend), "artifacts": str(settings.artifacts),
              "auth": settings.auth, "username": ADMIN_USER if settings.auth else None,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    pending = record_path().with_name(f".{RECORD_FILE}.{os.getpid()}.tmp")  # renamed whole: never half a record
    pending.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(pending, record_path())


# --- checks before anything starts --------------------------------------------------------------

def redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def check_backend(url: str | None) -> None:
    """A PostgreSQL URL that accepts a connection now, or one ConfigError saying why not."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    if not url:
        raise ConfigError("backend", url, f"a PostgreSQL URL: --backend {BACKEND_FORM}")
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError("backend", url, f"a PostgreSQL URL: {BACKEND_FORM}") from None
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError("backend", redacted(url), f"a PostgreSQL URL: {BACKEND_FORM} "
                          "(the embedded SQLite store needs no server)")
    engine = sqlalchemy.create_engine(parsed, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise ConfigError("backend", redacted(url), f"a PostgreSQL database that accepts connections; "
                          f"connecting failed: {reason}") from None
    finally:
        engine.dispose()


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError("port", port, f"a free port on {host} ({exc.strerror})") from None


def check_auth_installed() -> None:
    import importlib.util

    if importlib.util.find_spec("flask_wtf") is None:  # MLflow's basic-auth app needs it
        raise ConfigError("auth", True, "only with MLflow's auth extra installed: pip install 'mlflow[auth]'")


def admin_password() -> tuple[str, bool]:
    """(password, generated): from WORKBENCH_SERVER_PASSWORD, the home's file, or new."""
    stored = home() / PASSWORD_FILE
    password, generated = os.environ.get(PASSWORD_ENV), False
    if password is None and stored.exists():
        password = read_password(stored)
    if password is None:
        password, generated = secrets.token_urlsafe(18), True
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(PASSWORD_ENV, f"<hidden, {len(password)} characters>",
                          f"at least {MIN_PASSWORD_LENGTH} characters (MLflow's rule for the admin password)")
    _check_existing_admin(password)
    _write_private(stored, password)
    return password, generated


def secret_key() -> str:
    """The key MLflow's auth app signs its CSRF tokens with: fixed per home, so restarts keep
    browser sessions valid."""
    path = home() / SECRET_KEY_FILE
    key = os.environ.get(SECRET_KEY_ENV) or (read_password(path) if path.exists() else secrets.token_hex(32))
    _write_private(path, key)
    return key


def _write_private(path: Path, text: str) -> None:
    """Write a secret readable by this user only (created 0600, never world-readable)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")


def _check_existing_admin(password: str) -> None:
    """MLflow sets the admin password only when it creates the user: a different one later
    would lock every client of this home out, so say so before starting."""
    database = home() / AUTH_DB_FILE
    if not database.exists():
        return
    if has_other_password(database, ADMIN_USER, password):
        raise ConfigError(PASSWORD_ENV, "<hidden>",
                          f"the password of the existing admin user in {database} (MLflow sets it once, "
                          "when it creates the user); change it with MLflow's update-password API, "
                          "or delete that file to start the users over")


def _write_auth_config() -> Path:
    """MLflow's basic-auth settings: users in a SQLite file in the home; the admin password is
    handed over in the environment, never written here."""
    path = home() / AUTH_CONFIG_FILE
    path.write_text("[mlflow]\n"
                    "default_permission = READ\n"
                    f"database_uri = sqlite:///{home() / AUTH_DB_FILE}\n"
                    f"admin_username = {ADMIN_USER}\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                    # Checking a password (PBKDF2) on every request slows training that logs
                    # each epoch; a minute of cache per worker delays password changes as long.
                    "auth_cache_ttl_seconds = 60\n")
    database = home() / AUTH_DB_FILE  # password hashes: created private before MLflow fills it
    if not database.exists():
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    return path


# --- running it ---------------------------------------------------------------------------------

def serve(settings: ServerSettings) -> int:
    """Check everything, start `mlflow server` in its own process group, record it once it
    answers, and stop the whole group on SIGTERM/SIGINT. Returns the exit code."""
    check_backend(settings.backend)
    check_port_free(settings.host, settings.port)
    settings.artifacts.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The backend URI holds the database password: it goes through the environment, not argv (`ps`).
    command = [sys.executable, "-m", "mlflow", "server",
               "--serve-artifacts", "--artifacts-destination", str(settings.artifacts),
               "--host", settings.host, "--port", str(settings.port), "--workers", str(settings.workers)]
    env = mlflow_server_environment({"MLFLOW_BACKEND_STORE_URI": settings.backend})
    password, generated = None, False
    if settings.auth:
        check_auth_installed()
        password, generated = admin_password()
        command += ["--app-name", "basic-auth"]
        env.update({"MLFLOW_AUTH_CONFIG_PATH": str(_write_auth_config()), SECRET_KEY_ENV: secret_key(),
                    "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN_USER, "MLFLOW_AUTH_ADMIN_PASSWORD": password})

    # A session of its own: `mlflow server` starts workers (and job runners, if on); one signal to the
    # group stops them all, and a Ctrl-C in the terminal reaches only this process.
    process = subprocess.Popen(command, env=env, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not _wait_until_ready(settings.url, process):
            print(f"workbench server: mlflow server did not come up on {settings.url} "
                  "(its output is above)", file=sys.stderr)
            return 1
        _write_record(settings)
        _announce(settings, password if generated else None)
        code = process.wait()
        print(f"workbench server: mlflow server exited with code {code}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nworkbench server: stopping", flush=True)
        return 0
    finally:
        stop_group(process)
        signal.signal(signal.SIGTERM, previous)


def mlflow_server_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an `mlflow server` or `mlflow ui` process: this one's, MLflow's job
    runners off unless set here, and `extra`."""
    return {JOBS_ENV: "false", **os.environ, **(extra or {})}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _wait_until_ready(url: str, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if answers(url, timeout=2):
            return True
        time.sleep(0.5)
    return False


def _announce(settings: ServerSettings, new_password: str | None) -> None:
    print(f"MLflow tracking server on {settings.url}", flush=True)
    print(f"  backend    {redacted(settings.backend)}")
    print(f"  artifacts  {settings.artifacts} (proxied: clients need no access to this folder)")
    if settings.auth:
        print(f"  auth       on: user {ADMIN_USER}, password in {home() / PASSWORD_FILE} (mode 0600)")
        if new_password:
            print(f"  generated admin password (shown once): {new_password}")
    print(f"this home ({home()}) now logs to it; other machines: export MLFLOW_TRACKING_URI={settings.url}"
          + (" MLFLOW_TRACKING_USERNAME=... MLFLOW_TRACKING_PASSWORD=..." if settings.auth else ""))
    _print_views(settings.url)
    print("stop with Ctrl-C; `workbench server --forget` goes back to the embedded store", flush=True)


def _print_views(url: str) -> None:
    """Each experiment's training-runs link on the server (this home now logs to it)."""
    from workbench.tracking import links

    try:
        links.print_training_views(url)
    except Exception as exc:  # the links are a convenience: the server is up regardless
        print(f"  training runs of an experiment: {url}/#/experiments/ID/runs?{links.RUNS_VIEW} "
              f"(could not list the experiments: {type(exc).__name__})")


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL to whatever is left after a grace period."""
    group = process.pid
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()
            if not _group_alive(group):
                return
            time.sleep(0.2)
    process.poll()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
