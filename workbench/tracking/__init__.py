"""MLflow run lifecycle and logging, in one place.

A run is opened once (`tracked_run`), everything lands in it through `RunLogger`, and it ends
FINISHED, FAILED (with the error as a tag) or KILLED; never left RUNNING by an exception.
The embedded default store is SQLite in the workbench home; MLFLOW_TRACKING_URI points
elsewhere (a tracking server, PostgreSQL).
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import mlflow
from mlflow.entities import Metric, RunStatus
from mlflow.tracking import MlflowClient

from workbench.config import RunConfig
from workbench.errors import interruption
from workbench import handoff
from workbench.home import PROJECT_ROOT, home
from workbench.procs import file_lock
from workbench.tracking import owners
from workbench.tracking.store_template import seed_new_store

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"  # makes the MLflow UI open on the runs table
ERROR_TAG = "error"
MAX_TAG_LENGTH = 5000
SYSTEM_METRICS_SECONDS = 2  # how often CPU, memory, disk and GPU use are sampled into a run


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else the server `workbench server` recorded in the home (it must
    answer), else the embedded SQLite store in the home."""
    from workbench.tracking.server_record import recorded_uri

    return os.environ.get("MLFLOW_TRACKING_URI") or recorded_uri() or f"sqlite:///{home() / 'mlflow.db'}"


def uses_embedded_store(uri: str) -> bool:
    return uri.startswith("sqlite:")


_READY_STORES: set[str] = set()


def client() -> MlflowClient:
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if uri in _READY_STORES or not uses_embedded_store(uri):
        return MlflowClient(uri)
    # Opening a new store creates and migrates its tables; processes that start together on a
    # new home would race in those migrations. One at a time, under a lock; the store is cached
    # per URI in the process, so MLflow's own calls reuse it.
    with file_lock(home() / ".mlflow.db.lock"):
        seed_new_store(uri)
        try:
            c = MlflowClient(uri)
        except Exception as exc:  # SQLAlchemy's message names no file
            from workbench.errors import DataError

            raise DataError(f"the tracking store {uri.removeprefix('sqlite:///')} cannot be opened "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); restore it from a backup, "
                            "or move it away to start a new store") from None
    _READY_STORES.add(uri)
    return c


def experiment_id(name: str, view_columns: list[str] | None = None) -> str:
    """Get or create an experiment, marked for model training; with `view_columns`, the runs-table
    view that the link `workbench ui` prints opens on shows those metrics."""
    from workbench.tracking import links

    c = client()
    tags = {EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND}
    if view_columns:
        tags[links.VIEW_TAG] = links.training_view(view_columns)
    experiment = c.get_experiment_by_name(name)
    if experiment is None:
        location = (home() / "artifacts").as_uri() if uses_embedded_store(tracking_uri()) else None
        try:
            return c.create_experiment(name, artifact_location=location, tags=tags)
        except mlflow.exceptions.MlflowException:  # created meanwhile by another process
            experiment = c.get_experiment_by_name(name)
    for key, value in tags.items():
        if experiment.tags.get(key) != value:
            c.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def key_metrics(config: RunConfig) -> list[str]:
    """What a run of this task is judged by: its test metric, the baseline's, the best validation score."""
    from workbench.tasks import get_task

    task = get_task(config.task)
    return [task.main_metric, f"baseline_{task.main_metric}", f"best_{task.monitor}"]


def create_run(config: RunConfig, run_name: str | None = None) -> str:
    """Open a RUNNING run for a process that will log into it (e.g. a notebook kernel)."""
    run = client().create_run(experiment_id(config.experiment, key_metrics(config)),
                              run_name=run_name or default_run_name(config), tags=owners.owner_tags())
    return run.info.run_id


def default_run_name(config: RunConfig) -> str:
    return f"{config.model}-{config.dataset.split('/')[-1]}-{time.strftime('%m%d-%H%M%S')}"


def run_status(run_id: str) -> str:
    return client().get_run(run_id).info.status


def end_run(run_id: str, error: str | None = None, status: str | None = None) -> None:
    """Close a run from outside: FINISHED, or FAILED/KILLED with the reason kept as a tag."""
    c = client()
    if error:
        if ERROR_TAG not in c.get_run(run_id).data.tags:
            c.set_tag(run_id, ERROR_TAG, error[:MAX_TAG_LENGTH])
        status = status or "FAILED"
    c.set_terminated(run_id, status or "FINISHED")


def environment_tags() -> dict[str, str]:
    import keras
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices()]
    return {
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "mlflow_version": mlflow.__version__,
        "python_version": platform.python_version(),
        "devices": ", ".join(devices),
        "host": platform.node(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
    }


def _requirements(model) -> list[str]:
    """What serving the model needs: TensorFlow and Keras, plus keras-hub for its pretrained models.

    Pinned, which also skips MLflow's slow dependency inference subprocess."""
    import importlib.metadata

    import keras
    import tensorflow as tf

    wanted = [f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"]
    if type(model).__module__.startswith("keras_hub"):
        wanted += [f"{name}=={importlib.metadata.version(name)}" for name in ("keras-hub", "tensorflow-text")]
    return wanted


@contextmanager
def _installed_versions_trusted() -> Iterator[None]:
    """Skip MLflow's check that a model's pinned requirements match what is installed, while it
    logs the model and reloads it to check its input example.

    The pins are the running versions themselves (`_requirements`, and MLflow pins its own), so
    the check cannot find a mismatch; yet it first maps every installed distribution to its
    modules: about half a second of CPU in each process that logs a model (BENCHMARKS.md)."""
    import mlflow.pyfunc
    import mlflow.utils.environment

    name = "warn_dependency_requirement_mismatches"
    modules = [m for m in (mlflow.utils.environment, mlflow.pyfunc) if hasattr(m, name)]
    checks = [getattr(m, name) for m in modules]
    for module in modules:
        setattr(module, name, lambda requirements: None)
    try:
        yield
    finally:
        for module, check in zip(modules, checks):
            setattr(module, name, check)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def git_dirty() -> str:
    """"true" when tracked files differ from the commit: the commit alone does not name the code."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=5)
        return "unknown" if out.returncode else str(bool(out.stdout.strip())).lower()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class RunLogger:
    """Everything a training run logs, addressed to one run id."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.client = client()

    def log_config(self, config: RunConfig) -> None:
        mlflow.log_params(config.to_dict())
        mlflow.set_tags({"task": config.task, "model": config.model, "dataset": config.dataset})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_figure(self, figure, name: str) -> None:
        mlflow.log_figure(figure, f"figures/{name}.png")

    def log_table(self, table: dict[str, list[Any]], name: str) -> None:
        mlflow.log_table(data=table, artifact_file=f"tables/{name}.json")

    def log_bytes(self, content: bytes, artifact_file: str) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / Path(artifact_file).name
            path.write_bytes(content)
            mlflow.log_artifact(str(path), str(Path(artifact_file).parent) if "/" in artifact_file else None)

    def log_dataset(self, data) -> None:
        import warnings

        import mlflow.data

        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        for context, x, y in (("train", data.x_train, data.y_train), ("validation", data.x_val, data.y_val),
                              ("test", data.x_test, data.y_test)):
            dataset = mlflow.data.from_numpy(x, targets=y, name=f"{data.name}-{context}", source=data.source)
            mlflow.log_input(dataset, context=context)

    def set_tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def log_model(self, model, input_example, example_output) -> None:
        from mlflow.models import Model, infer_signature

        from workbench.models.served import ServedModel

        if isinstance(model, ServedModel):
            from workbench.tracking.served import log_served

            with _installed_versions_trusted():
                return log_served(model, input_example, example_output, _requirements(model.network))
        signature = infer_signature(input_example, example_output)
        # MLflow reloads the model to check the example serves; its predict prints progress bars.
        with contextlib.redirect_stdout(io.StringIO()), _installed_versions_trusted():
            Model.log(
                artifact_path=None, name="model", flavor=_KerasFlavor, flavor_name="mlflow.keras", model=model,
                signature=signature, input_example=input_example,
                pip_requirements=_requirements(model),
            )

    def epoch_callback(self):
        """A Keras callback sending each epoch's logs as metrics at step = epoch (0-based)."""
        import keras

        logger = self

        class EpochMetrics(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                now = int(time.time() * 1000)
                values = {**(logs or {}), "epoch_seconds": time.perf_counter() - self.started}
                metrics = [Metric(k, float(v), now, epoch) for k, v in values.items()]
                logger.client.log_batch(logger.run_id, metrics=metrics)

        return EpochMetrics()

    def metric_history(self, keys) -> dict[str, list[float]]:
        """Per-epoch values of the given metrics, across resumed attempts (last value per step)."""
        history = {}
        for key in keys:
            points = sorted(self.client.get_metric_history(self.run_id, key), key=lambda p: p.timestamp)
            by_step = {p.step: p.value for p in points}
            history[key] = [by_step[s] for s in sorted(by_step)]
        return history


class _KerasFlavor:
    """mlflow.keras as a flavor for Model.log, creating the model folder first: MLflow 3.17's
    keras save_model writes the input example before it creates that folder, and fails."""

    @staticmethod
    def save_model(path, **kwargs):
        import mlflow.keras

        os.makedirs(path, exist_ok=True)
        mlflow.keras.save_model(path=path, **kwargs)


class SilentRunLogger:
    """What a non-chief worker of a multi-worker run gets: the same calls, nothing logged."""

    run_id = None

    def __getattr__(self, name):
        return lambda *args, **kwargs: None

    def epoch_callback(self):
        import keras

        return keras.callbacks.Callback()

    def metric_history(self, keys) -> dict:
        return {}


def open_run(config: RunConfig, run_id: str | None = None, parent_run_id: str | None = None,
             run_name: str | None = None, tags: dict[str, str] | None = None, enabled: bool = True):
    """Open (or reopen, for resume and for runs created by a parent process) a run; `close_run`
    ends it. With `enabled=False` (non-chief workers) nothing is logged and no run is created."""
    if not enabled:
        return SilentRunLogger()
    client()  # the store exists before MLflow's own calls open it
    run_id = run_id or handoff.given_run_id()  # created by `mlflow run` or the launcher
    # MLflow samples psutil (and pynvml, where a GPU answers) in a thread for as long as the run is open.
    mlflow.system_metrics.set_system_metrics_sampling_interval(SYSTEM_METRICS_SECONDS)
    system = {"log_system_metrics": config.system_metrics}
    if run_id:
        run = mlflow.start_run(run_id=run_id, **system)
        if ERROR_TAG in run.data.tags:  # resumed after a kill: the run is no longer in error
            mlflow.set_tag("resumed_after", run.data.tags[ERROR_TAG])
            client().delete_tag(run_id, ERROR_TAG)
    else:
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = mlflow.start_run(experiment_id=experiment_id(config.experiment, key_metrics(config)),
                               run_name=run_name or default_run_name(config), tags=all_tags, **system)
        if not parent_run_id:
            handoff.announce(run.info.run_id)
    logger = RunLogger(run.info.run_id)
    try:
        logger.log_config(config)
        mlflow.set_tags({**environment_tags(), **handoff.source_tags(), **owners.owner_tags()})
    except BaseException as exc:
        close_run(logger, exc)
        raise
    return logger


def close_run(logger, error: BaseException | None = None, stopped_early: tuple[type[BaseException], ...] = ()) -> None:
    """End a run opened by `open_run`: FINISHED; KILLED when interrupted; FINISHED with a `stopped`
    tag for an exception in `stopped_early` (e.g. a pruned tuning trial); else FAILED with the
    error as a tag. A run that already ended is left as it is."""
    active = mlflow.active_run()
    if isinstance(logger, SilentRunLogger) or active is None or active.info.run_id != logger.run_id:
        return
    if error is None:
        mlflow.end_run("FINISHED")
    elif isinstance(error, KeyboardInterrupt):
        mlflow.set_tag(ERROR_TAG, interruption(error))
        mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
    elif isinstance(error, stopped_early):
        mlflow.set_tag("stopped", type(error).__name__)
        mlflow.end_run("FINISHED")
    else:
        mlflow.set_tag(ERROR_TAG, f"{type(error).__name__}: {error}"[:MAX_TAG_LENGTH])
        mlflow.end_run("FAILED")


@contextmanager
def tracked_run(config: RunConfig, run_id: str | None = None, parent_run_id: str | None = None,
                run_name: str | None = None, tags: dict[str, str] | None = None,
                stopped_early: tuple[type[BaseException], ...] = (), enabled: bool = True) -> Iterator[RunLogger]:
    """A run that is open for the `with` block and ends as `close_run` says, never left RUNNING."""
    logger = open_run(config, run_id, parent_run_id, run_name, tags, enabled)
    try:
        yield logger
    except BaseException as exc:
        close_run(logger, exc, stopped_early)
        raise
    close_run(logger)
