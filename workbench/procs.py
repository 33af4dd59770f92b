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


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`, waiting for it: one process at a time past this point."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def die_with_parent() -> None:
    """For Popen's preexec_fn: the child is killed when the process that started it dies (Linux
    PR_SET_PDEATHSIG), so a runner killed with SIGKILL leaves no step training on without it."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the runner's own cleanup is all there is
        pass


def usable_cores() -> list[int] | None:
    """The CPU cores this process may run on; None where the system cannot say or pin (not Linux)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def pinned_to(cores: set[int] | None):
    """For Popen's preexec_fn: `die_with_parent`, and the child runs on `cores` only (TensorFlow
    then sizes its thread pools to them); None pins nothing."""
    def prepare() -> None:
        die_with_parent()
        if cores is not None:
            os.sched_setaffinity(0, cores)

    return prepare


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
