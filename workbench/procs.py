"""Processes: killing a process with everything it started, and a lock file that names its holder."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class LockHeld(RuntimeError):
    """Another process holds the lock; `holder` is what it wrote there ("pid N"), or ""."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.holder = holder


@contextmanager
def pid_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` without waiting; raises LockHeld when another process has
    it. While held the file says "pid N"; it is emptied on release. The operating system releases
    the lock of a process that dies, so a stale file never blocks."""
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise LockHeld(path, lock.read().strip()) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()


def kill_tree(process: subprocess.Popen) -> None:
    """Kill a process, its process group and every descendant (a notebook kernel runs in a session
    of its own, so the group alone would miss it)."""
    import psutil

    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in descendants:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()
    psutil.wait_procs(descendants, timeout=10)
