"""`workbench server`: an MLflow tracking server on PostgreSQL that the home logs to (two
trainings at once, proxied artifacts, basic auth, forget), bad backends, and the loopback rule
of `server`, `ui` and `lab`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
import requests
from conftest import ROOT, _free_port, run_cli

READY_TIMEOUT = 300  # seconds: the server's first start creates its tables; the machine is shared
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"
PASSWORD = "correct-horse-battery"
EPOCHS = 2


class Server:
    """A `workbench server` process started by a test, and everything it started."""

    def __init__(self, process: subprocess.Popen, url: str, log: Path):
        self.process, self.url, self.log = process, url, log
        self.descendants = psutil.Process(process.pid).children(recursive=True)

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        """SIGTERM to `workbench server` only: it must stop the whole MLflow process group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def leftovers(self) -> list[psutil.Process]:
        alive = []
        for child in self.descendants:
            try:
                if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                    alive.append(child)
            except psutil.NoSuchProcess:
                pass
        return alive


@pytest.fixture
def start_server(home, tmp_path):
    """start(backend, *flags, env=...) -> a ready Server; every one is stopped afterwards, and
    anything it left behind is killed (and fails the test that checks for it)."""
    started: list[Server] = []

    def start(backend: str, *flags: str, env: dict | None = None) -> Server:
        port = _free_port()
        log = tmp_path / f"server-{port}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "workbench", "server", "--backend", backend, "--port", str(port),
                 "--workers", "2", *flags],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while "now logs to it" not in log.read_text():  # printed once the server answers and is recorded
            assert process.poll() is None, f"workbench server exited {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"workbench server not ready:\n{log.read_text()}"
            time.sleep(0.5)
        server = Server(process, f"http://127.0.0.1:{port}", log)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        for process in server.leftovers():
            process.kill()


def train_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "workbench", "train", "--task", "images", "--dataset", "digits", "--model", "mlp",
            "--epochs", str(EPOCHS), "--batch-size", "128", "--in-process", *extra]


def in_home(code: str) -> subprocess.CompletedProcess:
    """Python in a fresh process of this home, without any MLflow credentials in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=env)


def _argv(process) -> list[str]:
    """A process's argv; one that ended meanwhile (a zombie, or reaped) shows nothing any more."""
    import psutil

    try:
        return process.cmdline()
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return []


@pytest.mark.slow
def test_two_trainings_at_once_log_complete_runs_through_the_server(home, postgres_server, start_server, tmp_path):
    from mlflow.tracking import MlflowClient

    backend = postgres_server("tracking_pair")
    server = start_server(backend)
    record = json.loads((home / "server.json").read_text())
    assert record["url"] == server.url and record["auth"] is False
    # The backend URI (a database password in real use) is in no process's argv, for `ps` to show.
    assert server.descendants and all(backend not in " ".join(_argv(p)) for p in server.descendants)
    assert (home.stat().st_mode & 0o777) == 0o700 and ((home / "server-artifacts").stat().st_mode & 0o777) == 0o700

    workers = [subprocess.Popen(train_command("--seed", str(seed)), cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for seed in (1, 2)]
    outputs = [worker.communicate(timeout=1200)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
        assert f"tracking store           {server.url}" in output

    # MLflow's GenAI job runners (huey consumers) stay off: the server is MLflow's server and its workers.
    running = [" ".join(_argv(p)) for p in psutil.Process(server.process.pid).children(recursive=True)]
    assert running and not [a for a in running if "huey" in a or "_job_runner" in a], running

    c = MlflowClient(server.url)
    experiment = c.get_experiment_by_name("workbench-images")
    runs = c.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and {r.data.params["seed"] for r in runs} == {"1", "2"}
    per_epoch = {key for run in runs for key in run.data.metrics  # system/* are samples in time, not epochs
                 if not key.startswith("system/") and len(c.get_metric_history(run.info.run_id, key)) > 1}
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "epoch_seconds"} <= per_epoch
    for run in runs:
        assert run.info.status == "FINISHED"
        assert "test_accuracy" in run.data.metrics
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
        for key in per_epoch:
            steps = sorted(m.step for m in c.get_metric_history(run.info.run_id, key))
            assert steps == list(range(EPOCHS)), (run.info.run_id, key, steps)
        figures = {a.path for a in c.list_artifacts(run.info.run_id, "figures")}
        assert "figures/confusion_matrix.png" in figures
        # The Keras model is an MLflow logged model of the run; read it back through the proxy.
        models = [m for m in c.search_logged_models([experiment.experiment_id])
                  if m.source_run_id == run.info.run_id]
        assert len(models) == 1
        assert "MLmodel" in {a.path for a in c.list_logged_model_artifacts(models[0].model_id)}
        folder = tmp_path / run.info.run_id
        folder.mkdir()
        local = Path(c.download_artifacts(run.info.run_id, "figures/confusion_matrix.png", str(folder)))
        assert local.read_bytes().startswith(b"\x89PNG")
    stored = {p.name for p in (home / "server-artifacts").rglob("*")}
    assert "MLmodel" in stored and "confusion_matrix.png" in stored
    assert not (home / "mlflow.db").exists()  # nothing went to the embedded store

    # The UI of this home is the server's own.
    ui = run_cli("ui", "--port", str(_free_port()), timeout=120)
    link = f"/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert ui.returncode == 0 and f"workbench-images: training runs  {server.url}{link}" in ui.stdout

    server.stop()
    assert server.leftovers() == []
    # Started again over the same database, the server itself prints each experiment's link.
    again = start_server(backend)
    deadline = time.monotonic() + 60
    while "training runs" not in again.log.read_text():
        assert time.monotonic() < deadline, again.log.read_text()
        time.sleep(0.5)
    assert f"workbench-images: training runs  {again.url}{link}" in again.log.read_text()


@pytest.mark.slow
def test_auth_server_refuses_anonymous_requests_and_the_home_logs_in(home, postgres_server, start_server,
                                                                      monkeypatch):
    for name in ("WORKBENCH_SERVER_PASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    backend = postgres_server("tracking_auth")
    server = start_server(backend, "--auth")

    output = server.output()
    assert "generated admin password (shown once): " in output
    password = output.split("generated admin password (shown once): ")[1].split()[0]
    password_file = home / "server-password"
    assert password_file.read_text().strip() == password
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert (home / "server-auth.db").stat().st_mode & 0o077 == 0
    record = (home / "server.json").read_text()
    assert json.loads(record)["auth"] is True and password not in record

    assert requests.get(server.url + SEARCH, timeout=60).status_code == 401
    assert requests.get(server.url + SEARCH, auth=("admin", "not-the-password"), timeout=60).status_code == 401
    assert requests.get(server.url + SEARCH, auth=("admin", password), timeout=60).status_code == 200

    # A process of this home logs in with the stored password (MLFLOW_TRACKING_* taken from the home).
    client_code = ("from workbench import tracking\n"
                   "print(tracking.tracking_uri())\n"
                   "print(tracking.experiment_id('workbench-auth-check'))\n")
    logged_in = in_home(client_code)
    assert logged_in.returncode == 0, logged_in.stderr[-2000:]
    assert logged_in.stdout.splitlines()[0] == server.url

    # Stopping `workbench server` stops every process it started.
    server.stop()
    assert server.process.returncode == 0
    assert server.leftovers() == []

    # The home still points at the stopped server: one clear error, no silent fall-back.
    down = run_cli("train", "--task", "images", "--dataset", "digits", "--epochs", "1", timeout=300)
    assert down.returncode == 2, down.stderr[-2000:]
    assert server.url in down.stderr and "workbench server --forget" in down.stderr
    assert not (home / "mlflow.db").exists()

    # A restart keeps the password (printed only the first time) and the users.
    again = start_server(backend, "--auth")
    assert "generated admin password" not in again.output()
    assert requests.get(again.url + SEARCH, auth=("admin", password), timeout=60).status_code == 200
    again.stop()

    # A different WORKBENCH_SERVER_PASSWORD would lock this home's clients out: refused before starting.
    changed = run_cli("server", "--backend", backend, "--auth", "--port", str(_free_port()),
                      env={"WORKBENCH_SERVER_PASSWORD": "another-long-password"}, timeout=120)
    assert changed.returncode == 2 and "existing admin user" in changed.stderr

    forgotten = run_cli("server", "--forget", timeout=60)
    assert forgotten.returncode == 0 and not (home / "server.json").exists()
    embedded = in_home("from workbench import tracking; print(tracking.tracking_uri())")
    assert embedded.stdout.strip() == f"sqlite:///{home / 'mlflow.db'}"


def test_tracking_uri_environment_wins_over_the_recorded_server(home, monkeypatch):
    from workbench import tracking

    home.mkdir(parents=True, exist_ok=True)
    (home / "server.json").write_text(json.dumps({"url": f"http://127.0.0.1:{_free_port()}", "auth": False}))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking.tracking_uri() == "http://tracking.example:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    from workbench.config import ConfigError

    with pytest.raises(ConfigError, match="workbench server --forget"):
        tracking.tracking_uri()  # recorded, but nothing answers there


@pytest.mark.parametrize("backend, message", [
    ("sqlite:///runs.db", "a PostgreSQL URL"),
    ("not a url", "a PostgreSQL URL"),
    ("postgresql://postgres@127.0.0.1:{closed}/runs", "Connection refused"),
    ("postgresql://postgres@127.0.0.1:{pg}/no_such_database", 'database "no_such_database" does not exist'),
])
def test_bad_backend_is_one_clear_error_and_starts_nothing(home, postgres_server, backend, message):
    pg_port = urlparse(postgres_server("tracking_probe")).port if "{pg}" in backend else None
    port = _free_port()
    result = run_cli("server", "--backend", backend.format(closed=_free_port(), pg=pg_port), "--port", str(port),
                     timeout=120)
    assert result.returncode == 2, result.stderr
    assert "invalid value for 'backend'" in result.stderr and message in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert not (home / "server.json").exists()
    assert not _listening(port)


def test_short_admin_password_is_refused(home, postgres_server):
    result = run_cli("server", "--backend", postgres_server("tracking_short"), "--auth",
                     "--port", str(_free_port()), env={"WORKBENCH_SERVER_PASSWORD": "short"}, timeout=120)
    assert result.returncode == 2 and "at least 12 characters" in result.stderr
    assert "short" not in result.stderr.replace("WORKBENCH_SERVER_PASSWORD", "")  # never echoed
    assert not (home / "server.json").exists()


@pytest.mark.parametrize("command", [["server", "--backend", "postgresql://u@127.0.0.1/db"], ["ui"], ["lab"]])
def test_non_loopback_address_is_refused_without_allow_remote(home, command):
    port = _free_port()
    result = run_cli(*command, "--host", "0.0.0.0", "--port", str(port), timeout=120)  # returns: nothing started
    assert result.returncode == 2
    assert "invalid value for 'host': '0.0.0.0'" in result.stderr and "--allow-remote" in result.stderr
    assert not _listening(port)
    assert not (home / "server.json").exists()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
