"""The classical detector beside the learned one: blobs that differ from the frame's background
colour, found by connected components, with thresholds chosen on training frames.

Top-down road scenes are mostly road: the per-channel median of a frame is the road's colour, and
a vehicle is a compact region far from it. Thin structures (lane markings) are removed by a
morphological opening. The threshold and the smallest blob are picked by AP@0.5 on training frames,
so the baseline is fitted the same way on every dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLDS = (20.0, 35.0, 50.0, 70.0)  # colour distance from the median, 0-255 scale
MIN_AREAS = (12, 30, 60)              # pixels
FIT_FRAMES = 120                      # training frames the thresholds are chosen on


@dataclass(frozen=True)
class BlobDetector:
    threshold: float
    min_area: int

    def detect(self, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per frame: boxes (k, 4) [x0, y0, x1, y1], class 0, scores (mean colour distance / 255)."""
        from scipy import ndimage

        found = []
        for frame in frames:
            pixels = frame.astype(np.float32)
            distance = np.abs(pixels - np.median(pixels.reshape(-1, 3), axis=0)).max(-1)
            mask = ndimage.binary_opening(distance > self.threshold, structure=np.ones((3, 3), bool))
            labelled, count = ndimage.label(mask)
            boxes, scores = [], []
            if count:
                areas = ndimage.sum_labels(mask, labelled, np.arange(1, count + 1))
                strength = ndimage.mean(distance, labelled, np.arange(1, count + 1))
                for k, region in enumerate(ndimage.find_objects(labelled)):
                    if region is None or areas[k] < self.min_area:
                        continue
                    rows, cols = region
                    boxes.append((cols.start, rows.start, cols.stop, rows.stop))
                    scores.append(min(strength[k] / 255.0, 1.0))
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            found.append((boxes, np.zeros(len(boxes), np.int32), np.asarray(scores, np.float32)))
        return found


def fit_blob_detector(frames: np.ndarray, boxes: list[np.ndarray], labels: list[np.ndarray],
                      class_names: list[str]) -> BlobDetector:
    """The threshold and smallest blob with the best AP@0.5 on (a spread of) training frames."""
    from workbench.tasks.detection_scores import coco_ground_truth, coco_map

    picks = np.linspace(0, len(frames) - 1, min(FIT_FRAMES, len(frames))).astype(int)
    truth = coco_ground_truth([boxes[i] for i in picks], [labels[i] for i in picks], class_names,
                              frames.shape[1:3])
    best, best_score = BlobDetector(THRESHOLDS[1], MIN_AREAS[1]), -1.0
    for threshold in THRESHOLDS:
        for min_area in MIN_AREAS:
            detector = BlobDetector(threshold, min_area)
            score = coco_map(truth, detections_of(detector.detect(frames[picks]))).map50
            if score > best_score:
                best, best_score = detector, score
    return best


def detections_of(found: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[dict]:
    from workbench.tasks.detection_scores import coco_detections

    return coco_detections([f[0] for f in found], [f[1] for f in found], [f[2] for f in found])
