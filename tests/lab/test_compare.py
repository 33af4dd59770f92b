"""Comparing runs: filters, per-epoch curves, the best run, the parameter plot, UI links, and compare.ipynb."""

from __future__ import annotations

import json
import time

import pytest

from workbench.tasks.configure import make_config


def logged_run(task: str, model: str, status: str, test_accuracy: float | None, curve: list[float],
               test_metric: str = "test_accuracy", curve_metric: str = "val_accuracy", **config_values) -> str:
    """A run in the tracking store shaped like a training run: params, tags, per-epoch curve, test score
    (`test_accuracy` holds the value of `test_metric`, the task's main metric)."""
    from mlflow.entities import Metric, Param, RunTag

    from workbench import tracking

    config = make_config(task=task, model=model, **config_values)
    run_id = tracking.create_run(config)
    now = int(time.time() * 1000)
    metrics = [Metric(curve_metric, value, now + step, step) for step, value in enumerate(curve)]
    if test_accuracy is not None:
        metrics.append(Metric(test_metric, test_accuracy, now, 0))
    tracking.client().log_batch(run_id, metrics=metrics,
                                params=[Param(k, str(v)) for k, v in config.to_dict().items()],
                                tags=[RunTag(k, getattr(config, k)) for k in ("task", "model", "dataset")])
    tracking.client().set_terminated(run_id, status)
    return run_id


@pytest.fixture
def runs(home):
    return {
        "cnn_good": logged_run("images", "cnn", "FINISHED", 0.95, [0.6, 0.9, 0.94], dataset="digits",
                               learning_rate=0.003, optimizer="adam"),
        "cnn_poor": logged_run("images", "cnn", "FINISHED", 0.70, [0.5, 0.65], dataset="digits",
                               learning_rate=0.0001, optimizer="sgd"),
        "mlp": logged_run("images", "mlp", "FINISHED", 0.90, [0.8, 0.88, 0.9], dataset="digits",
                          learning_rate=0.001, optimizer="rmsprop"),
        "failed": logged_run("images", "mlp", "FAILED", None, [0.3], dataset="digits"),
        "text": logged_run("text", "bow", "FINISHED", 0.50, [0.4, 0.5], dataset="fortunes"),
    }


def test_find_runs_filters_by_experiment_task_model_status_and_metric(runs):
    import workbench
    from workbench.lab.compare import find_runs

    assert workbench.find_runs is find_runs and workbench.run_url.__module__ == "workbench.lab.compare"

    everything = find_runs()
    assert set(everything.run_id) == set(runs.values())
    assert list(everything.columns[:4]) == ["run_id", "run_name", "experiment", "status"]
    assert {"params.learning_rate", "metrics.test_accuracy", "metrics.val_accuracy"} <= set(everything.columns)
    assert set(find_runs("workbench-text").run_id) == {runs["text"]}
    assert set(find_runs(task="images", model="cnn").run_id) == {runs["cnn_good"], runs["cnn_poor"]}
    assert set(find_runs(task="images", status="failed").run_id) == {runs["failed"]}
    good = find_runs("workbench-images", where={"test_accuracy": (">=", 0.9)})
    assert set(good.run_id) == {runs["cnn_good"], runs["mlp"]}
    assert set(find_runs(where={"test_accuracy": (">", 0.6), "params.optimizer": ("=", "sgd")}).run_id) \
        == {runs["cnn_poor"]}
    assert find_runs(task="speech").empty


def test_bad_filters_say_what_is_allowed(runs):
    from workbench.lab.compare import find_runs

    with pytest.raises(LookupError, match="no MLflow experiment named 'nope'.*workbench-images"):
        find_runs("nope")
    with pytest.raises(ValueError, match=r"where\['test_accuracy'\].*>, >=, <, <=, =, !="):
        find_runs(where={"test_accuracy": ("=>", 0.9)})
    with pytest.raises(ValueError, match="a number"):
        find_runs(where={"test_accuracy": (">", "high")})


def test_epoch_curves_best_run_and_links(runs):
    from workbench.lab.compare import best_run, epoch_curves, find_runs, run_url

    curves = epoch_curves([runs["cnn_good"], runs["cnn_poor"]], "val_accuracy")
    assert list(curves.columns) == [runs["cnn_good"], runs["cnn_poor"]]
    assert curves[runs["cnn_good"]].tolist() == [0.6, 0.9, 0.94]
    assert curves[runs["cnn_poor"]].iloc[:2].tolist() == [0.5, 0.65] and curves[runs["cnn_poor"]].isna().iloc[2]

    assert best_run("workbench-images").run_id == runs["cnn_good"]
    assert best_run(metric="test_accuracy", mode="min", task="images").run_id == runs["cnn_poor"]
    assert best_run(task="images", model="mlp").run_id == runs["mlp"]  # the failed one has no test score
    assert best_run(task="speech") is None

    row = find_runs(task="text").iloc[0]
    expected = (f"http://127.0.0.1:5000/#/experiments/{row.experiment_id}/runs/{runs['text']}"
                "?workflowType=machine_learning")  # the training-runs view, not the GenAI overview
    assert run_url(row) == run_url(runs["text"]) == expected
    assert run_url(runs["text"], base_url="http://ui:8080/").startswith("http://ui:8080/#/experiments/")


def test_parallel_coordinates_draws_one_line_per_run_over_each_parameter(runs):
    from workbench.lab.compare import find_runs, parallel_coordinates

    finished = find_runs(task="images", status="FINISHED")
    figure = parallel_coordinates(finished, ["learning_rate", "optimizer"], "test_accuracy")
    (ax,) = figure.axes
    assert len(ax.lines) == 3 and all(len(line.get_xdata()) == 3 for line in ax.lines)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["learning_rate", "optimizer", "test_accuracy"]
    labels = {t.get_text() for t in ax.texts}
    assert {"adam", "rmsprop", "sgd", "0.0001", "0.003", "0.7", "0.95"} <= labels
    # learning rates spanning 30x stay linear; the best run (0.003) sits at the top of its axis
    best = next(line for line in ax.lines if line.get_ydata()[-1] == 1.0)
    assert best.get_ydata()[0] == 1.0
    with pytest.raises(ValueError, match="parameters \\['momentumm'\\]"):
        parallel_coordinates(finished, ["momentumm"], "test_accuracy")


@pytest.mark.slow
def test_compare_notebook_shows_real_runs_and_records_the_best(home, tmp_path, monkeypatch):
    import workbench
    from workbench.home import NOTEBOOKS_DIR
    from workbench.notebooks import execute
    from workbench.pipelines.outputs import OUTPUTS_ENV

    trained = workbench.train("images", dataset="digits", model="mlp", epochs=2, verbose=0)
    logged_run("images", "cnn", "FAILED", None, [0.2], dataset="digits")
    outputs = tmp_path / "outputs.json"
    monkeypatch.setenv(OUTPUTS_ENV, str(outputs))
    executed = tmp_path / "compare.ipynb"
    error = execute(NOTEBOOKS_DIR / "compare.ipynb", {"experiment": "workbench-images"}, executed, echo=False)
    assert error is None
    assert json.loads(outputs.read_text()) == {"best_run_id": trained.run_id}
    text = json.dumps(json.loads(executed.read_text())["cells"])
    assert "1 runs with test_accuracy in workbench-images" in text  # the FAILED run has no test score
    assert f"/runs/{trained.run_id}" in text and "image/png" in text


@pytest.mark.slow
def test_compare_notebook_judges_runs_by_their_tasks_main_metric_and_direction(home, tmp_path, monkeypatch):
    """Word error rate: lower is better. With no metric given, the notebook takes the newest run's task's
    main metric and direction, and draws the curve that task watches (val_loss: it has no val_accuracy)."""
    from workbench.home import NOTEBOOKS_DIR
    from workbench.notebooks import execute
    from workbench.pipelines.outputs import OUTPUTS_ENV

    logged_run("images", "cnn", "FINISHED", 0.95, [0.6, 0.9], dataset="digits")  # another task, another metric
    worse = logged_run("transcribe", "ctc-rnn", "FINISHED", 0.40, [2.0, 1.5], test_metric="test_wer",
                       curve_metric="val_loss", learning_rate=0.0001)
    better = logged_run("transcribe", "ctc-rnn", "FINISHED", 0.20, [1.8, 1.0, 0.7], test_metric="test_wer",
                        curve_metric="val_loss", learning_rate=0.003)
    outputs = tmp_path / "outputs.json"
    monkeypatch.setenv(OUTPUTS_ENV, str(outputs))
    executed = tmp_path / "compare.ipynb"
    error = execute(NOTEBOOKS_DIR / "compare.ipynb", {}, executed, echo=False)
    assert error is None, error
    assert json.loads(outputs.read_text()) == {"best_run_id": better}
    text = json.dumps(json.loads(executed.read_text())["cells"])
    assert "2 runs with test_wer in workbench-transcribe" in text
    assert "judged by test_wer (lower is better), the main metric of task transcribe; learning curves of val_loss" \
        in text
    assert "left out: runs of images, which have no test_wer" in text
    assert f"/runs/{better}" in text and f"/runs/{worse}" in text and "test_wer = 0.2000 (lower is better)" in text

    # a threshold keeps the runs at least that good: for a lower-is-better metric, at most it
    error = execute(NOTEBOOKS_DIR / "compare.ipynb", {"task": "transcribe", "threshold": 0.3}, executed, echo=False)
    assert error is None, error
    assert "1 runs with test_wer in workbench-transcribe" in json.dumps(json.loads(executed.read_text())["cells"])
