"""The launcher's training run, outside the notebook's kernel: a `TrainingProcess` creates the MLflow
run, then starts `workbench train` (the papermill path) in a process group of its own that logs into
that run. `stop` interrupts that process (which ends the run KILLED), kills whatever is left of it (the
notebook kernel runs in a session of its own), and ends the run itself if it is still RUNNING.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from workbench import handoff
from workbench.config import RunConfig
from workbench.tasks.configure import make_config

STOPPED_REASON = "stopped from the launcher"
INTERRUPT_GRACE_SECONDS = 60  # time `workbench train` gets to attach the notebook and end the run


class WatchedRun:
    """What the launcher shows of a run, read from MLflow: epochs done, planned, curves, status."""

    run_id: str
    config: RunConfig
    started: float
    log = None  # the process's output, when the launcher started it

    def status(self) -> str:
        from workbench import tracking

        return tracking.run_status(self.run_id)

    def epochs_done(self) -> int:
        """Epochs whose metrics reached MLflow (the epoch callback logs `epoch_seconds` at each end)."""
        from workbench import tracking

        return len({p.step for p in tracking.client().get_metric_history(self.run_id, "epoch_seconds")})

    def planned_epochs(self) -> int:
        """The run's epochs: as configured, or as the run chose from the data (0 until it has)."""
        if self.config.epochs:
            return self.config.epochs
        from workbench import tracking

        return int(tracking.client().get_run(self.run_id).data.params.get("epochs", 0))

    def curves(self) -> dict[str, list[float]]:
        """Per-epoch values of every validation metric (`val_loss`, `val_accuracy`, ...) and of its
        training twin where there is one."""
        from workbench import tracking

        logger = tracking.RunLogger(self.run_id)
        latest = logger.client.get_run(self.run_id).data.metrics
        names = sorted(k.removeprefix("val_") for k in latest if k.startswith("val_") and k != "val_examples")
        keys = [key for name in names for key in (name, f"val_{name}") if key in latest]
        return logger.metric_history(keys)


class FollowedRun(WatchedRun):
    """Any run, followed by id: started by `workbench train`, a pipeline step, a tuning trial, ..."""

    def __init__(self, run_id: str, poll_seconds: float = 2.0):
        from workbench.tasks.configure import config_from_params
        from workbench.tracking import queries

        params = queries.existing_run_params(run_id, "run")
        self.run_id, self.config = run_id, config_from_params(params)
        self.started = queries.get_run(run_id).info.start_time / 1000
        self.poll_seconds = poll_seconds

    @property
    def running(self) -> bool:
        return self.status() == "RUNNING"

    def wait(self, timeout: float | None = None) -> str:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {self.run_id} still running after {timeout} s")
            time.sleep(self.poll_seconds)
        return self.status()

    def stop(self) -> str:
        raise RuntimeError(f"run {self.run_id} was not started here: stop it where it runs")


class TrainingProcess(WatchedRun):
    """A `workbench train` process logging into an MLflow run created before it starts."""

    def __init__(self, config: RunConfig):
        from workbench import tracking
        from workbench.home import home, subdir

        self.config = config
        self.stop_requested = False
        self.run_id = tracking.create_run(config)
        self.log = subdir("launcher") / f"train-{self.run_id}.log"
        self.command = [sys.executable, "-m", "workbench", "train", *config_flags(config)]
        # The child must log into the same store this process reads, whatever its working directory.
        env = {**os.environ, **handoff.into_run(self.run_id), "WORKBENCH_HOME": str(home())}
        try:
            with open(self.log, "wb") as log:
                # A session of its own: interrupting the notebook's kernel leaves the run alone, and
                # stop() can signal the whole group.
                self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                start_new_session=True)
        except OSError as exc:  # the run exists already: it must not stay RUNNING
            tracking.end_run(self.run_id, error=f"could not start `workbench train`: {exc}")
            raise
        self.started = time.time()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def wait(self, timeout: float | None = None) -> str:
        """Wait for the process to end; then make sure the run is closed. Returns the run's status."""
        self.process.wait(timeout)
        if self.stop_requested:
            return self._close_run(STOPPED_REASON, status="KILLED")
        return self._close_run(f"training process exited with code {self.process.returncode}: "
                               + self.log_tail(5))

    def stop(self, grace: float = INTERRUPT_GRACE_SECONDS) -> str:
        """End the run cleanly: interrupt `workbench train` (it attaches the executed notebook and
        ends the run KILLED), kill what is left of its process tree, and close the run if the
        process could not. Returns the run's final status."""
        import psutil

        from workbench.procs import kill_tree

        from workbench import tracking

        self.stop_requested = True
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        if self.running:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if self.running:
            kill_tree(self.process)
        for member in family:  # the notebook kernel, in a session of its own
            try:
                member.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=10)
        status = self._close_run(STOPPED_REASON, status="KILLED")
        if status == "KILLED":  # the kernel tags its interruption generically; say who stopped it
            tracking.client().set_tag(self.run_id, tracking.ERROR_TAG, STOPPED_REASON)
        return status

    def _close_run(self, reason: str, status: str = "FAILED") -> str:
        from workbench import tracking

        if tracking.run_status(self.run_id) == "RUNNING":
            tracking.end_run(self.run_id, error=reason, status=status)
        return tracking.run_status(self.run_id)


def config_flags(config: RunConfig) -> list[str]:
    """`workbench train` flags: the task, the model when it is not the task's default, and the fields that
    differ from that model's defaults (each model brings its own learning rate and dropout)."""
    defaults = {**make_config(task=config.task, model=config.model).to_dict(),
                "model": make_config(task=config.task).model}
    flags = ["--task", config.task]
    for name, value in config.to_dict().items():  # fields, then the task's and model's options
        if value != defaults.get(name):
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags
