"""A pipeline run's training runs, read back by each run's task main metric: a classifier's test accuracy
(higher is better), transcribe's word error rate and generate's perplexity (lower is better). The runs are
fabricated in a real MLflow store in the test's home, shaped as a pipeline run and its notebooks log them."""

from __future__ import annotations

import time

import pytest

from workbench.tasks.configure import make_config

START = int(time.time() * 1000)


def logged(experiment_id: str, name: str, started: int, tags: dict[str, str], params: dict[str, str] | None = None,
           metrics: dict[str, float | list[float]] | None = None, status: str = "FINISHED") -> str:
    """One run, as MLflow itself stores it: tags, params, metrics (a list is a per-epoch curve)."""
    from mlflow.entities import Metric, Param, RunTag

    from workbench import tracking

    c = tracking.client()
    run_id = c.create_run(experiment_id, start_time=START + started, run_name=name, tags=tags).info.run_id
    logged_metrics = []
    for key, value in (metrics or {}).items():
        values = value if isinstance(value, list) else [value]
        logged_metrics += [Metric(key, float(v), START + started + step, step) for step, v in enumerate(values)]
    c.log_batch(run_id, metrics=logged_metrics, params=[Param(k, str(v)) for k, v in (params or {}).items()],
                tags=[RunTag(k, v) for k, v in tags.items()])
    c.set_terminated(run_id, status)
    return run_id


def training(experiment_id: str, step_run_id: str, started: int, task: str, model: str, dataset: str,
             metrics: dict[str, float | list[float]], status: str = "FINISHED") -> str:
    """A training run a step's notebook made: nested under the step run, the config as params (what
    `tracking.RunLogger.log_config` logs), the task/model/dataset tags, its epoch curves and test metrics."""
    config = make_config(task=task, model=model, dataset=dataset, epochs=2)
    tags = {"mlflow.parentRunId": step_run_id, "task": task, "model": model, "dataset": dataset}
    return logged(experiment_id, f"{model}-{dataset}", started, tags, config.to_dict(), metrics, status)


@pytest.fixture
def pipeline_run(home):
    """Pipeline `tiny`: steps images, transcribe, generate, a step whose training failed, a report step."""
    from workbench import tracking
    from workbench.pipelines.runs import KIND_TAG, PIPELINE_RUN_TAG, PIPELINE_TAG, STEP_TAG

    c = tracking.client()
    experiments = {name: c.create_experiment(name) for name in
                   ("workbench-pipelines", "workbench-images", "workbench-transcribe", "workbench-generate")}
    pipelines = experiments["workbench-pipelines"]
    parent = logged(pipelines, "tiny-run", 0, {PIPELINE_TAG: "tiny", KIND_TAG: "pipeline"}, {"epochs": "2"})

    def step(name: str, started: int) -> str:
        return logged(pipelines, name, started, {"mlflow.parentRunId": parent, PIPELINE_TAG: "tiny",
                                                 PIPELINE_RUN_TAG: parent, STEP_TAG: name, KIND_TAG: "pipeline-step"})

    runs = {"parent": parent}
    runs["images"] = training(experiments["workbench-images"], step("images", 10), 11, "images", "mlp", "digits", {
        "val_accuracy": [0.7, 0.85], "val_loss": [0.9, 0.5], "best_val_accuracy": 0.85,
        "test_accuracy": 0.9, "test_loss": 0.4, "baseline_test_accuracy": 0.8})
    runs["transcribe"] = training(
        experiments["workbench-transcribe"], step("transcribe", 20), 21, "transcribe", "ctc-rnn", "spoken-sentences",
        {"val_loss": [40.0, 25.0], "best_val_loss": 25.0, "test_wer": 0.3, "test_cer": 0.12,
         "test_wer_digits": 0.1, "baseline_test_wer": 0.45, "baseline_test_cer": 0.2, "baseline_clips": 120})
    runs["generate"] = training(experiments["workbench-generate"], step("generate", 30), 31, "generate", "gpt",
                                "fortunes", {"val_loss": [4.5, 3.9], "best_val_loss": 3.9, "test_perplexity": 40.0,
                                             "test_cross_entropy": 3.69, "baseline_test_perplexity": 50.0})
    runs["failed"] = training(experiments["workbench-transcribe"], step("flaky", 40), 41, "transcribe", "ctc-rnn",
                              "spoken-sentences", {"val_loss": [40.0]}, status="FAILED")  # no test metrics
    step("report", 50)  # a step that trained nothing
    return runs


def test_training_runs_keeps_each_run_with_its_tasks_main_metric(pipeline_run):
    from workbench import tracking
    from workbench.pipelines.runs import MainMetric, latest_pipeline_run, main_metric, training_runs

    assert latest_pipeline_run("tiny") == pipeline_run["parent"]
    found = training_runs(pipeline_run["parent"])
    assert [(step, run.info.run_id) for step, run in found] == [
        ("images", pipeline_run["images"]), ("transcribe", pipeline_run["transcribe"]),
        ("generate", pipeline_run["generate"])]  # not the failed one, which logged no test metric
    assert [main_metric(run) for _, run in found] == [
        MainMetric("test_accuracy", "max"), MainMetric("test_wer", "min"), MainMetric("test_perplexity", "min")]
    assert main_metric(tracking.client().get_run(pipeline_run["parent"])) is None  # a pipeline run has no task
    assert MainMetric("test_wer", "min").gain(0.3, 0.45) == pytest.approx(0.15)  # positive: better than baseline
    assert MainMetric("test_accuracy", "max").gain(0.9, 0.8) == pytest.approx(0.1)


def test_the_demo_table_names_each_rows_main_metric_and_its_direction(pipeline_run, capsys):
    from workbench.cli.demo import print_results

    print_results("tiny")
    lines = capsys.readouterr().out.strip().splitlines()
    assert "each model against its classical baseline" in lines[0]
    assert lines[1].split() == ["task", "dataset", "model", "metric", "better", "score", "baseline", "gain"]
    assert [line.split() for line in lines[2:]] == [
        ["images", "digits", "mlp", "test_accuracy", "higher", "0.9000", "0.8000", "+0.1000"],
        ["transcribe", "spoken-sentences", "ctc-rnn", "test_wer", "lower", "0.3000", "0.4500", "+0.1500"],
        ["generate", "fortunes", "gpt", "test_perplexity", "lower", "40.0000", "50.0000", "+10.0000"]]


@pytest.mark.slow
def test_evaluate_notebook_stops_at_once_for_a_task_it_does_not_score(pipeline_run, tmp_path):
    """nightly.yaml's evaluate step scores classifiers only: a transcribe run gets one clear message
    naming its main metric and direction, before any model or data is loaded."""
    from workbench import tracking
    from workbench.home import NOTEBOOKS_DIR
    from workbench.notebooks import execute

    step_run_id = tracking.client().get_run(pipeline_run["transcribe"]).data.tags["mlflow.parentRunId"]
    error = execute(NOTEBOOKS_DIR / "evaluate.ipynb", {"train_step_run_id": step_run_id},
                    tmp_path / "evaluate.ipynb", echo=False)
    assert error is not None and "failed: ConfigError" in error
    assert "invalid value for 'task': 'transcribe' (allowed: a classification task" in error
    assert f"run {pipeline_run['transcribe']} is judged by test_wer (lower is better)" in error
