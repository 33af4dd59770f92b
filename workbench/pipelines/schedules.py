"""Persistent schedules for pipelines, on APScheduler 3 with its SQLAlchemy job store.

`workbench schedule add pipelines/nightly.yaml` stores a job (the file's cron line) in
`scheduler.db` in the workbench home; `workbench scheduler` is the foreground daemon that runs
them. Schedules and the run history live in that database, so they survive restarts of the
daemon. Runs missed while it was down are coalesced into one run at its next start, however
late; a pipeline never runs twice at once (one instance per job, and a lock per pipeline that
`workbench pipeline run` takes too).
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys
import threading
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

from workbench.damaged import set_aside
from workbench.errors import BadInput
from workbench.home import home
from workbench.pipelines.cron import CRON_HELP, cron_trigger, describe_trigger
from workbench.pipelines.results import FAILED
from workbench.pipelines.runner import run_pipeline
from workbench.pipelines.spec import PipelineError, load_pipeline
from workbench.pipelines.state import PipelineBusy
from workbench.procs import LockHeld, pid_lock

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}  # None: never too late
REFRESH_SECONDS = 30.0  # how soon the daemon sees schedules added or removed by other processes
EARLIER_JOB_FUNCTIONS = ("workbench.scheduler:run_scheduled",)  # where run_scheduled lived before this package

_STOP = threading.Event()  # set when the daemon stops: running pipelines kill their steps


class ScheduleError(BadInput):
    """A schedule request that cannot be done; the message says why and what exists."""


def database() -> Path:
    return home() / "scheduler.db"


def store_url() -> str:
    return f"sqlite:///{database()}"


# ---- the job store -----------------------------------------------------------------------------------

def make_scheduler():
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(jobstores={"default": _job_store(), "memory": MemoryJobStore()},
                               executors={"default": ThreadPoolExecutor(4)}, job_defaults=JOB_DEFAULTS)


def _job_store():
    """The SQLite job store. APScheduler deletes a stored job whose function it cannot import, so
    jobs that name run_scheduled at an earlier module are pointed here as they are read; the
    store keeps the new name once the job next runs."""
    import pickle

    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    from sqlalchemy import and_, select

    class JobStore(SQLAlchemyJobStore):
        def _reconstitute_job(self, job_state):
            state = pickle.loads(job_state)
            if state.get("func") in EARLIER_JOB_FUNCTIONS:
                state["func"] = f"{run_scheduled.__module__}:{run_scheduled.__qualname__}"
                job_state = pickle.dumps(state, self.pickle_protocol)
            return super()._reconstitute_job(job_state)

        def _get_jobs(self, *conditions):
            # APScheduler deletes a job it cannot read, even from a read-only `schedule list`: keep
            # the row and name it instead.
            query = select(self.jobs_t.c.id, self.jobs_t.c.job_state).order_by(self.jobs_t.c.next_run_time)
            jobs = []
            with self.engine.begin() as connection:
                for row in connection.execute(query.where(and_(*conditions)) if conditions else query):
                    try:
                        jobs.append(self._reconstitute_job(row.job_state))
                    except Exception as exc:
                        print(f"workbench: schedule {row.id!r} in {database()} cannot be read ({type(exc).__name__}: "
                              f"{exc}); left as it is: `workbench schedule remove {row.id}` removes it",
                              file=sys.stderr, flush=True)
            return jobs

    return JobStore(url=store_url())


@contextmanager
def _store() -> Iterator:
    """The job store through a paused scheduler: jobs are read and written, none runs here."""
    from sqlalchemy.exc import DatabaseError

    scheduler = make_scheduler()
    try:
        scheduler.start(paused=True)
    except DatabaseError as exc:
        raise _damaged(exc) from None
    try:
        yield scheduler
    except DatabaseError as exc:
        raise _damaged(exc) from None
    finally:
        scheduler.shutdown(wait=False)


def _damaged(exc: Exception) -> ScheduleError:
    """The scheduler database does not open as SQLite: set it aside, say so."""
    path = database()
    kept = set_aside(path)
    return ScheduleError(f"the scheduler database {path} is damaged ({getattr(exc, 'orig', exc)}); kept it as {kept}; "
                         "add the schedules again with `workbench schedule add FILE`")


def add_schedule(file: str | Path, cron: str | None = None, trigger=None):
    """Schedule a pipeline file (replacing its earlier schedule); returns the stored job.
    `trigger` (any APScheduler trigger) replaces the cron line, for tests and scripts."""
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
    try:
        connection.execute("SELECT count(*) FROM sqlite_master")
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise _damaged(exc) from None
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


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "-"


# ---- the job and the daemon -----------------------------------------------------------------------

def run_scheduled(file: str, name: str) -> None:
    """What every schedule runs. Module level, so the job store can keep a reference to it."""
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
    try:
        with pid_lock(home() / "scheduler.lock"):
            return _serve(refresh, echo)
    except LockHeld as exc:  # only taking the lock raises it
        echo(f"workbench scheduler: another scheduler already serves {home()} ({exc.holder})")
        return 1


def _serve(refresh: float, echo) -> int:
    from workbench.notebooks import ensure_kernel

    with closing(_history()) as db, db:  # runs of a daemon that died mid-run never finished
        db.execute("UPDATE pipeline_runs SET status = 'KILLED', error = 'the scheduler stopped during the run' "
                   "WHERE status = 'RUNNING'")
    ensure_kernel()
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
        echo(f"  {job.id}: {describe_trigger(job.trigger)}, next run {when(job.next_run_time)}")
    sys.stdout.flush()
    while not stopped.wait(1.0):
        pass
    echo("workbench scheduler: stopping")
    _STOP.set()
    scheduler.shutdown(wait=True)
    return 0
