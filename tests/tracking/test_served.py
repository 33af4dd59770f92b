"""A ServedModel logs as a pyfunc that reloads its network and decoding: raw input in, text out."""

from __future__ import annotations

import numpy as np

from conftest import client

def test_served_model_reloads_as_pyfunc_that_returns_text(home):
    import keras
    import mlflow

    from served_fixture import LetterPicker
    from workbench import make_config
    from workbench.tracking import tracked_run

    inputs = keras.Input((3,))
    network = keras.Model(inputs, keras.layers.Dense(3, use_bias=False, kernel_initializer="identity")(inputs))
    served = LetterPicker(network, {"alphabet": "xyz"})
    example = np.eye(3, dtype="float32")[[2, 0]]
    assert served.predict(example) == ["z", "x"]

    config = make_config(task="images", dataset="digits", model="mlp", epochs=1)
    with tracked_run(config) as run:
        run.log_model(served, example, served.predict(example))
        run_id = run.run_id
    logged = client(home).get_run(run_id).outputs.model_outputs[0].model_id
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    reloaded = mlflow.pyfunc.load_model(f"models:/{logged}")
    assert list(reloaded.predict(np.eye(3, dtype="float32")[[1, 1, 0]])) == ["y", "y", "x"]
