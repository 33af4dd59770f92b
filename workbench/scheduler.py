"""Persistent schedules for pipelines, on APScheduler 3 with its SQLAlchemy job store.

`workbench schedule add pipelines/nightly.yaml` stores a job (the file's cron line) in
`scheduler.db` in the workbench home; `workbench scheduler` is the foreground daemon that runs
them. Schedules and the run history live in that database, so they survive restarts of the
daemon. Runs missed while it was down are coalesced into one run at its next start, however
late; a pipeline never runs twice at once (one instance per job, and a lock per pipeline that
`workbench pipeline run` takes too).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import signal
import sqlite3
import sys
import threading
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

from workbench.home import home

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}  # None: never too late
REFRESH_SECONDS = 30.0  # how soon the daemon sees schedules added or removed by other processes
CRON_HELP = "a cron line such as '0 2 * * *' (minute hour day month weekday)"
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

_STOP = threading.Event()  # set when the daemon stops: running pipelines kill their steps


class ScheduleError(ValueError):
    """A schedule request that cannot be done; the message says why and what exists."""


def database() -> Path:
    return home() / "scheduler.db"


def store_url() -> str:
    return f"sqlite:///{database()}"


# ---- cron ------------------------------------------------------------------------------------------

def cron_trigger(expression: str, timezone=None):
    """A CronTrigger for a standard 5-field crontab line. Weekday numbers follow cron (0 and 7 are
    Sunday); APScheduler 3 counts from Monday, so numbers are written as day names first."""
    from apscheduler.triggers.cron import CronTrigger

    if not isinstance(expression, str):
        raise ValueError("expected a string")
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields, expected 5")
    minute, hour, day, month, weekday = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_cron_weekdays(weekday),
                       timezone=timezone)


def _cron_weekdays(field: str) -> str:
    terms = []
    for term in field.split(","):
        match = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", term)
        if not match or (match.group(1) == "*" and not match.group(3)):
            terms.append(term)  # '*', names ('mon-fri'): the same in both conventions
            continue
        first = 0 if match.group(1) == "*" else int(match.group(1))
        last = 6 if match.group(1) == "*" else int(match.group(2) or first)
        step = int(match.group(3) or 1)
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step >= 1):
            raise ValueError(f"weekday {term!r}: numbers 0-7 (0 and 7 are Sunday)")
        terms.extend(WEEKDAYS[d % 7] for d in range(first, last + 1, step))
    return ",".join(dict.fromkeys(terms))


def describe_trigger(trigger) -> str:
    from apscheduler.triggers.cron import CronTrigger

    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        return " ".join(fields[n] for n in ("minute", "hour", "day", "month", "day_of_week"))
    return str(trigger)


# ---- the job store -----------------------------------------------------------------------------------

def make_scheduler():
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=store_url()), "memory": MemoryJobStore()},
                               executors={"default": ThreadPoolExecutor(4)}, job_defaults=JOB_DEFAULTS)


@contextmanager
def _store() -> Iterator:
    """The job store through a paused scheduler: jobs are read and written, none runs here."""
    scheduler = make_scheduler()
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)


def add_schedule(file: str | Path, cron: str | None = None, trigger=None):
    """Schedule a pipeline file (replacing its earlier schedule); returns the stored job.
    `trigger` (any APScheduler trigger) replaces the cron line, for tests and scripts."""
    from workbench.pipeline import load_pipeline

    pipeline = load_pipeline(file)
    if trigger is None:
        expression = cron or pipeline.schedule
        if not expression:
            raise ScheduleError(f"{pipeline.label}: no 'schedule' field and no --cron: give {CRON_HELP}")
        try:
            trigger = cron_trigger(expression)
        except ValueError as exc:
            raise ScheduleError(f"--cron {expression!r}: {exc}; {CRON_HELP}") from None
    with _store() as scheduler:
        job = scheduler.add_job(run_scheduled, trigger, args=[str(pipeline.path), pipeline.name], id=pipeline.name,
                                name=pipeline.name, replace_existing=True, **JOB_DEFAULTS)
        return scheduler.get_job(job.id)


def remove_schedule(name: str) -> None:
    from apscheduler.jobstores.base import JobLookupError

    with _store() as scheduler:
        try:
            scheduler.remove_job(name, "default")
        except JobLookupError:
            names = [j.id for j in scheduler.get_jobs("default")]
            raise ScheduleError(f"no schedule named {name!r}; scheduled: {', '.join(names) or 'none'}") from None


def schedules() -> list:
    with _store() as scheduler:
        return scheduler.get_jobs("default")


# ---- run history ------------------------------------------------------------------------------------

def _history() -> sqlite3.Connection:
    connection = sqlite3.connect(database(), timeout=30)
    connection.execute("CREATE TABLE IF NOT EXISTS pipeline_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                       "pipeline TEXT NOT NULL, file TEXT NOT NULL, started TEXT NOT NULL, ended TEXT, "
                       "status TEXT NOT NULL, mlflow_run_id TEXT, error TEXT)")
    return connection


def history(pipeline: str | None = None, limit: int = 50) -> list[dict]:
    """Scheduled runs, newest first."""
    with closing(_history()) as db:
        db.row_factory = sqlite3.Row
        where, args = ("WHERE pipeline = ?", (pipeline,)) if pipeline else ("", ())
        rows = db.execute(f"SELECT * FROM pipeline_runs {where} ORDER BY id DESC LIMIT ?", (*args, limit))
        return [dict(r) for r in rows]


def _record_start(pipeline: str, file: str) -> int:
    with closing(_history()) as db, db:
        return db.execute("INSERT INTO pipeline_runs (pipeline, file, started, status) VALUES (?, ?, ?, 'RUNNING')",
                          (pipeline, file, _now())).lastrowid


def _record_end(row: int, status: str, run_id: str | None, error: str | None) -> None:
    with closing(_history()) as db, db:
        db.execute("UPDATE pipeline_runs SET ended = ?, status = ?, mlflow_run_id = ?, error = ? WHERE id = ?",
                   (_now(), status, run_id, error, row))


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


# ---- the job and the daemon -----------------------------------------------------------------------

def run_scheduled(file: str, name: str) -> None:
    """What every schedule runs. Module level, so the job store can keep a reference to it."""
    from workbench.pipeline import FAILED, PipelineBusy, PipelineError, load_pipeline, run_pipeline

    def say(text: str) -> None:
        print("\n".join(f"[{name}] {line}" for line in text.strip("\n").splitlines()), flush=True)

    row = _record_start(name, file)
    status, run_id, error = "FAILED", None, None
    say(f"scheduled run of {file}")
    try:
        result = run_pipeline(load_pipeline(file), stop=_STOP, echo=say)
        status, run_id = result.status, result.run_id
        failed = [f"{s.name}: {s.error}" for s in result.steps.values() if s.status == FAILED]
        error = "; ".join(failed) or None
    except PipelineError as exc:
        status, error = "INVALID", str(exc)
        say(f"not run: {exc}")
    except PipelineBusy as exc:
        status, error = "BUSY", str(exc)
        say(f"not run: {exc}")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        say(f"failed: {error}")
    finally:
        _record_end(row, status, run_id, error)


def _refresh() -> None:
    """A no-op job: each run wakes the scheduler, which then reads the job store again."""


def serve(refresh: float = REFRESH_SECONDS, echo=print) -> int:
    """The foreground daemon; SIGTERM or Ctrl-C stops it (running pipelines end KILLED)."""
    from workbench.notebooks import ensure_kernel

    with open(home() / "scheduler.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            echo(f"workbench scheduler: another scheduler already serves {home()} ({lock.read().strip()})")
            return 1
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        with closing(_history()) as db, db:  # runs of a daemon that died mid-run never finished
            db.execute("UPDATE pipeline_runs SET status = 'KILLED', error = 'the scheduler stopped during the run' "
                       "WHERE status = 'RUNNING'")
        ensure_kernel()
        import logging

        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s: %(message)s")
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        _STOP.clear()
        scheduler = make_scheduler()
        scheduler.add_job(_refresh, "interval", seconds=refresh, id="workbench-refresh", jobstore="memory")
        scheduler.start()
        jobs = scheduler.get_jobs("default")
        echo(f"workbench scheduler: {len(jobs)} schedule(s) in {database()}; Ctrl-C or SIGTERM stops it")
        for job in jobs:
            echo(f"  {job.id}: {describe_trigger(job.trigger)}, next run {_when(job.next_run_time)}")
        sys.stdout.flush()
        while not stopped.wait(1.0):
            pass
        echo("workbench scheduler: stopping")
        _STOP.set()
        scheduler.shutdown(wait=True)
        lock.seek(0)
        lock.truncate()
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "-"


# ---- commands -------------------------------------------------------------------------------------

def add_schedule_commands(subparsers) -> None:
    schedule = subparsers.add_parser("schedule", help="schedule pipelines (run by `workbench scheduler`)",
                                     description="Add, list and remove pipeline schedules.")
    actions = schedule.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="schedule a pipeline file (its `schedule` cron line)")
    add.add_argument("file", help="pipeline YAML, e.g. pipelines/nightly.yaml")
    add.add_argument("--cron", help=f"instead of the file's schedule: {CRON_HELP}")
    add.set_defaults(handler=cmd_add)
    listing = actions.add_parser("list", help="schedules, next run and last run")
    listing.set_defaults(handler=cmd_list)
    remove = actions.add_parser("remove", help="remove a schedule by pipeline name")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_remove)
    daemon = subparsers.add_parser("scheduler", help="run scheduled pipelines (foreground daemon)",
                                   description="Run the pipelines scheduled with `workbench schedule add` "
                                               "until stopped (Ctrl-C or SIGTERM).")
    daemon.add_argument("--refresh", type=float, default=REFRESH_SECONDS, metavar="SECONDS",
                        help=f"how often to re-read schedules changed by other commands (default {REFRESH_SECONDS:g})")
    daemon.set_defaults(handler=lambda args: serve(args.refresh, echo=lambda line: print(line, flush=True)))


def cmd_add(args: argparse.Namespace) -> int:
    from workbench.pipeline import PipelineError

    try:
        job = add_schedule(args.file, args.cron)
    except (PipelineError, ScheduleError) as exc:
        print(f"workbench schedule: error: {exc}", file=sys.stderr)
        return 2
    print(f"scheduled {job.id}: {describe_trigger(job.trigger)}, next run {_when(job.next_run_time)}")
    print("runs happen while `workbench scheduler` is running")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    jobs = schedules()
    if not jobs:
        print("no schedules (add one with `workbench schedule add pipelines/NAME.yaml`)")
        return 0
    rows = [("name", "schedule", "next run", "last run", "file")]
    for job in jobs:
        last = history(job.id, limit=1)
        last_text = f"{last[0]['status']} {last[0]['started']}" if last else "never"
        rows.append((job.id, describe_trigger(job.trigger), _when(job.next_run_time), last_text, job.args[0]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    try:
        remove_schedule(args.name)
    except ScheduleError as exc:
        print(f"workbench schedule: error: {exc}", file=sys.stderr)
        return 2
    print(f"removed schedule {args.name}")
    return 0


if __name__ == "__main__":
    from workbench.pipeline import main

    sys.exit(main())
