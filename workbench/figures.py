"""Figures shared by tasks: training curves, confusion matrices, image grids.

Built on matplotlib's object API (no pyplot state), so they work the same in a script, a
papermill kernel or a live notebook, and can be logged to MLflow or shown inline.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure


def training_curves(history: dict[str, list[float]]) -> Figure:
    """One panel per metric, training and validation overlaid, x = epoch (1-based)."""
    names = [k for k in history if not k.startswith("val_") and f"val_{k}" in history] or \
        [k for k in history if not k.startswith("val_")]
    fig = Figure(figsize=(5 * max(1, len(names)), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(names))))
    for ax, name in zip(axes, names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in history:
                values = history[key]
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set(title=name, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def confusion_matrix(y_true, y_pred, class_names: list[str]) -> Figure:
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(4.5, 0.55 * len(class_names) + 2)
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=list(range(len(class_names))), display_labels=class_names,
        ax=ax, colorbar=False, xticks_rotation=45, cmap="Blues")
    ax.set_title("Confusion matrix (test split)")
    return fig


def image_grid(images: np.ndarray, titles: list[str], columns: int = 8, title: str = "") -> Figure:
    count = max(1, len(images))
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(1.6 * columns, 1.9 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, label in zip(axes, images, titles):
        image = np.asarray(image)
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
        ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
