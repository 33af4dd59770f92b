"""Schedules: stored in the workbench home, listed with their next and last run, and run by a
daemon that coalesces the runs it missed while stopped into one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import ROOT, all_runs
from pipeline_testing import workbench

PIPELINE = """\
name: {name}
schedule: "{cron}"
steps:
  only:
    notebook: tests/fixtures/pipelines/emit.ipynb
"""


def write(tmp_path: Path, name: str, cron: str = "0 3 * * *") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(PIPELINE.format(name=name, cron=cron))
    return path


def test_schedule_add_list_remove(home, tmp_path):
    nightly = write(tmp_path, "night", "30 2 * * *")
    added = workbench("schedule", "add", str(nightly))
    assert added.returncode == 0, added.stderr
    assert "scheduled night: 30 2 * * *" in added.stdout
    listed = workbench("schedule", "list")
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith("night ")]
    assert "30 2 * * *" in row and "02:30:00" in row and "never" in row and str(nightly) in row

    other = write(tmp_path, "other")
    assert workbench("schedule", "add", str(other), "--cron", "*/10 * * * *").returncode == 0
    assert workbench("schedule", "add", str(nightly), "--cron", "0 4 * * *").returncode == 0  # replaces
    listed = workbench("schedule", "list").stdout
    assert "0 4 * * *" in listed and "30 2 * * *" not in listed and "*/10 * * * *" in listed

    assert workbench("schedule", "remove", "other").returncode == 0
    missing = workbench("schedule", "remove", "other")
    assert missing.returncode == 2 and "no schedule named 'other'; scheduled: night" in missing.stderr
    bad = workbench("schedule", "add", str(other), "--cron", "0 25 * * *")
    assert bad.returncode == 2 and "'0 25 * * *'" in bad.stderr
    assert [line.split()[0] for line in workbench("schedule", "list").stdout.splitlines()[1:]] == ["night"]


def test_schedules_stored_before_the_pipelines_package_are_kept(home, tmp_path):
    import pickle
    import sqlite3
    from contextlib import closing

    from workbench.pipelines.schedules import add_schedule, database, schedules

    add_schedule(write(tmp_path, "old"))
    with closing(sqlite3.connect(database())) as db, db:  # as `workbench schedule add` stored it then
        (state,) = db.execute("SELECT job_state FROM apscheduler_jobs").fetchone()
        job = pickle.loads(state)
        job["func"] = "workbench.scheduler:run_scheduled"
        db.execute("UPDATE apscheduler_jobs SET job_state = ?", (pickle.dumps(job),))
    (job,) = schedules()
    assert job.id == "old" and job.func_ref == "workbench.pipelines.schedules:run_scheduled"
    assert [j.id for j in schedules()] == ["old"]


def _start_daemon(log: Path) -> subprocess.Popen:
    daemon = subprocess.Popen([sys.executable, "-m", "workbench", "scheduler", "--refresh", "1"],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while "schedule(s)" not in log.read_text():
        assert daemon.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    return daemon


def _stop(daemon: subprocess.Popen) -> None:
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(60) == 0


@pytest.mark.slow
def test_restarted_scheduler_runs_missed_fire_times_once(home, tmp_path):
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from workbench.pipelines.cron import cron_trigger
    from workbench.pipelines.schedules import add_schedule, history, schedules

    path = write(tmp_path, "burst")
    # the nightly cron, plus three fire times two seconds apart while the daemon is down
    first = datetime.now().astimezone() + timedelta(seconds=12)
    burst = IntervalTrigger(seconds=2, start_date=first, end_date=first + timedelta(seconds=5))
    add_schedule(path, trigger=OrTrigger([burst, cron_trigger("0 3 * * *")]))

    daemon = _start_daemon(tmp_path / "first.log")
    second = workbench("scheduler")
    assert second.returncode == 1 and "another scheduler already serves" in second.stdout
    _stop(daemon)
    assert datetime.now().astimezone() < first, "the first daemon stopped before anything was due"

    time.sleep(max(0.0, (first + timedelta(seconds=6) - datetime.now().astimezone()).total_seconds()))
    assert history("burst") == []
    daemon = _start_daemon(tmp_path / "second.log")
    try:
        deadline = time.monotonic() + 90
        while not history("burst") or history("burst")[0]["status"] == "RUNNING":
            assert time.monotonic() < deadline, (tmp_path / "second.log").read_text()
            time.sleep(0.5)
        time.sleep(3)  # room for a wrong second run to start
    finally:
        _stop(daemon)

    (run,) = history("burst")
    assert run["status"] == "FINISHED", run
    (parent,) = [r for r in all_runs(home) if r.data.tags.get("kind") == "pipeline"]
    assert parent.info.run_id == run["mlflow_run_id"] and parent.info.status == "FINISHED"
    (job,) = schedules()
    assert job.next_run_time.hour == 3  # the burst is over; the schedule itself stays
    listed = workbench("schedule", "list").stdout
    assert "burst" in listed and "FINISHED" in listed
