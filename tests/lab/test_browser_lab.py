"""JupyterLab in a real browser: explore.ipynb runs on the workbench kernel, the launcher renders, and a
run started from the widget ends FINISHED in the tracking store."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import psutil
import pytest

from conftest import ROOT, VENV_BIN, _free_port, all_runs, client

ARTIFACTS = ROOT / "test-artifacts"  # git-ignored; screenshots to look at when this test fails
TOKEN = "workbench-browser-test"
QUIET_SETTINGS = {  # no news or update popups over the notebook, and no autosave
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


@pytest.fixture
def lab(home, tmp_path):
    """JupyterLab on 127.0.0.1 over a copy of explore.ipynb; the kernel gets WORKBENCH_HOME=home."""
    from workbench.notebooks import ensure_kernel

    ensure_kernel()
    # Create the tracking store now: two processes creating one SQLite store at once can collide
    # (the kernel on Start, this test while it polls).
    client(home).search_experiments()
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "explore.ipynb", root)
    settings = tmp_path / "lab-settings"
    for name, values in QUIET_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "lab-runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "lab-config")}
    # The token comes from Jupyter's own config folder, as a user's would; the rest is `workbench lab`.
    (tmp_path / "lab-config").mkdir()
    (tmp_path / "lab-config" / "jupyter_server_config.json").write_text(
        json.dumps({"IdentityProvider": {"token": TOKEN}}))
    port = _free_port()
    command = [str(VENV_BIN / "workbench"), "lab", "--port", str(port), "--root", str(root)]
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.5)
        if os.geteuid() == 0:
            assert "running as root, so JupyterLab starts with --allow-root" in log_path.read_text()
        yield url
    finally:
        # The kernel and the training process it starts run in sessions of their own: collect them first.
        family = psutil.Process(server.pid).children(recursive=True) if server.poll() is None else []
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        for process in family:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=10)


def shot(target, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target.screenshot(path=str(ARTIFACTS / name))


@pytest.mark.slow
def test_explore_notebook_launches_a_digits_run_from_the_widget(lab, home, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab}/lab/tree/explore.ipynb?token={TOKEN}")
        expect(page.locator(".jp-Notebook")).to_be_visible(timeout=120_000)
        expect(page.locator(".jp-Toolbar-kernelName")).to_have_text("Python (workbench)", timeout=60_000)
        # Cells run before the kernel is connected are dropped: wait for the status bar to say so.
        expect(page.get_by_text("Python (workbench) | Idle")).to_be_visible(timeout=120_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

        task = page.get_by_label("task", exact=True)
        start = page.locator("button.widget-button", has_text="Start")
        status = page.locator(".workbench-launcher-status")
        expect(task).to_be_visible(timeout=180_000)
        expect(start).to_be_visible()
        expect(status).to_contain_text("Choose a configuration")
        shot(page, "lab-launcher.png")

        page.get_by_label("dataset", exact=True).select_option("digits")
        page.get_by_label("model", exact=True).select_option("mlp")
        epochs = page.locator(".widget-slider", has=page.get_by_text("epochs", exact=True)).locator(".widget-readout")
        epochs.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("1")
        page.keyboard.press("Enter")
        expect(epochs).to_have_text("1")
        page.locator("button.widget-button", has_text="Preview data").click()
        preview = page.locator(".widget-output img")  # the task's image grid, shown by the kernel
        expect(preview).to_be_visible(timeout=120_000)
        expect(page.locator(".widget-output")).to_contain_text("digits from")
        start.click()

        deadline = time.monotonic() + 900
        while not (all_runs(home) and all_runs(home)[0].info.status != "RUNNING"):
            assert time.monotonic() < deadline, "the run did not end in time"
            time.sleep(2)
        (run,) = all_runs(home)
        assert run.info.status == "FINISHED", run.data.tags.get("error")
        assert (run.data.params["dataset"], run.data.params["model"], run.data.params["epochs"]) == \
            ("digits", "mlp", "1")
        assert "test_accuracy" in run.data.metrics
        expect(status).to_contain_text("FINISHED", timeout=60_000)  # the widget followed the run
        expect(status).to_contain_text(run.info.run_id[:8])
        status.scroll_into_view_if_needed()
        shot(page, "lab-launcher-finished.png")
    except Exception:
        shot(page, "lab-failure.png")
        raise
    finally:
        page.close()
