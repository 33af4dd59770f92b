"""Shared test helpers: an isolated workbench home per test, the CLI as a subprocess, MLflow read-back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# The fast layer (`make test-pure`): config, options, floors, pipeline spec and references, search
# spaces, cron. No training and no notebook kernel: the whole layer runs in well under a minute.
PURE_FILES = {"test_config.py", "test_options.py", "test_floors.py", "test_spec.py",
              "test_cron.py", "test_space.py", "test_statistics.py"}


# Seconds each of the slowest test files took in one run over two workers (pytest --durations).
# Only an ordering hint: with `--dist loadfile --no-loadscope-reorder` (make test) the longest files
# start first, so that
# the run does not end with one worker still busy on a long file while the other waits. A file
# missing here starts after these.
FILE_SECONDS = {"test_studies.py": 205, "test_stops.py": 167, "test_reruns.py": 138, "test_server.py": 125,
                "test_traffic.py": 114, "test_seeds.py": 96, "test_user_model.py": 89, "test_runner.py": 86,
                "test_driving.py": 80, "test_launcher.py": 69, "test_diff.py": 68,
                "test_sequence_tasks_notebook.py": 66, "test_text_real.py": 58, "test_distribute.py": 57,
                "test_training.py": 54, "test_gan.py": 54, "test_browser_mlflow.py": 44, "test_browser_lab.py": 43,
                "test_demo_results.py": 42, "test_resume.py": 34, "test_schedules.py": 30, "test_interpret.py": 30}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in PURE_FILES:
            item.add_marker(pytest.mark.pure)
    # longest files first; a file's tests stay together and in order (module fixtures are made once)
    items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, 0))


def use_home(patch: pytest.MonkeyPatch, path: Path) -> Path:
    """Point this process and the commands it starts at the workbench home `path`."""
    patch.setenv("WORKBENCH_HOME", str(path))
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    patch.delenv("MLFLOW_RUN_ID", raising=False)
    patch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    return use_home(monkeypatch, tmp_path / "home")


def run_cli(*args: str, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """`workbench ARGS` in a fresh process, as a user would type it."""
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def client(home: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{home}/mlflow.db")


def all_runs(home: Path) -> list:
    if not (home / "mlflow.db").exists():
        return []
    c = client(home)
    experiments = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(experiments) if experiments else []


def artifact_paths(home: Path, run_id: str, path: str = "") -> set[str]:
    """Every artifact file of a run, recursively."""
    c = client(home)
    found = set()
    for item in c.list_artifacts(run_id, path):
        if item.is_dir:
            found |= artifact_paths(home, run_id, item.path)
        else:
            found.add(item.path)
    return found


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A class-per-folder image tree: dark squares vs bright squares, 15 PNGs each."""
    from PIL import Image

    root = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for label, base in (("dark", 40), ("bright", 200)):
        (root / label).mkdir(parents=True)
        for i in range(15):
            pixels = np.clip(base + rng.normal(0, 20, (20, 20, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A throw-away PostgreSQL server on 127.0.0.1 (Debian `postgresql`), stopped after the session.

    Yields a function that creates a fresh database and returns its URL."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("PostgreSQL server not installed (sudo apt-get install postgresql)")
    sys.path.append(str(ROOT / "bench"))
    from local_postgres import local_postgres

    with local_postgres(durable=False) as create_database:
        yield create_database


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (no browser download: `executable_path`)."""
    import shutil

    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.fail("Debian chromium is needed for the browser tests: sudo apt-get install chromium "
                    "(make setup installs it when run as root)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
