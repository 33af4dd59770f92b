"""Who owns the MLflow run: the hand-offs between a process and the processes it starts.

Three, each written and read only here:
- down, an existing run: MLFLOW_RUN_ID names the run a command must log into (set by `mlflow
  run` and by the launcher, which creates the run first so it can show and stop it);
- down, a parent: a pipeline step's or a seed group's kernel gets MLflow's run context
  (MLFLOW_RUN_CONTEXT), so every run the notebook starts is its child (a step also passes its
  run's id, WORKBENCH_STEP_RUN_ID, for the runs that nest by hand);
- up, a new run: the command names a file in WORKBENCH_RUN_ID_FILE, and the first top-level run
  the kernel creates writes its id there, so the command can attach the executed notebook to it
  or end it FAILED when the kernel dies.

A core module: tracking, notebooks, pipelines and the launcher use it without importing each
other (or MLflow) for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RUN_ID_ENV = "MLFLOW_RUN_ID"
RUN_ID_FILE_ENV = "WORKBENCH_RUN_ID_FILE"
STEP_RUN_ENV = "WORKBENCH_STEP_RUN_ID"
RUN_CONTEXT_ENV = "MLFLOW_RUN_CONTEXT"  # tags MLflow adds to every run it starts
NOTEBOOK_ENV = "WORKBENCH_NOTEBOOK"  # the notebook a kernel executes: its runs name it as their source


def given_run_id() -> str | None:
    """The existing run this process must log into, if a parent created one."""
    return os.environ.get(RUN_ID_ENV) or None


def into_run(run_id: str) -> dict[str, str]:
    """The environment that makes a child command log into `run_id`."""
    return {RUN_ID_ENV: run_id}


def step_run_id() -> str | None:
    """The pipeline step this process runs under, if any (new top-level runs nest under it)."""
    return os.environ.get(STEP_RUN_ENV) or None


def with_run_tags(environment: dict[str, str], tags: dict[str, str]) -> dict[str, str]:
    """`environment` in which every run MLflow starts carries `tags` (`mlflow.parentRunId` among
    them makes it a child); an existing run of a parent process is not inherited."""
    env = {k: v for k, v in environment.items() if k != RUN_ID_ENV}
    context = {**json.loads(env.get(RUN_CONTEXT_ENV) or "{}"), **tags}
    return {**env, RUN_CONTEXT_ENV: json.dumps(context)}


def under_step(environment: dict[str, str], step_run_id: str, tags: dict[str, str]) -> dict[str, str]:
    """`environment` for a pipeline step's kernel: the runs it starts become children of the step run."""
    return {**with_run_tags(environment, tags), STEP_RUN_ENV: step_run_id}


def source_tags() -> dict[str, str]:
    """In a kernel executing a workbench notebook: the run's source is that notebook, not
    ipykernel_launcher.py."""
    notebook = os.environ.get(NOTEBOOK_ENV)
    if not notebook or "mlflow.source.name" in json.loads(os.environ.get(RUN_CONTEXT_ENV) or "{}"):
        return {}  # a pipeline step names its own notebook (the kernel runs a copy of it)
    return {"mlflow.source.name": notebook, "mlflow.source.type": "NOTEBOOK"}


def announce(run_id: str) -> None:
    """Tell the process that started this kernel which run it created (once: the first run wins)."""
    path = os.environ.get(RUN_ID_FILE_ENV)
    if path and not os.path.exists(path):
        Path(f"{path}.partial").write_text(run_id)
        os.replace(f"{path}.partial", path)  # the reader never sees half an id
