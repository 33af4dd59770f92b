"""Papermill execution of the workbench notebooks, and archiving of the executed copies.

`workbench train` starts the kernel first: the kernel creates the MLflow run (the same
`workbench.train` call as --in-process) and names it in a hand-off file, while this process
loads MLflow and nbconvert in a thread instead of before the kernel starts. Afterwards this
process attaches the executed notebook (.ipynb and rendered .html), also when a cell failed, so
the error is visible in the MLflow UI. Callers that created the run already (resume, the
launcher, pipelines) pass its id.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workbench.config import RunConfig
from workbench.errors import interruption
from workbench.home import NOTEBOOKS_DIR, executed_notebooks
from workbench import handoff
from workbench.handoff import RUN_ID_FILE_ENV

KERNEL_NAME = "workbench"
ENGINE_NAME = "workbench"
DEFAULT_CELL_TIMEOUT = 3600
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
REPLY_POLL_SECONDS = 1.0
MAX_SOCKET_PATH = 90  # a Unix socket path holds 107 bytes on Linux (103 on macOS); the kernel adds "-N"


class CellError(str):
    """A failed cell's message, with its exception's class name and text: a kernel that failed on
    bad input (a BadInput subclass) before creating its run is bad input to the caller too."""

    def __new__(cls, message: str, ename: str = "", evalue: str = ""):
        error = super().__new__(cls, message)
        error.ename, error.evalue = ename, evalue
        return error

    @property
    def bad_input(self) -> bool:
        from workbench.errors import BadInput

        def names(kind):
            return {kind.__name__}.union(*(names(sub) for sub in kind.__subclasses__()))

        return self.ename in names(BadInput)


@dataclass
class NotebookRun:
    run_id: str
    executed: Path
    html: Path | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def ensure_kernel() -> str:
    """Register this interpreter as the `workbench` Jupyter kernel once, inside its prefix."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = KernelSpecManager().find_kernel_specs().get(KERNEL_NAME)
    if spec_dir is None or _kernel_argv(Path(spec_dir)) != _wanted_argv():
        from ipykernel.kernelspec import install

        spec_dir = install(kernel_name=KERNEL_NAME, display_name="Python (workbench)", prefix=sys.prefix,
                           env=KERNEL_ENV)
        spec_file = Path(spec_dir) / "kernel.json"
        spec = json.loads(spec_file.read_text())
        spec["argv"] = _wanted_argv()
        spec_file.write_text(json.dumps(spec, indent=1))
    return KERNEL_NAME


def _wanted_argv() -> list[str]:
    # TensorFlow's C++ runtime logs to file descriptor 2 before its log level applies; keep
    # that out of cell outputs (it still reaches the terminal that runs the kernel).
    return [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--IPKernelApp.capture_fd_output=False"]


def _kernel_argv(spec_dir: Path) -> list[str] | None:
    try:
        return json.loads((spec_dir / "kernel.json").read_text())["argv"]
    except (OSError, ValueError, KeyError):
        return None


def execute(notebook: str | Path, parameters: dict, output: Path, cell_timeout: int = DEFAULT_CELL_TIMEOUT,
            echo: bool = True) -> str | None:
    """Run a notebook with papermill; returns None on success or the failing cell's error."""
    _import_papermill()
    import papermill
    from papermill.exceptions import PapermillExecutionError

    os.environ.update({k: v for k, v in KERNEL_ENV.items() if k not in os.environ})
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with environment({handoff.NOTEBOOK_ENV: _source_name(Path(notebook))}):
            papermill.execute_notebook(
                str(notebook), str(output), parameters=parameters, kernel_name=ensure_kernel(), engine_name=_engine(),
                execution_timeout=cell_timeout, progress_bar=False, cwd=os.getcwd(),
                stdout_file=sys.stdout if echo else None, stderr_file=sys.stderr if echo else None,
            )
    except PapermillExecutionError as exc:
        return CellError(f"notebook cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}", exc.ename, exc.evalue)
    except Exception as exc:  # kernel death, timeout, missing kernel
        return f"notebook execution failed: {type(exc).__name__}: {exc}"
    return None


def _source_name(notebook: Path) -> str:
    """The notebook as a run's source: relative to the project where it lives there."""
    from workbench.home import PROJECT_ROOT

    path = notebook.resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def _engine() -> str:
    """Register the papermill engine that waits for cell replies in short polls.

    nbclient waits for a cell's execute_reply with one zmq poll as long as the cell timeout. After
    a cell that opens widgets (ipywidgets.interact), that poll can miss the reply that has already
    arrived and sleep out the whole timeout (jupyter/nbclient#312): an hour with our default.
    Polling in one-second slices re-checks the socket, so such a miss costs at most a second.
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger as papermill_logger

    class SlicedPollClient(PapermillNotebookClient):
        # Once the last cell has replied, everything it logged is stored; a graceful shutdown
        # would wait seconds for TensorFlow's interpreter teardown. "immediate" kills the
        # kernel's process group, children included.
        shutdown_kernel = "immediate"

        def create_kernel_manager(self):
            # TCP ports are picked free, released, then bound by the kernel: between the two,
            # another process starting a kernel can take one, and the kernel dies before it
            # replies (nteract/papermill#511). Unix sockets in a folder of this kernel's
            # own cannot collide.
            manager = super().create_kernel_manager()
            if not getattr(self, "socket_folder", None):
                self.socket_folder = tempfile.mkdtemp(prefix="workbench-kernel-")
            socket = os.path.join(self.socket_folder, "socket")
            if len(socket) <= MAX_SOCKET_PATH:  # under a very long TMPDIR, TCP as before
                manager.transport, manager.ip = "ipc", socket
            return manager

        def execute(self, **kwargs):
            try:
                return super().execute(**kwargs)
            finally:
                shutil.rmtree(getattr(self, "socket_folder", ""), ignore_errors=True)

        @contextmanager
        def setup_kernel(self, **kwargs):
            with super().setup_kernel(**kwargs):
                try:
                    yield
                except KeyboardInterrupt:  # Ctrl-C, or SIGTERM raised as workbench.errors.Stopped
                    # The cut-short cell's polling tasks stay pending in the event loop, which
                    # runs again while the kernel is shut down: the kernel-alive poll then reports
                    # that kernel as having died, and tasks left with an error print it at exit.
                    # Neither is news to the user, who stopped it; muted before that shutdown.
                    self.log = logging.getLogger("workbench.notebooks.stopped")
                    self.log.setLevel(logging.CRITICAL)
                    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
                    raise

        async def async_start_new_kernel_client(self):
            client = await super().async_start_new_kernel_client()
            client.shell_channel.get_msg = _sliced(client.shell_channel.get_msg)
            return client

    class SlicedPollEngine(NBClientEngine):
        # NBClientEngine.execute_managed_notebook with our client; papermill maps its names onto
        # nbclient's the same way.
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = {k: v for k, v in kwargs.items() if k not in ("input_path", "timeout", "startup_timeout")}
            return SlicedPollClient(nb_man, timeout=execution_timeout, startup_timeout=start_timeout,
                                    kernel_name=kernel_name, log=papermill_logger, log_output=log_output,
                                    stdout_file=stdout_file, stderr_file=stderr_file, **kwargs).execute()

    papermill_engines.register(ENGINE_NAME, SlicedPollEngine)
    return ENGINE_NAME


def _sliced(get_msg):
    """get_msg(timeout) as a loop of polls of at most REPLY_POLL_SECONDS each."""
    from queue import Empty
    from time import monotonic

    async def get_msg_in_slices(timeout: float | None = None):
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            left = REPLY_POLL_SECONDS if deadline is None else max(0.0, deadline - monotonic())
            try:
                return await get_msg(timeout=min(left, REPLY_POLL_SECONDS))
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise
    return get_msg_in_slices


def to_html(executed: Path) -> Path | None:
    if not executed.exists():
        return None
    with _HTML_LOCK:
        body, _ = _html_exporter().from_filename(str(executed))
    html = executed.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def train_with_notebook(config: RunConfig, run_id: str | None = None,
                        cell_timeout: int = DEFAULT_CELL_TIMEOUT, echo: bool = True) -> NotebookRun:
    """`workbench train`: execute notebooks/train.ipynb into an MLflow run and attach the result."""
    from workbench.tracking.server_record import recorded_uri

    recorded_uri()  # a recorded tracking server that is down is an error before any kernel starts
    run_id = run_id or handoff.given_run_id()
    pending = executed_notebooks() / f"train-{run_id or time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.ipynb"
    _import_papermill()
    error, killed = None, False
    with tempfile.TemporaryDirectory(prefix="workbench-run-") as folder:
        id_file = Path(folder) / "run_id"
        kernel_done = threading.Event()
        loading = threading.Thread(target=_load_attach_tools, args=(run_id, id_file, kernel_done), daemon=True)
        loading.start()
        try:
            with environment({RUN_ID_FILE_ENV: str(id_file)}):
                error = execute(NOTEBOOKS_DIR / "train.ipynb", {**config.to_dict(), "run_id": run_id}, pending,
                                cell_timeout, echo)
        except KeyboardInterrupt as exc:  # the kernel's shutdown is quiet (SlicedPollClient.setup_kernel)
            error, killed = interruption(exc), True
            raise
        finally:
            kernel_done.set()
            loading.join()
            from workbench import tracking

            run_id = run_id or (id_file.read_text() if id_file.exists() else None)
            if run_id is None and isinstance(error, CellError) and error.bad_input:
                pass  # bad input found before the run existed: no run, the caller's exit code 2
            else:
                # A kernel that failed otherwise before it created its run still leaves a FAILED run
                # behind, holding the notebook that shows the error.
                run_id = run_id or tracking.create_run(config)
                executed = pending.replace(pending.with_name(f"train-{run_id}.ipynb")) if pending.exists() else pending
                html = attach(run_id, executed)
                if killed and tracking.run_status(run_id) in ("RUNNING", "KILLED"):
                    # The kernel may have tagged its interruption generically: say what stopped it.
                    # A run it already ended FINISHED or FAILED keeps that outcome.
                    tracking.client().set_tag(run_id, tracking.ERROR_TAG, error)
                    tracking.end_run(run_id, error, status="KILLED")
                elif error:
                    tracking.end_run(run_id, error, status="FAILED")
                elif tracking.run_status(run_id) == "RUNNING":  # the kernel always ends it; be safe
                    tracking.end_run(run_id)
    if run_id is None:
        from workbench.errors import BadInput

        raise BadInput(f"{error.evalue} (the executed notebook: {pending})")
    return NotebookRun(run_id, executed, html, error)


def _import_papermill() -> None:
    # jsonschema (via nbformat) builds an IRI grammar at import when rfc3987-syntax is installed:
    # 1.5 s here, for a format check notebook validation never makes.
    sys.modules.setdefault("rfc3987_syntax", None)
    import papermill  # noqa: F401


def _load_attach_tools(run_id: str | None, id_file: Path, kernel_done: threading.Event) -> None:
    """Beside the kernel: load MLflow, the store and the HTML exporter that attaching needs.

    Only a head start: whatever fails here is done again, and reported, after the kernel.
    """
    try:
        import nbformat

        with _HTML_LOCK:
            _html_exporter().from_notebook_node(nbformat.v4.new_notebook())  # loads the templates
        from workbench import tracking
        from workbench.home import home
        from workbench.tracking.owners import close_lost_runs

        if not tracking.uses_embedded_store(tracking.tracking_uri()) or (home() / "mlflow.db").exists():
            close_lost_runs()  # what killed processes left RUNNING, closed while the kernel starts
        # The kernel may be creating a new store: open it only once the kernel's run exists.
        while run_id is None and not id_file.exists() and not kernel_done.wait(0.2):
            pass
        run_id = run_id or (id_file.read_text() if id_file.exists() else None)
        if run_id:
            tracking.run_status(run_id)
    except Exception:
        pass


_HTML_LOCK = threading.Lock()  # one exporter, reused (its templates load once); pipeline steps share it


@functools.lru_cache(maxsize=1)
def _html_exporter():
    import nbconvert

    return nbconvert.HTMLExporter()


@contextmanager
def environment(values: dict[str, str]):
    """Set environment variables (a kernel started meanwhile inherits them), then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def attach(run_id: str, executed: Path, logs: list[Path] = (), uri: str | None = None) -> Path | None:
    """Attach an executed notebook to its run: the .ipynb, the .html when it renders, and logs.

    The one way `train`, `tune` and pipeline steps keep what a kernel did; `uri` names the store
    when this process's default is another one (a Dask worker logging for a pipeline)."""
    from workbench.tracking import run_tree

    folders, html = {}, None
    if executed.exists():
        try:
            html = to_html(executed)
        except Exception:  # a half-written notebook from a killed kernel is still attached as .ipynb
            html = None
        folders["notebook"] = [executed, *([html] if html else [])]
    if any(log.exists() for log in logs):
        folders["logs"] = [log for log in logs if log.exists()]
    run_tree.attach(run_id, folders, uri=uri)
    return html
