"""Task `tabular`: classify rows of numbers, beside a logistic regression on the same splits."""

from __future__ import annotations

import numpy as np

from workbench.config import Option
from workbench.tasks.base import ClassificationTask, Evaluation


class TabularTask(ClassificationTask):
    name = "tabular"
    datasets = ("breast-cancer",)
    models = ("mlp", "linear")
    losses = ("sparse_categorical_crossentropy", "categorical_crossentropy")
    default_dataset = "breast-cancer"
    default_model = "mlp"
    default_loss = "sparse_categorical_crossentropy"
    default_epochs = 30  # a few hundred rows: many cheap epochs
    options = (Option("hidden_units", int, 64, "width of each of the mlp's two hidden layers", minimum=1),)

    def search_space(self, model: str) -> dict[str, dict]:
        return {**super().search_space(model), "hidden_units": {"type": "categorical", "choices": [16, 64, 256]}}

    def load_data(self, config):
        from workbench_tabular.data import load_sklearn

        return load_sklearn(config.dataset, config)

    def build_model(self, config, data):
        import keras

        from workbench.models import blocks

        inputs = keras.Input(shape=data.input_shape, name="features")
        x = inputs
        if config.model == "mlp":
            for _ in range(2):
                x = blocks.dense(x, config.hidden_units, config)
        outputs = blocks.classifier_head(x, data.num_classes, config)
        return keras.Model(inputs, outputs, name=f"tabular_{config.model}")

    def evaluate(self, model, data, config) -> Evaluation:
        from workbench.data.batches import predict
        from workbench.evaluation import classification_report

        return classification_report(data.y_test, predict(model, data.x_test), data.class_names)

    def baseline(self, data, config) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression

        classifier = LogisticRegression(max_iter=2000).fit(data.x_train, data.y_train)
        return {"baseline_test_accuracy": float(classifier.score(data.x_test, data.y_test))}

    def preview(self, data):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.5), layout="constrained")
        ax = fig.subplots()
        shown = min(12, data.x_train.shape[1])
        ax.boxplot([data.x_train[:, i] for i in range(shown)])
        ax.set(title=f"{data.name}: standardized features 1-{shown} (train, {len(data.x_train)} rows)",
               xlabel="feature", ylabel="value")
        counts = np.bincount(data.y_train, minlength=data.num_classes)
        ax.text(1.0, 1.02, "  ".join(f"{n}: {c}" for n, c in zip(data.class_names, counts)),
                transform=ax.transAxes, ha="right", fontsize=8)
        return [fig]
