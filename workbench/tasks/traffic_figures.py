"""Figures of the traffic tasks: boxes drawn on frames, lane masks over frames.

Drawn with matplotlib patches: Keras' own box drawing needs OpenCV, which nothing else here uses.
"""

from __future__ import annotations

import numpy as np

LANE_COLOURS = np.array([[0, 0, 0, 0], [0.1, 0.8, 0.2, 0.45], [0.2, 0.4, 1.0, 0.35]])  # off-road clear


def box_gallery(frames: np.ndarray, truth: list[np.ndarray], found: list | None, class_names: list[str],
                title: str, min_score: float = 0.3):
    """One frame per row: true boxes in white, detections (score >= min_score) in orange with scores."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    height, width = frames.shape[1:3]
    fig = Figure(figsize=(min(12.0, width / 32), (height / 32 + 0.35) * len(frames)), layout="constrained")
    for k, ax in enumerate(np.atleast_1d(fig.subplots(len(frames), 1))):
        ax.imshow(frames[k])
        for x0, y0, x1, y1 in np.asarray(truth[k]).reshape(-1, 4):
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="white", linewidth=1.4))
        if found is not None:
            boxes, labels, scores = found[k]
            for (x0, y0, x1, y1), label, score in zip(boxes, labels, scores):
                if score < min_score:
                    continue
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="orange", linewidth=1.1))
                name = f"{class_names[label]} " if len(class_names) > 1 else ""
                ax.text(x0, y0 - 1, f"{name}{score:.2f}", color="orange", fontsize=6, va="bottom")
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return fig


def lane_overlay(frames: np.ndarray, predicted: np.ndarray, truth: np.ndarray, class_names: list[str], title: str):
    """Predicted lane classes tinted over each frame, the true classes' borders in yellow."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    height, width = frames.shape[1:3]
    fig = Figure(figsize=(min(12.0, width / 32), (height / 32 + 0.35) * len(frames)), layout="constrained")
    for k, ax in enumerate(np.atleast_1d(fig.subplots(len(frames), 1))):
        ax.imshow(frames[k])
        ax.imshow(LANE_COLOURS[np.clip(predicted[k], 0, len(LANE_COLOURS) - 1)])
        ax.contour(truth[k].astype(float), levels=np.arange(0.5, len(class_names)), colors="yellow", linewidths=0.6)
        ax.axis("off")
    handles = [Patch(color=LANE_COLOURS[i][:3], label=name) for i, name in enumerate(class_names) if i]
    fig.axes[0].legend(handles=handles, loc="upper right", fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig
