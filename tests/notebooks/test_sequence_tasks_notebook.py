"""`workbench train` for text and speech goes through the same notebook and logs the same things."""

import os
import shutil

import numpy as np
import pytest

from conftest import all_runs, artifact_paths, run_cli
from workbench.data import speech_synthesis
from workbench.data.text import FORTUNES_DIR

pytestmark = pytest.mark.slow


def _train_and_read_back(home, *flags):
    result = run_cli("train", *flags, env={"WORKBENCH_HOME": str(home)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (run,) = all_runs(home)
    assert run.info.status == "FINISHED"
    paths = artifact_paths(home, run.info.run_id)
    for expected in ("figures/training_curves.png", "figures/confusion_matrix.png",
                     f"notebook/train-{run.info.run_id}.ipynb", f"notebook/train-{run.info.run_id}.html"):
        assert expected in paths
    for key in ("test_accuracy", "test_macro_f1", "test_loss", "baseline_test_accuracy", "val_loss"):
        assert key in run.data.metrics, key
    return run, paths


def _load_logged_model(home, run):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    return mlflow.keras.load_model(f"models:/{run.outputs.model_outputs[0].model_id}")


def test_text_transformer_through_the_notebook_predicts_on_raw_strings(home, tmp_path):
    if FORTUNES_DIR.exists():
        dataset = "fortunes"
    else:  # a tiny CSV in the real format keeps the test meaningful without the Debian package
        csv = tmp_path / "t.csv"
        csv.write_text("text,label\n" + "".join(f'"space rocket orbit number {i}",space\n'
                                                f'"bread dough oven number {i}",cooking\n' for i in range(40)))
        dataset = f"csv:{csv}"
    run, paths = _train_and_read_back(home, "--task", "text", "--model", "transformer", "--dataset", dataset,
                                      "--epochs", "1")
    assert "tables/confident_mistakes.json" in paths
    assert "baseline_test_macro_f1" in run.data.metrics
    model = _load_logged_model(home, run)
    import tensorflow as tf

    probabilities = model.predict(tf.constant(["Computers are useless. They can only give you answers.",
                                               "Politics is the art of the possible."]), verbose=0)
    assert probabilities.shape[0] == 2 and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed")
def test_speech_ds_cnn_through_the_notebook_predicts_on_raw_waveforms(home, tmp_path):
    tree = speech_synthesis.generate(tmp_path / "spoken", speaker_count=8, utterances=1, seed=5,
                                     split=(0.25, 0.25))
    run, paths = _train_and_read_back(home, "--task", "speech", "--model", "ds-cnn", "--dataset",
                                      f"folder:{tree}", "--epochs", "1", "--batch-size", "16",
                                      "--synthetic-voices", "2")
    assert any(p.startswith("misclassified_audio/") and p.endswith(".wav") for p in paths)
    assert "figures/misclassified_spectrograms.png" in paths
    assert "test_recall_yes" in run.data.metrics and run.data.metrics["test_speakers"] == 2
    assert run.data.params["synthetic_voices"] == "2"
    model = _load_logged_model(home, run)
    waves = np.random.default_rng(0).normal(0, 0.1, (3, 16_000)).astype("float32")
    assert model.predict(waves, verbose=0).shape == (3, 12)
