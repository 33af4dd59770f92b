"""Which process holds a RUNNING run, and closing the runs whose process is gone.

A process killed with SIGKILL, or a machine that lost power, cannot end its runs: MLflow would show
them RUNNING forever. Every run the workbench opens records its host and process (pid and start
time, so a reused pid is not mistaken for the owner). Commands that start work close the RUNNING
runs of this host whose process is gone, as FAILED "process lost". Runs of other hosts (several
machines on one tracking server) are left to those hosts.
"""

from __future__ import annotations

import os
import socket
import time

import psutil

HOST_TAG = "workbench.host"
PID_TAG = "workbench.pid"
STARTED_TAG = "workbench.pid_started"  # the process's start time, seconds since the epoch
LOST = "process lost"


def owner_tags() -> dict[str, str]:
    """Tags that name this process as the run's owner."""
    me = psutil.Process()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(me.pid), STARTED_TAG: f"{me.create_time():.2f}"}


def claim(run_id: str) -> None:
    """This process now holds the run (a resumed run, a run created for a kernel)."""
    from workbench.tracking import client

    c = client()
    for key, value in owner_tags().items():
        c.set_tag(run_id, key, value)


def owner_alive(tags: dict[str, str]) -> bool:
    """True unless the tags name a process of this host that no longer runs."""
    if tags.get(HOST_TAG) != socket.gethostname() or PID_TAG not in tags:
        return True  # another host's, or opened by code that records no owner: not ours to judge
    try:
        process = psutil.Process(int(tags[PID_TAG]))
        if process.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped: it will never close the run
            return False
        return abs(process.create_time() - float(tags.get(STARTED_TAG, process.create_time()))) < 1.0
    except (psutil.NoSuchProcess, ValueError):
        return False
    except psutil.AccessDenied:
        return True


def close_lost_runs() -> list[str]:
    """End FAILED every RUNNING run of this host whose owning process is gone; returns their ids."""
    from workbench.tracking import client, end_run

    c = client()
    experiments = [e.experiment_id for e in c.search_experiments()]
    if not experiments:
        return []
    host = socket.gethostname().replace("'", "")
    running = c.search_runs(experiments, f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
                            max_results=5000)
    closed = []
    for run in running:
        tags = run.data.tags
        if owner_alive(tags):
            continue
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.info.start_time / 1000))
        end_run(run.info.run_id, f"{LOST}: pid {tags[PID_TAG]} on {tags[HOST_TAG]} ended without closing the "
                                 f"run (killed, or its machine stopped); found by pid {os.getpid()}")
        closed.append(run.info.run_id)
        print(f"closed run {run.info.run_id} ({run.info.run_name}, started {when}): FAILED, {LOST}", flush=True)
    return closed
