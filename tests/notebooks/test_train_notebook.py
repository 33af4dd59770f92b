"""End to end: `workbench train` runs notebooks/train.ipynb with papermill and MLflow holds it all."""

import json

import numpy as np
import pytest

from conftest import all_runs, artifact_paths, client, run_cli
from workbench.tasks.configure import make_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("e2e") / "home"
    env = {"WORKBENCH_HOME": str(home)}
    saved = {k: os.environ.pop(k, None) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    result = run_cli("train", "--task", "images", "--dataset", "digits", "--model", "cnn", "--epochs", "2",
                     env=env)
    for k, v in saved.items():
        if v is not None:
            os.environ[k] = v
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = all_runs(home)
    return home, run, result


def test_command_prints_where_the_run_is(trained):
    home, run, result = trained
    assert f"run {run.info.run_id}: FINISHED" in result.stdout
    assert "workbench ui" in result.stdout and "test_accuracy" in result.stdout


def test_run_has_every_config_value_as_param(trained):
    _, run, _ = trained
    expected = make_config(task="images", dataset="digits", model="cnn", epochs=2).to_dict()
    assert run.data.params == {k: str(v) for k, v in expected.items()}
    assert run.info.status == "FINISHED"


def test_per_epoch_train_and_validation_metrics(trained):
    home, run, _ = trained
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"):
        history = client(home).get_metric_history(run.info.run_id, key)
        assert sorted(p.step for p in history) == [0, 1], key


def test_test_metrics_baseline_and_overfitting_signal(trained):
    _, run, _ = trained
    metrics = run.data.metrics
    for key in ("test_loss", "test_accuracy", "test_macro_f1", "test_precision_3", "test_recall_7",
                "baseline_test_accuracy", "baseline_val_accuracy", "train_val_gap_accuracy"):
        assert key in metrics, key
    assert metrics["test_accuracy"] > 0.5  # two epochs on digits already learn
    assert metrics["baseline_test_accuracy"] > 0.9  # logistic regression on 8x8 digits
    assert metrics["test_examples"] == 360


def test_figures_tables_and_notebook_are_attached(trained):
    home, run, _ = trained
    paths = artifact_paths(home, run.info.run_id)
    run_id = run.info.run_id
    for expected in ("figures/training_curves.png", "figures/confusion_matrix.png", "figures/misclassified.png",
                     "tables/per_class.json", f"notebook/train-{run_id}.ipynb", f"notebook/train-{run_id}.html"):
        assert expected in paths, (expected, paths)
    local = client(home).download_artifacts(run_id, "notebook", str(home / "download"))
    notebook = json.loads(open(f"{local}/train-{run_id}.ipynb").read())
    outputs = [o for c in notebook["cells"] for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "figures are shown inline"
    assert not any(o.get("output_type") == "error" for o in outputs)
    html = open(f"{local}/train-{run_id}.html").read()
    assert "<html" in html and "data:image/png;base64" in html


def test_tags_dataset_and_experiment_kind(trained):
    home, run, _ = trained
    tags = run.data.tags
    for key in ("tensorflow_version", "keras_version", "devices", "git_commit", "python_version"):
        assert tags.get(key), key
    assert "CPU" in tags["devices"]
    contexts = {d.tags[0].value for d in run.inputs.dataset_inputs}
    assert contexts == {"train", "validation", "test"}
    experiment = client(home).get_experiment(run.info.experiment_id)
    assert experiment.name == "workbench-images"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_logged_model_loads_and_predicts(trained):
    import mlflow

    home, run, _ = trained
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    model_outputs = run.outputs.model_outputs
    assert len(model_outputs) == 1
    model = mlflow.keras.load_model(f"models:/{model_outputs[0].model_id}")
    from sklearn.datasets import load_digits

    images = (load_digits().images[:20] / 16.0).astype("float32")[..., None]
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (20, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
    info = mlflow.models.get_model_info(f"models:/{model_outputs[0].model_id}")
    assert info.signature is not None and info.saved_input_example_info is not None


def test_the_executed_notebook_is_named_after_the_run_the_kernel_created(trained):
    home, run, result = trained
    run_id = run.info.run_id
    assert {p.name for p in (home / "notebooks").iterdir()} == {f"train-{run_id}.ipynb", f"train-{run_id}.html"}
    assert f"executed notebook: {home / 'notebooks' / f'train-{run_id}.ipynb'}" in result.stdout


def test_a_kernel_names_its_first_top_level_run_in_the_hand_off_file(home, tmp_path, monkeypatch):
    import workbench
    from workbench.handoff import RUN_ID_FILE_ENV

    handoff = tmp_path / "run_id"
    monkeypatch.setenv(RUN_ID_FILE_ENV, str(handoff))
    first = workbench.train("images", dataset="digits", model="mlp", epochs=1, verbose=0, evaluate=False)
    assert handoff.read_text() == first.run_id
    workbench.train("images", dataset="digits", model="mlp", epochs=1, verbose=0, evaluate=False,
                    parent_run_id=first.run_id)
    workbench.train("images", dataset="digits", model="mlp", epochs=1, verbose=0, evaluate=False)
    assert handoff.read_text() == first.run_id
    assert not (tmp_path / "run_id.partial").exists()
