"""The MLflow UI that `workbench ui` serves, driven in Debian chromium over a home with one real
training run (digits, through the notebook): the runs table shows its test accuracy, the
confusion matrix renders, and the executed notebook's HTML renders in the artifact viewer.

Screenshots go to test-artifacts/browser-mlflow/ (git-ignored)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, VENV_BIN, _free_port

pytestmark = pytest.mark.slow

SCREENSHOTS = ROOT / "test-artifacts" / "browser-mlflow"
READY_TIMEOUT = 300  # seconds; the machine is shared and the UI starts several processes
PAGE_TIMEOUT = 180_000  # milliseconds for the single-page app's first render


class UI:
    def __init__(self, url: str, experiment_id: str, run, printed: str, opened: Path, pid: int):
        self.url, self.experiment_id, self.run, self.printed = url, experiment_id, run, printed
        self.pid = pid  # `workbench ui`, which became MLflow's UI server
        self.opened = opened  # where the BROWSER command that `--open` calls writes the address it was given

    def printed_link(self, label: str) -> str:
        """The link `workbench ui` printed after `label` for the images experiment."""
        lines = self.printed.splitlines()
        start = next(i for i, line in enumerate(lines) if "workbench-images:" in line)
        return next(line.split(label, 1)[1].strip() for line in lines[start:start + 2] if label in line)

    @contextmanager
    def page(self, browser, route: str, screenshot: str):
        """A page on an experiment route; its screenshot is saved however the test ends."""
        page = browser.new_page(viewport={"width": 1920, "height": 1000})
        page.set_default_timeout(PAGE_TIMEOUT)
        try:
            page.goto(f"{self.url}/#/experiments/{self.experiment_id}{route}", wait_until="domcontentloaded")
            yield page
        finally:
            page.screenshot(path=str(SCREENSHOTS / screenshot))
            page.close()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`workbench ui` on a free loopback port over a home holding one notebook training run."""
    from mlflow.tracking import MlflowClient

    home = tmp_path_factory.mktemp("ui") / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    env.update(WORKBENCH_HOME=str(home), PATH=f"{VENV_BIN}{os.pathsep}{env['PATH']}")
    trained = subprocess.run([sys.executable, "-m", "workbench", "train", "--task", "images", "--dataset", "digits",
                              "--model", "mlp", "--epochs", "25"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=1200)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{home}/mlflow.db")
    experiment = client.get_experiment_by_name("workbench-images")
    (run,) = client.search_runs([experiment.experiment_id])

    port = _free_port()
    log = home / "ui.log"
    # `--open` hands its link to Python's webbrowser, which runs the command in BROWSER with it.
    opened, browser_command = home / "opened.txt", home / "browser.sh"
    browser_command.write_text(f'#!/bin/sh\nprintf %s "$1" > {shlex.quote(str(opened))}.part && '
                               f'mv {shlex.quote(str(opened))}.part {shlex.quote(str(opened))}\n')
    browser_command.chmod(0o755)
    with log.open("w") as out:
        # Its own session: the UI runs MLflow's server, which starts workers.
        process = subprocess.Popen([sys.executable, "-m", "workbench", "ui", "--port", str(port), "--open"],
                                   cwd=ROOT, env={**env, "MLFLOW_WORKERS": "2", "BROWSER": str(browser_command)},
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_health(f"http://127.0.0.1:{port}", process, log)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        yield UI(f"http://127.0.0.1:{port}", experiment.experiment_id, run, log.read_text(), opened, process.pid)
    finally:
        _stop_group(process)


def _wait_for_health(url: str, process: subprocess.Popen, log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        assert process.poll() is None, f"workbench ui exited {process.returncode}:\n{log.read_text()[-3000:]}"
        try:
            urllib.request.urlopen(f"{url}/health", timeout=5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"workbench ui not ready:\n{log.read_text()[-3000:]}"
            time.sleep(1)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the UI's process group; SIGKILL to what is still there after a grace period."""
    members = [process.pid] + [p.pid for p in psutil.Process(process.pid).children(recursive=True)] \
        if process.poll() is None else []
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(members, process):
            time.sleep(0.2)
        if not _alive(members, process):
            break
    assert not _alive(members, process), "workbench ui left processes behind"


def _alive(pids: list[int], process: subprocess.Popen) -> bool:
    process.poll()  # reap our own child
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            pass
    return False


def test_runs_table_lists_the_run_with_its_test_accuracy(ui, browser):
    # The model-training view of the runs table.
    with ui.page(browser, "/runs?workflowType=machine_learning", "runs-table.png") as page:
        page.get_by_text(ui.run.info.run_name, exact=True).first.wait_for()
        # Metric columns are opt-in in MLflow 3: add test_accuracy through the column selector.
        page.get_by_role("button", name="Columns").click()
        page.get_by_placeholder("Search columns").fill("test_accuracy")
        tree = page.get_by_test_id("column-selector-tree")
        tree.locator("span", has_text=re.compile(r"^test_accuracy$")).last.click()
        page.keyboard.press("Escape")
        header = page.locator("[role=columnheader][col-id]").filter(
            has=page.get_by_text("test_accuracy", exact=True)).first
        header.wait_for()
        cell = page.locator(f'[role=gridcell][col-id="{header.get_attribute("col-id")}"]').first
        cell.wait_for()
        assert float(cell.inner_text()) == pytest.approx(ui.run.data.metrics["test_accuracy"], abs=1e-4)


def test_run_artifacts_show_the_confusion_matrix_image(ui, browser):
    route = f"/runs/{ui.run.info.run_id}/artifacts/figures/confusion_matrix.png"
    with ui.page(browser, route, "confusion-matrix.png") as page:
        page.get_by_text("figures/confusion_matrix.png", exact=True).first.wait_for()
        # The viewer fetches the file and shows it as an <img> from a blob URL: it must have decoded.
        page.wait_for_function("() => [...document.images].some(i => i.src.startsWith('blob:') && i.complete "
                               "&& i.naturalWidth > 0)", timeout=PAGE_TIMEOUT)
        width = page.evaluate("() => Math.max(...[...document.images].filter(i => i.src.startsWith('blob:'))"
                              ".map(i => i.naturalWidth))")
        assert width >= 300  # the logged figure, not an icon


def test_executed_notebook_html_renders_in_the_artifact_viewer(ui, browser):
    run_id = ui.run.info.run_id
    with ui.page(browser, f"/runs/{run_id}/artifacts/notebook/train-{run_id}.html", "executed-notebook.png") as page:
        notebook = page.frame_locator("iframe").first
        notebook.get_by_role("heading", name=re.compile(r"^Train one model")).wait_for()  # name ends with ¶
        # The executed copy: papermill's injected parameters carry this run's id.
        assert run_id in notebook.locator("body").inner_text()


def test_the_printed_link_opens_the_training_runs_with_the_key_metrics_as_columns(ui, browser):
    link = ui.printed_link("training runs")
    assert link.startswith(f"{ui.url}/#/experiments/{ui.experiment_id}/runs?workflowType=machine_learning")
    page = browser.new_page(viewport={"width": 1920, "height": 1000})
    page.set_default_timeout(PAGE_TIMEOUT)
    try:
        page.goto(link, wait_until="domcontentloaded")
        page.get_by_text(ui.run.info.run_name, exact=True).first.wait_for()  # the runs table, not GenAI's overview
        for metric in ("test_accuracy", "baseline_test_accuracy", "best_val_accuracy"):  # no column chosen by hand
            header = page.locator("[role=columnheader][col-id]").filter(
                has=page.get_by_text(metric, exact=True)).first
            header.wait_for()
            cell = page.locator(f'[role=gridcell][col-id="{header.get_attribute("col-id")}"]').first
            assert float(cell.inner_text()) == pytest.approx(ui.run.data.metrics[metric], abs=1e-4)
    finally:
        page.screenshot(path=str(SCREENSHOTS / "printed-link.png"))
        page.close()


def test_open_hands_the_printed_training_runs_link_to_the_browser(ui):
    deadline = time.monotonic() + 60  # the opener waits for the UI's health check, then calls the browser
    while not ui.opened.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ui.opened.exists(), "workbench ui --open never called the browser"
    assert ui.opened.read_text() == ui.printed_link("training runs")


def test_the_run_names_its_notebook_as_source(ui):
    assert ui.run.data.tags["mlflow.source.name"] == "notebooks/train.ipynb"
    assert ui.run.data.tags["mlflow.source.type"] == "NOTEBOOK"


def test_the_system_metrics_tab_shows_cpu_and_memory_series(ui, browser):
    with ui.page(browser, f"/runs/{ui.run.info.run_id}/system-metrics", "system-metrics.png") as page:
        for series in ("cpu_utilization_percentage", "system_memory_usage_megabytes"):
            page.get_by_text(series).first.wait_for()
        page.wait_for_function("() => document.querySelectorAll('svg path, canvas').length > 0", timeout=PAGE_TIMEOUT)


def test_the_ui_runs_no_mlflow_job_runners(ui):
    """MLflow's GenAI job runners (huey consumers) are off: the UI is MLflow's server and its workers."""
    running = []
    for child in psutil.Process(ui.pid).children(recursive=True):
        try:
            running.append(" ".join(child.cmdline()))
        except (psutil.ZombieProcess, psutil.NoSuchProcess):  # ended meanwhile (the --open helper)
            pass
    assert running and not [a for a in running if "huey" in a or "_job_runner" in a], running
