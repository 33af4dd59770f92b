"""A run killed between epochs continues where it stopped, in the same MLflow run."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, all_runs, client, run_cli

pytestmark = pytest.mark.slow


def _wait_for_first_epoch(home, process, timeout=300):
    """Poll the store with plain SQL: an MLflow client here would race the trainer's schema setup."""
    import sqlite3

    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, "training ended before it could be killed"
        try:
            with sqlite3.connect(f"file:{home / 'mlflow.db'}?mode=ro", uri=True) as db:
                row = db.execute("select run_uuid from metrics where key = 'val_loss' limit 1").fetchone()
        except sqlite3.OperationalError:  # not created yet
            row = None
        if row:
            return row[0]
        time.sleep(0.2)
    raise AssertionError("no epoch was logged in time")


def test_killed_run_resumes_at_the_next_epoch(home):
    # Small batches make each epoch last a few seconds, so the kill lands between epochs 1 and 3.
    command = [sys.executable, "-m", "workbench", "train", "--in-process", "--dataset", "digits",
               "--model", "resnet", "--batch-size", "8", "--epochs", "3"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env=os.environ.copy())
    try:
        run_id = _wait_for_first_epoch(home, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    logged_before_kill = len(client(home).get_metric_history(run_id, "val_loss"))
    assert logged_before_kill < 3
    assert client(home).get_run(run_id).info.status == "RUNNING"  # SIGKILL leaves no chance to close

    assert client(home).get_run(run_id).data.tags["workbench.pid"] == str(process.pid)  # its owner, now gone

    result = run_cli("train", "--in-process", "--resume", run_id)
    assert result.returncode == 0, result.stderr[-3000:]
    # The command first closes what the killed process left RUNNING, then resumes it.
    assert f"closed run {run_id}" in result.stdout and "FAILED, process lost" in result.stdout
    assert f"resuming run {run_id} at epoch {logged_before_kill + 1} of 3" in result.stdout

    (run,) = all_runs(home)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    for key in ("loss", "val_loss", "val_accuracy"):
        steps = [p.step for p in client(home).get_metric_history(run_id, key)]
        assert sorted(steps) == [0, 1, 2], (key, steps)
    assert run.data.tags["resumed_from_epoch"] == str(logged_before_kill)
    assert "error" not in run.data.tags and run.data.tags["resumed_after"].startswith(f"process lost: pid {process.pid}")
    assert "test_accuracy" in run.data.metrics

    # Finished now: resuming it again would train into the same run a second time.
    again = run_cli("train", "--in-process", "--resume", run_id)
    assert again.returncode == 2 and f"workbench rerun {run_id}" in again.stderr
    assert len(all_runs(home)) == 1 and len(client(home).get_metric_history(run_id, "val_loss")) == 3


def test_resume_of_an_unknown_run_is_a_clear_error(home):
    result = run_cli("train", "--in-process", "--resume", "0123456789abcdef")
    assert result.returncode == 2
    assert "invalid value for 'resume'" in result.stderr
