"""Helpers of the pipeline tests: pipeline files from text, the commands in a fresh process, and the
MLflow tree a pipeline run leaves."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import ROOT, all_runs, client

FIXTURES = "tests/fixtures/pipelines"


def workbench(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """The pipeline and schedule commands as a user types them (`workbench pipeline ...`), in a fresh process."""
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).replace("FIXTURES", FIXTURES))
    return path


def pipeline_runs(home: Path) -> list:
    return sorted((r for r in all_runs(home) if r.data.tags.get("kind") == "pipeline"),
                  key=lambda r: r.info.start_time)


def steps_of(home: Path, parent) -> dict:
    return {r.data.tags["workbench.step"]: r for r in all_runs(home)
            if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}


def outputs_of(home: Path, run) -> dict:
    local = client(home).download_artifacts(run.info.run_id, "outputs.json", str(home / "downloads" / run.info.run_id))
    return json.loads(Path(local).read_text())


def summary_statuses(stdout: str, steps) -> dict[str, str]:
    """Each step's status in the summary table printed at the end of a run."""
    rows = [line.split() for line in stdout.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) > 1 and row[0] in steps and row[1].isupper()}
