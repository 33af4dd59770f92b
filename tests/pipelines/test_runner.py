"""The DAG runner: notebook steps in a DAG, outputs handed downstream, one MLflow parent run with a
child run per step, unchanged steps skipped, failures, timeouts and retries.

The step notebooks are tiny fixtures (no TensorFlow), except one test that runs the real
training notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import all_runs, artifact_paths, client
from pipeline_testing import outputs_of, pipeline_runs, steps_of, summary_statuses, workbench, write


@pytest.fixture(autouse=True)
def kernel():
    from workbench.notebooks import ensure_kernel

    ensure_kernel()


DAG = """\
    name: dag
    parameters:
      start: 21
      label: first
    steps:
      emit:
        notebook: FIXTURES/emit.ipynb
        parameters: {number: "${params.start}", pause: 3.0}
      side:
        notebook: FIXTURES/emit.ipynb
        parameters: {number: 5, pause: 3.0}
      double:
        notebook: FIXTURES/double.ipynb
        needs: [emit]
        parameters: {value: "${steps.emit.outputs.number}", label: "${params.label} after ${steps.emit.run_id}"}
    """


@pytest.mark.slow
def test_dag_runs_in_parallel_hands_outputs_downstream_and_builds_the_mlflow_tree(home, tmp_path):
    path = write(tmp_path, DAG)
    result = workbench("pipeline", "run", str(path), "--max-parallel", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pipeline dag FINISHED" in result.stdout
    assert summary_statuses(result.stdout, ("emit", "side", "double")) == {
        "emit": "FINISHED", "side": "FINISHED", "double": "FINISHED"}

    (parent,) = pipeline_runs(home)
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"start": "21", "label": "first"}
    steps = steps_of(home, parent)
    assert set(steps) == {"emit", "side", "double"}
    for name, run in steps.items():
        assert run.info.status == "FINISHED"
        notebooks = {f"notebook/{name}-attempt1.ipynb", f"notebook/{name}-attempt1.html"}
        assert notebooks <= artifact_paths(home, run.info.run_id)

    emitted, side = outputs_of(home, steps["emit"]), outputs_of(home, steps["side"])
    assert emitted["number"] == 21
    assert emitted["started"] < side["ended"] and side["started"] < emitted["ended"], "independent steps overlap"
    doubled = outputs_of(home, steps["double"])
    assert doubled == {"doubled": 42, "label": f"first after {steps['emit'].info.run_id}"}
    # a run the step's notebook starts nests under the step's run
    (inner,) = [r for r in all_runs(home) if r.info.run_name == "inner"]
    assert inner.data.tags["mlflow.parentRunId"] == steps["double"].info.run_id
    assert inner.data.metrics["doubled"] == 42

    # unchanged: nothing runs again, and each step points at the run that did the work
    again = workbench("pipeline", "run", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("UNCHANGED") >= 3
    second = pipeline_runs(home)[-1]
    for name, run in steps_of(home, second).items():
        assert run.data.tags["workbench.step_status"] == "UNCHANGED"
        assert run.data.tags["workbench.cached_from"] == steps[name].info.run_id
    assert not (home / "notebooks" / "pipelines" / "dag" / second.info.run_id).exists()

    # a new label reruns only `double`; the unchanged `emit` still hands it the recorded number
    third = workbench("pipeline", "run", str(path), "-p", "label=second")
    assert third.returncode == 0, third.stdout + third.stderr
    latest = steps_of(home, pipeline_runs(home)[-1])
    assert {n: r.data.tags["workbench.step_status"] for n, r in latest.items()} == {
        "emit": "UNCHANGED", "side": "UNCHANGED", "double": "FINISHED"}
    assert outputs_of(home, latest["double"]) == {"doubled": 42,
                                                  "label": f"second after {steps['emit'].info.run_id}"}


@pytest.mark.slow
def test_a_failing_step_skips_its_dependents_while_the_independent_branch_finishes(home, tmp_path):
    path = write(tmp_path, """\
        name: broken
        steps:
          ok:
            notebook: FIXTURES/emit.ipynb
          bad:
            notebook: FIXTURES/fail.ipynb
            parameters: {message: no luck}
          after_bad:
            notebook: FIXTURES/emit.ipynb
            needs: [bad]
          after_ok:
            notebook: FIXTURES/double.ipynb
            needs: [ok]
            parameters: {value: "${steps.ok.outputs.number}"}
        """)
    result = workbench("pipeline", "run", str(path), "--max-parallel", "2")
    assert result.returncode == 1
    assert summary_statuses(result.stdout, ("ok", "bad", "after_bad", "after_ok")) == {
        "ok": "FINISHED", "bad": "FAILED", "after_bad": "SKIPPED", "after_ok": "FINISHED"}
    assert "no luck" in result.stdout and "upstream step 'bad' FAILED" in result.stdout

    (parent,) = pipeline_runs(home)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["step.after_bad"] == "SKIPPED"
    steps = steps_of(home, parent)
    assert set(steps) == {"ok", "bad", "after_ok"}  # a skipped step never started a run
    assert steps["ok"].info.status == steps["after_ok"].info.status == "FINISHED"
    bad = steps["bad"]
    assert bad.info.status == "FAILED" and "RuntimeError: no luck" in bad.data.tags["error"]
    local = client(home).download_artifacts(bad.info.run_id, "notebook/bad-attempt1.ipynb", str(home / "dl"))
    errors = [o for c in json.loads(Path(local).read_text())["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "RuntimeError" and errors[0]["evalue"] == "no luck"


@pytest.mark.slow
def test_a_step_over_its_timeout_is_killed_and_retried(home, tmp_path):
    import psutil

    pids = tmp_path / "pids.txt"
    path = write(tmp_path, f"""\
        name: slow
        steps:
          sleepy:
            notebook: FIXTURES/sleep.ipynb
            parameters: {{seconds: 120, pid_file: "{pids}"}}
            timeout: 8
            retries: 1
        """)
    result = workbench("pipeline", "run", str(path))
    assert result.returncode == 1
    assert result.stdout.count("timed out after 8 s") >= 2 and "retrying" in result.stdout
    kernels = [int(p) for p in pids.read_text().split()]
    assert len(kernels) == 2, "two attempts, each started its notebook"
    assert not any(psutil.pid_exists(p) for p in kernels), "the kernels were killed with their step"

    (parent,) = pipeline_runs(home)
    (step,) = steps_of(home, parent).values()
    assert step.info.status == "FAILED" and "timed out after 8 s" in step.data.tags["error"]
    assert step.data.metrics["attempts"] == 2
    assert step.data.metrics["step_seconds"] < 2 * 8 + 20
    attached = artifact_paths(home, step.info.run_id)
    assert {"notebook/sleepy-attempt1.ipynb", "notebook/sleepy-attempt2.ipynb"} <= attached


def test_runs_a_failed_attempt_left_running_end_failed_with_the_step_error(home, tmp_path):
    """As a killed kernel does: the executor leaves a run RUNNING under the step, in another
    experiment, and fails. The runner ends that run with the step's error."""
    from workbench import tracking
    from workbench.pipelines.attempts import Outcome
    from workbench.pipelines.runner import run_pipeline
    from workbench.pipelines.spec import load_pipeline

    class Abandoning:
        def describe(self) -> str:
            return "an executor that abandons a run"

        def run(self, attempt, should_stop) -> Outcome:
            tracking.client().create_run(tracking.experiment_id("elsewhere"), run_name="abandoned",
                                         tags=attempt.run_tags)
            return Outcome(error="the kernel died")

        def close(self) -> None:
            pass

    path = write(tmp_path, """\
        name: abandon
        steps:
          only: {notebook: FIXTURES/emit.ipynb}
        """)
    result = run_pipeline(load_pipeline(path), executor=Abandoning(), echo=lambda line: None)
    assert result.status == "FAILED" and result.steps["only"].error == "the kernel died"
    (abandoned,) = [r for r in all_runs(home) if r.info.run_name == "abandoned"]
    assert abandoned.data.tags["mlflow.parentRunId"] == result.steps["only"].run_id
    assert abandoned.info.status == "FAILED"
    assert abandoned.data.tags["error"] == "pipeline step only: the kernel died"


@pytest.mark.slow
def test_training_notebook_step_nests_its_run_and_compare_reads_it(home, tmp_path):
    path = write(tmp_path, """\
        name: tiny
        steps:
          train:
            notebook: train.ipynb
            parameters: {task: images, dataset: digits, model: mlp, epochs: 1}
          compare:
            notebook: pipeline_report.ipynb
            needs: [train]
            parameters: {pipeline_run_id: "${pipeline.run_id}"}
        """)
    result = workbench("pipeline", "run", str(path), timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    (parent,) = pipeline_runs(home)
    steps = steps_of(home, parent)
    (training,) = [r for r in all_runs(home) if r.data.tags.get("mlflow.parentRunId") == steps["train"].info.run_id]
    assert training.info.status == "FINISHED" and training.data.tags["task"] == "images"
    (row,) = outputs_of(home, steps["compare"])["comparison"]
    assert row["step"] == "train" and row["run_id"] == training.info.run_id
    assert row["metric"] == "test_accuracy" and row["better"] == "higher"
    assert row["score"] == training.data.metrics["test_accuracy"]
    assert row["baseline"] == training.data.metrics["baseline_test_accuracy"]
    assert row["gain"] == pytest.approx(row["score"] - row["baseline"])
