"""What a pipeline run ends with: a status per step, the steps' results, the summary table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.pipelines.introspect import display_path

# Step statuses. UNCHANGED: not run, outputs of its last success reused. SKIPPED: an upstream step
# did not succeed. KILLED: the pipeline was interrupted.
FINISHED, FAILED, UNCHANGED, SKIPPED, KILLED = "FINISHED", "FAILED", "UNCHANGED", "SKIPPED", "KILLED"
PENDING = "PENDING"
SUCCEEDED = (FINISHED, UNCHANGED)


@dataclass
class StepResult:
    name: str
    status: str = PENDING
    attempts: int = 0
    seconds: float | None = None
    run_id: str | None = None  # this pipeline run's step run
    source_run_id: str | None = None  # the step run that did the work (differs when UNCHANGED)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    executed: str | None = None


@dataclass
class PipelineResult:
    pipeline: str
    run_id: str
    status: str
    steps: dict[str, StepResult]
    seconds: float
    folder: Path
    interruption: BaseException | None = None  # the KeyboardInterrupt (or SIGTERM's Stopped) that ended it

    @property
    def ok(self) -> bool:
        return self.status == FINISHED


def pipeline_status(steps: dict[str, StepResult], interrupted: bool) -> str:
    statuses = [r.status for r in steps.values()]
    if interrupted or KILLED in statuses:
        return KILLED
    return FINISHED if all(s in SUCCEEDED for s in statuses) else FAILED


def summary_table(result: PipelineResult) -> str:
    rows = [("step", "status", "attempts", "duration", "note")]
    for step in result.steps.values():
        duration = f"{step.seconds:.1f} s" if step.seconds is not None and step.status != SKIPPED else "-"
        note = step.error or (f"same as run {step.source_run_id}" if step.status == UNCHANGED else "")
        rows.append((step.name, step.status, str(step.attempts), duration, note.splitlines()[0] if note else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4]).rstrip() for row in rows]
    where = f"; executed notebooks in {display_path(result.folder)}" if result.folder.exists() else ""
    lines.append(f"pipeline {result.pipeline} {result.status} in {result.seconds:.1f} s; "
                 f"MLflow run {result.run_id}{where}")
    return "\n".join(["", *lines])
