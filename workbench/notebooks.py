"""Papermill execution of the workbench notebooks, and archiving of the executed copies.

The parent process (CLI, pipeline step) creates the MLflow run, the notebook kernel trains into
it, and the parent attaches the executed notebook (.ipynb and rendered .html) afterwards, also
when a cell failed, so the error is visible in the MLflow UI.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.config import RunConfig
from workbench.home import NOTEBOOKS_DIR, executed_notebooks

KERNEL_NAME = "workbench"
DEFAULT_CELL_TIMEOUT = 3600
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}


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
    import papermill
    from papermill.exceptions import PapermillExecutionError

    os.environ.update({k: v for k, v in KERNEL_ENV.items() if k not in os.environ})
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name=ensure_kernel(),
            execution_timeout=cell_timeout, progress_bar=False, cwd=os.getcwd(),
            stdout_file=sys.stdout if echo else None, stderr_file=sys.stderr if echo else None,
        )
    except PapermillExecutionError as exc:
        return f"notebook cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel death, timeout, missing kernel
        return f"notebook execution failed: {type(exc).__name__}: {exc}"
    return None


def to_html(executed: Path) -> Path | None:
    import nbconvert

    if not executed.exists():
        return None
    body, _ = nbconvert.HTMLExporter().from_filename(str(executed))
    html = executed.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def train_with_notebook(config: RunConfig, run_id: str | None = None,
                        cell_timeout: int = DEFAULT_CELL_TIMEOUT, echo: bool = True) -> NotebookRun:
    """`workbench train`: execute notebooks/train.ipynb into an MLflow run and attach the result."""
    from workbench import tracking

    run_id = run_id or os.environ.get("MLFLOW_RUN_ID") or tracking.create_run(config)
    executed = executed_notebooks() / f"train-{run_id}.ipynb"
    error = None
    try:
        error = execute(NOTEBOOKS_DIR / "train.ipynb", {**config.to_dict(), "run_id": run_id}, executed,
                        cell_timeout, echo)
    except KeyboardInterrupt:
        error = "interrupted by the user"
        raise
    finally:
        html = _attach(run_id, executed)
        if error:
            tracking.end_run(run_id, error, status="KILLED" if error.startswith("interrupted") else "FAILED")
        elif tracking.run_status(run_id) == "RUNNING":  # the kernel always ends it; be safe
            tracking.end_run(run_id)
    return NotebookRun(run_id, executed, html, error)


def _attach(run_id: str, executed: Path) -> Path | None:
    from workbench import tracking

    if not executed.exists():
        return None
    html = to_html(executed)
    tracking.log_artifacts(run_id, [p for p in (executed, html) if p], "notebook")
    return html
