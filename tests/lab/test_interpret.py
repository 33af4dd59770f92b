"""Explanations of real logged models: saliency, Grad-CAM, word occlusion, and interpret.ipynb."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_saliency_of_a_single_output_model_is_the_absolute_input_gradient():
    """A linear 'steering' model: d output / d pixel is the weight of that pixel, known exactly."""
    import keras

    inputs = keras.Input(shape=(4, 4, 3), name="frame")
    steering = keras.layers.Dense(1, name="steering")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, steering)
    weights = np.linspace(-1, 1, 48, dtype="float32").reshape(48, 1)
    model.get_layer("steering").set_weights([weights, np.zeros(1, "float32")])
    from workbench.lab.interpret import grad_cam, saliency

    frames = np.random.default_rng(0).random((2, 4, 4, 3), dtype="float32")
    maps = saliency(model, frames)
    assert maps.shape == frames.shape
    np.testing.assert_allclose(maps[1].ravel(), np.abs(weights[:, 0]), rtol=1e-6)
    with pytest.raises(ValueError, match="no 2-D convolutional layer"):
        grad_cam(model, frames)


@pytest.mark.slow
def test_image_model_from_mlflow_saliency_grad_cam_and_the_notebook(home, tmp_path):
    import workbench
    from workbench.home import NOTEBOOKS_DIR
    from workbench.lab.interpret import grad_cam, last_conv_layer, latest_run_with_model, load_logged_model, saliency
    from workbench.notebooks import execute

    trained = workbench.train("images", dataset="digits", model="cnn", epochs=1, verbose=0)
    assert latest_run_with_model("images") == trained.run_id
    model = load_logged_model(trained.run_id)  # the artifact in MLflow, not the object in memory
    data = workbench.load_data(trained.config)
    images = data.x_test[:4]

    maps = saliency(model, images)
    assert maps.shape == images.shape and maps.max() > 0 and np.isfinite(maps).all()
    assert not np.allclose(maps[0], maps[1])  # each example gets its own map

    layer = last_conv_layer(model)
    assert type(model.get_layer(layer)).__name__ == "Conv2D"
    cams = grad_cam(model, images)
    assert cams.shape == images.shape[:3] and cams.min() >= 0 and cams.max() <= 1 + 1e-6
    assert cams.reshape(len(images), -1).max(axis=1).min() > 0  # every example has a hot spot

    executed = tmp_path / "interpret.ipynb"
    assert execute(NOTEBOOKS_DIR / "interpret.ipynb", {"examples": 4}, executed, echo=False) is None
    outputs = [o for cell in json.loads(executed.read_text())["cells"] for o in cell.get("outputs", [])]
    assert any(trained.run_id in "".join(o.get("text", "")) for o in outputs)  # the latest run, found by itself
    assert any("image/png" in o.get("data", {}) for o in outputs)


@pytest.mark.slow
def test_word_occlusion_on_a_logged_text_model_scores_every_word(home):
    import workbench
    from workbench.lab.interpret import explain, load_logged_model, word_occlusion

    trained = workbench.train("text", dataset="fortunes", model="bow", epochs=1, verbose=0)
    model = load_logged_model(trained.run_id)
    data = workbench.load_data(trained.config)
    text = str(data.x_test[0])
    scores = word_occlusion(model, text)
    assert [word for word, _ in scores] == text.split()
    assert any(score != 0 for _, score in scores)
    predicted = int(np.argmax(model.predict(np.array([text], dtype=object), verbose=0)))
    by_class = word_occlusion(model, text, target=predicted)
    assert by_class == scores  # by default the predicted class is explained

    (first, *_) = explain(model, data, count=2)
    assert first.data.count("<span") == len(text.split())
