"""Test-split metrics shared by classification tasks: accuracy, per-class precision/recall,
macro-F1, and the confusion matrix figure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.tasks.base import Evaluation


@dataclass
class ClassificationEvaluation(Evaluation):
    predicted: np.ndarray | None = None


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:  # one sigmoid unit
        return (probabilities[:, 0] >= 0.5).astype(np.int64)
    return probabilities.argmax(axis=-1)


def classification_report(y_true, probabilities, class_names: list[str]) -> ClassificationEvaluation:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    from workbench.figures import confusion_matrix

    y_true = np.asarray(y_true)
    predicted = predicted_classes(np.asarray(probabilities))
    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, predicted, labels=labels, zero_division=0)
    metrics = {
        "test_accuracy": float(accuracy_score(y_true, predicted)),
        "test_macro_f1": float(f1_score(y_true, predicted, labels=labels, average="macro", zero_division=0)),
    }
    for i, name in enumerate(class_names):
        key = metric_safe(name)
        metrics[f"test_precision_{key}"] = float(precision[i])
        metrics[f"test_recall_{key}"] = float(recall[i])
    table = {
        "class": list(class_names), "precision": precision.tolist(), "recall": recall.tolist(),
        "f1": f1.tolist(), "support": support.tolist(),
    }
    return ClassificationEvaluation(
        metrics=metrics,
        figures={"confusion_matrix": confusion_matrix(y_true, predicted, class_names)},
        tables={"per_class": table},
        predicted=predicted,
    )


def metric_safe(name: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces; keep it simple."""
    return "".join(c if c.isalnum() else "_" for c in name).strip("_") or "class"
