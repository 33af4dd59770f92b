"""Detection scores the way COCO computes them: ground truth and detections as COCO JSON, mAP by
pycocotools' COCOeval, and the precision-recall curve at IoU 0.5.

Boxes come in as float32 (k, 4) [x0, y0, x1, y1] in frame pixels and labels as class indices;
COCO wants [x, y, width, height] and ids from 1, so image i is id i + 1 and class c is id c + 1.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RECALL_POINTS = np.linspace(0.0, 1.0, 101)   # COCOeval's recall thresholds


@dataclass
class DetectionScores:
    map50: float           # AP at IoU 0.5 (COCOeval stats[1])
    map: float             # AP averaged over IoU 0.5:0.95 (stats[0])
    map75: float           # AP at IoU 0.75 (stats[2])
    recall: np.ndarray = field(default_factory=lambda: RECALL_POINTS.copy())    # the 101 recall points
    precision: np.ndarray = field(default_factory=lambda: np.zeros(101))        # at IoU 0.5, per recall point


def _xywh(box) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def coco_ground_truth(boxes: list[np.ndarray], labels: list[np.ndarray], class_names: list[str],
                      frame_size: tuple[int, int]) -> dict:
    """A COCO dataset dict of the boxes of each frame; `frame_size` is (height, width) like every
    frame size in the workbench."""
    height, width = frame_size
    annotations = []
    for index, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        for box, label in zip(np.asarray(image_boxes).reshape(-1, 4), np.asarray(image_labels).reshape(-1)):
            x, y, w, h = _xywh(box)
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, "category_id": int(label) + 1,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    return {
        "info": {"description": "workbench detection ground truth"},
        "images": [{"id": index + 1, "width": int(width), "height": int(height), "file_name": str(index + 1)}
                   for index in range(len(boxes))],
        "categories": [{"id": index + 1, "name": name} for index, name in enumerate(class_names)],
        "annotations": annotations,
    }


def coco_detections(boxes: list[np.ndarray], labels: list[np.ndarray], scores: list[np.ndarray]) -> list[dict]:
    """COCO results (image_id, category_id, bbox as xywh, score) of the detections of each frame."""
    results = []
    for index, (image_boxes, image_labels, image_scores) in enumerate(zip(boxes, labels, scores)):
        for box, label, score in zip(np.asarray(image_boxes).reshape(-1, 4), np.asarray(image_labels).reshape(-1),
                                     np.asarray(image_scores).reshape(-1)):
            results.append({"image_id": index + 1, "category_id": int(label) + 1, "bbox": _xywh(box),
                            "score": float(score)})
    return results


def coco_map(ground_truth: dict, detections: list[dict]) -> DetectionScores:
    """COCOeval's bbox AP (maxDets 100) and the precision-recall curve at IoU 0.5 over all areas,
    averaged over the classes that have ground truth.

    No detections scores 0 everywhere. Without any ground-truth box AP is undefined (COCOeval says
    -1); it is reported as 0.0 too, so a metric is always a number in [0, 1]."""
    if not detections or not ground_truth.get("annotations"):
        return DetectionScores(0.0, 0.0, 0.0)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports every step on stdout
        truth = COCO()
        truth.dataset = ground_truth
        truth.createIndex()
        found = truth.loadRes([dict(d) for d in detections])  # loadRes adds keys to the dicts it gets
        evaluation = COCOeval(truth, found, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(0.0, float(s)) for s in evaluation.stats]
    params = evaluation.params
    # precision is (IoU thresholds, recall points, classes, area ranges, max detections); -1 = no ground truth
    curves = evaluation.eval["precision"][0, :, :, params.areaRngLbl.index("all"), params.maxDets.index(100)]
    present = curves > -1
    counts = present.sum(axis=1)
    precision = np.where(counts > 0, np.where(present, curves, 0).sum(axis=1) / np.maximum(counts, 1), 0.0)
    return DetectionScores(map50=stats[1], map=stats[0], map75=stats[2], recall=np.asarray(params.recThrs, float),
                           precision=precision.astype(float))


def precision_recall_figure(scores: DetectionScores, baseline: DetectionScores | None = None,
                            title: str = "Precision-recall at IoU 0.5 (test split)") -> "Figure":
    """The model's precision-recall curve, and the baseline's when given; AP50 in the legend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.plot(scores.recall, scores.precision, label=f"model (AP50 {scores.map50:.3f})")
    if baseline is not None:
        ax.plot(baseline.recall, baseline.precision, linestyle="--", color="grey",
                label=f"baseline (AP50 {baseline.map50:.3f})")
    ax.set(title=title, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.05))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return fig
