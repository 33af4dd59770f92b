"""Where studies live: an Optuna journal file in the workbench home by default (safe for several
processes on one machine), or a database URL (PostgreSQL) so workers on many machines share a
study. Dead workers' trials are failed and retried: by heartbeat on databases, and by a sweep of
trials whose process is gone on the journal.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from workbench.home import subdir

HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 20
MAX_RETRIES = 3
WORKER_ATTR = "worker"


def default_storage_uri() -> str:
    return f"journal:{subdir('optuna') / 'journal.log'}"


def open_storage(uri: str | None):
    """An Optuna storage for `uri`: journal:PATH (the default) or an SQLAlchemy database URL."""
    uri = uri or default_storage_uri()
    if uri.startswith("journal:"):
        path = uri.removeprefix("journal:")
        check_journal(path)
        return JournalStorage(JournalFileBackend(path))
    return RDBStorage(uri, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),
                      engine_kwargs={"pool_pre_ping": True})


def check_journal(path: str) -> None:
    """A journal whose last record was cut short (a crash or a full disk mid-write) would be
    appended to after the torn line, and from then on fail every read. Repair it before Optuna
    opens it: keep a copy aside, cut the torn tail, and say so. A bad record before the last one
    is damage we cannot repair: refuse, naming the file and line."""
    from optuna.storages.journal import JournalFileSymlinkLock

    from workbench.errors import DataError

    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    lock = JournalFileSymlinkLock(path)  # the lock Optuna's writers hold while they append
    lock.acquire()
    try:
        with open(path, "rb") as f:
            content = f.read()
        lines = content.split(b"\n")
        complete, tail = lines[:-1], lines[-1]  # a whole file ends in "\n": its tail is empty
        for number, line in enumerate(complete, start=1):
            try:
                json.loads(line)
            except ValueError:
                if number < len(complete) or tail:
                    raise DataError(f"tuning journal {path}: line {number} is not a complete record; the file is "
                                    "damaged beyond its last line (restore it from a backup, or move it away to "
                                    "start the studies afresh)") from None
                tail, complete = line + b"\n", complete[:-1]  # a torn last record that happens to end in "\n"
        if not tail:
            return
        kept = f"{path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        shutil.copyfile(path, kept)
        with open(path, "r+b") as f:
            f.truncate(len(content) - len(tail))
            os.fsync(f.fileno())
        print(f"tuning journal {path}: its last record was cut short ({len(tail)} bytes, a crash or a full disk "
              f"mid-write); removed it and kept the damaged file as {kept}", file=sys.stderr, flush=True)
    finally:
        lock.release()


def storage_kind(uri: str | None) -> str:
    uri = uri or default_storage_uri()
    return "journal" if uri.startswith("journal:") else uri.split(":", 1)[0].split("+")[0]


def redacted(uri: str | None) -> str:
    """The storage URI without a password, fit for a tag or a log line."""
    uri = uri or default_storage_uri()
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':')[0]}:***@{host}"
    return uri


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str) -> bool:
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's worker: only a heartbeat can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def sweep_dead_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose worker process on this machine is gone, and queue their
    parameters again. Returns the failed trial numbers. (Databases use heartbeats instead.)"""
    if isinstance(study._storage, RDBStorage):
        return []
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker and not _alive(worker):
            study._storage.set_trial_user_attr(trial._trial_id, "failed_because", f"worker {worker} died")
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
            failed.append(trial.number)
    return failed
