"""A ServedModel as an MLflow pyfunc: the network and its decoding reload together."""

from __future__ import annotations

import contextlib
import io
import tempfile

import mlflow.pyfunc
from mlflow.models import infer_signature
from mlflow.types.schema import Schema, TensorSpec

from workbench.models.served import ServedModel


class ServedPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.served = ServedModel.load(context.artifacts["served"])

    def predict(self, context, model_input, params=None):
        if hasattr(model_input, "to_numpy"):  # pyfunc hands column inputs over as a DataFrame
            model_input = model_input.iloc[:, 0].tolist() if model_input.shape[1] == 1 else model_input.to_numpy()
        return list(self.served.predict(model_input))


def log_served(model: ServedModel, input_example, example_output, requirements: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        model.save(folder)
        signature = infer_signature(input_example, list(example_output))
        if model.any_size_input:  # images of any height and width: only the channels are fixed
            spec = signature.inputs.inputs[0]
            signature.inputs = Schema([TensorSpec(spec.type, (-1,) * (len(spec.shape) - 1) + spec.shape[-1:])])
        mlflow.pyfunc.log_model(name="model", python_model=ServedPyfunc(), artifacts={"served": folder},
                                signature=signature,
                                input_example=input_example, pip_requirements=requirements)
