"""`workbench pipeline run|validate`, `workbench schedule add|list|remove` and `workbench scheduler`.
Exit codes: 0 success, 1 a step failed (or the pipeline is already running), 2 bad input before
anything ran, 130 interrupted, 143 stopped by SIGTERM (the map is in workbench.cli)."""

from __future__ import annotations

import argparse

from workbench.errors import Stopped
from workbench.pipelines.cron import CRON_HELP, describe_trigger
from workbench.pipelines.introspect import display_path
from workbench.pipelines.results import KILLED
from workbench.pipelines.runner import default_max_parallel, run_pipeline
from workbench.pipelines.schedules import (REFRESH_SECONDS, add_schedule, history, remove_schedule, schedules,
                                           serve, when)
from workbench.pipelines.spec import PipelineError, load_pipeline


def add_commands(subparsers) -> None:
    """`workbench pipeline run|validate`, `workbench schedule add|list|remove`, `workbench scheduler`."""
    pipeline = subparsers.add_parser("pipeline", help="run a pipeline of notebooks (pipelines/*.yaml)",
                                     description="Validate and run pipelines of notebook steps.")
    actions = pipeline.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run a pipeline", description="Run a pipeline: validate the whole file, "
                             "then run its steps (independent ones in parallel), skipping unchanged steps.")
    _add_file_flags(run)
    run.add_argument("--force", action="store_true", help="run every step, also those unchanged since their "
                                                         "last success")
    run.add_argument("--max-parallel", type=int, default=None, metavar="N",
                     help=f"steps running at once (default {default_max_parallel()} here)")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="local: processes on this machine (default); dask: a Dask distributed cluster")
    run.add_argument("--address", metavar="tcp://HOST:8786", help="the Dask scheduler (with --executor dask)")
    run.set_defaults(handler=cmd_run)
    check = actions.add_parser("validate", help="check a pipeline file without running it",
                               description="Check a pipeline file and print its steps in run order.")
    _add_file_flags(check)
    check.set_defaults(handler=cmd_validate)
    add_schedule_commands(subparsers)


def _add_file_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="pipeline YAML, e.g. pipelines/quickstart.yaml")
    parser.add_argument("-p", "--param", action="append", default=[], type=_assignment, metavar="KEY=VALUE",
                        help="override a pipeline parameter (repeatable)")


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key.strip(), value


def cmd_validate(args: argparse.Namespace) -> int:
    pipeline = load_pipeline(args.file, dict(args.param))
    print(f"{pipeline.label}: pipeline {pipeline.name}, {len(pipeline.steps)} steps"
          + (f", schedule '{pipeline.schedule}'" if pipeline.schedule else ""))
    for step in pipeline.steps.values():
        needs = f" after {', '.join(step.needs)}" if step.needs else ""
        print(f"  {step.name}: {display_path(step.notebook)}{needs}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return run_file(args.file, dict(args.param), args.force, args.max_parallel, args.executor, args.address)


def run_file(file: str, params: dict | None = None, force: bool = False, max_parallel: int | None = None,
             executor_kind: str = "local", address: str | None = None) -> int:
    """Validate the whole pipeline file, then run it; the exit code of `workbench pipeline run`."""
    from workbench.notebooks import ensure_kernel
    from workbench.pipelines.executors import make_executor

    pipeline = load_pipeline(file, params or {})
    if max_parallel is not None and max_parallel < 1:
        raise PipelineError(f"--max-parallel: {max_parallel}: an integer >= 1")
    executor = make_executor(executor_kind, address)
    ensure_kernel()
    # SIGTERM (e.g. a CronJob's deadline) raises workbench.errors.Stopped (workbench.cli installs it):
    # the runner stops the steps cleanly, as for Ctrl-C, and the command then exits 143 saying so.
    try:
        result = run_pipeline(pipeline, force=force, max_parallel=max_parallel, executor=executor)
    finally:
        executor.close()
    if isinstance(result.interruption, Stopped):
        raise result.interruption
    if result.status == KILLED:
        return 130
    return 0 if result.ok else 1


def add_schedule_commands(subparsers) -> None:
    schedule = subparsers.add_parser("schedule", help="schedule pipelines (run by `workbench scheduler`)",
                                     description="Add, list and remove pipeline schedules.")
    actions = schedule.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="schedule a pipeline file (its `schedule` cron line)")
    add.add_argument("file", help="pipeline YAML, e.g. pipelines/nightly.yaml")
    add.add_argument("--cron", help=f"instead of the file's schedule: {CRON_HELP}")
    add.set_defaults(handler=cmd_add)
    listing = actions.add_parser("list", help="schedules, next run and last run")
    listing.set_defaults(handler=cmd_list)
    remove = actions.add_parser("remove", help="remove a schedule by pipeline name")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_remove)
    daemon = subparsers.add_parser("scheduler", help="run scheduled pipelines (foreground daemon)",
                                   description="Run the pipelines scheduled with `workbench schedule add` "
                                               "until stopped (Ctrl-C or SIGTERM).")
    daemon.add_argument("--refresh", type=float, default=REFRESH_SECONDS, metavar="SECONDS",
                        help=f"how often to re-read schedules changed by other commands (default {REFRESH_SECONDS:g})")
    daemon.set_defaults(handler=lambda args: serve(args.refresh, echo=lambda line: print(line, flush=True)))


def cmd_add(args: argparse.Namespace) -> int:
    job = add_schedule(args.file, args.cron)
    print(f"scheduled {job.id}: {describe_trigger(job.trigger)}, next run {when(job.next_run_time)}")
    print("runs happen while `workbench scheduler` is running")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    jobs = schedules()
    if not jobs:
        print("no schedules (add one with `workbench schedule add pipelines/NAME.yaml`)")
        return 0
    rows = [("name", "schedule", "next run", "last run", "file")]
    for job in jobs:
        last = history(job.id, limit=1)
        last_text = f"{last[0]['status']} {last[0]['started']}" if last else "never"
        rows.append((job.id, describe_trigger(job.trigger), when(job.next_run_time), last_text, job.args[0]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    remove_schedule(args.name)
    print(f"removed schedule {args.name}")
    return 0
