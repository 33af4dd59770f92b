"""A CenterNet-style one-stage detector: a small backbone, a heatmap of object centres per class,
box sizes and sub-cell offsets at a quarter of the input resolution.

Objects are points: a training target puts a Gaussian peak at each box centre in its class's
heatmap channel and the box's log size and centre offset at that cell. Decoding takes the local
maxima of the heatmap, reads size and offset there, then non-maximum suppression drops duplicates.
The network outputs one float32 tensor (batch, H/4, W/4, classes + 4): [heatmaps, log w, log h,
offset x, offset y]; targets add a fifth channel group, the centre mask.
"""

from __future__ import annotations

import keras
import numpy as np

from workbench.models.served import ServedModel

STRIDE = 4
PRIOR = 0.1  # initial heatmap probability: most cells are background, so training starts calm
SERVED_MIN_SCORE = 0.3  # boxes a user (or a controller) acts on; mAP is scored from far lower scores


def centernet(config, input_shape: tuple[int, ...], num_classes: int):
    """Backbone strides 2-4-8-16, upsampled back to stride 4 through skips (a small FPN)."""
    from keras import layers

    from workbench.models import blocks

    frames = keras.Input(shape=input_shape, name="frame")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(frames)
    x = blocks.conv_bn(x, 24, config, strides=2)
    skips = []
    for filters in (32, 64, 128):
        x = blocks.residual_block(x, filters, config, strides=2)
        x = blocks.residual_block(x, filters, config)
        skips.append(x)
    x = layers.Dropout(config.dropout)(x) if config.dropout else x
    for filters, skip in zip((64, 48), reversed(skips[:-1])):
        x = layers.UpSampling2D(interpolation="bilinear")(x)
        x = layers.Concatenate()([x, blocks.conv_bn(skip, filters, config)])
        x = blocks.conv_bn(x, filters, config)

    x = layers.Conv2D(48, 3, padding="same", activation=config.activation)(x)  # shared by the three heads

    def head(channels: int, name: str, activation=None, bias=0.0):
        return layers.Conv2D(channels, 1, activation=activation, dtype="float32", name=name,
                             bias_initializer=keras.initializers.Constant(bias))(x)

    heat = head(num_classes, "heatmap", "sigmoid", float(np.log(PRIOR / (1 - PRIOR))))
    size = head(2, "log_size")
    offset = head(2, "offset", "sigmoid")
    outputs = layers.Concatenate(dtype="float32", name="centres")([heat, size, offset])
    return keras.Model(frames, outputs, name="centernet")


def encode(boxes: list[np.ndarray], labels: list[np.ndarray], frame_shape: tuple[int, int],
           num_classes: int) -> np.ndarray:
    """Training targets (n, H/4, W/4, classes + 5) for boxes [x0, y0, x1, y1] in pixels."""
    height, width = frame_shape[0] // STRIDE, frame_shape[1] // STRIDE
    targets = np.zeros((len(boxes), height, width, num_classes + 5), np.float32)
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    for target, frame_boxes, frame_labels in zip(targets, boxes, labels):
        for (x0, y0, x1, y1), label in zip(np.asarray(frame_boxes, np.float32).reshape(-1, 4), frame_labels):
            w, h = max(x1 - x0, 1.0) / STRIDE, max(y1 - y0, 1.0) / STRIDE
            cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
            col, row = min(int(cx), width - 1), min(int(cy), height - 1)
            sigma_x, sigma_y = max(w / 6, 0.5), max(h / 6, 0.5)  # CenterNet's size-adaptive spread
            peak = np.exp(-((cols - col) ** 2 / (2 * sigma_x ** 2) + (rows - row) ** 2 / (2 * sigma_y ** 2)))
            channel = target[..., int(label)]
            np.maximum(channel, peak, out=channel)
            channel[row, col] = 1.0
            target[row, col, num_classes:] = (np.log(w), np.log(h), cx - col, cy - row, 1.0)
    return targets


@keras.saving.register_keras_serializable(package="workbench")
class CenterNetLoss(keras.losses.Loss):
    """Penalty-reduced focal loss on the heatmaps plus L1 on log size and offset at the centres,
    per frame, divided by the frame's number of objects."""

    def __init__(self, num_classes: int, size_weight: float = 1.0, offset_weight: float = 1.0, **kwargs):
        super().__init__(name=kwargs.pop("name", "centernet"), **kwargs)
        self.num_classes, self.size_weight, self.offset_weight = num_classes, size_weight, offset_weight

    def call(self, y_true, y_pred):
        from keras import ops

        k = self.num_classes
        heat_true, heat = y_true[..., :k], ops.clip(y_pred[..., :k], 1e-4, 1 - 1e-4)
        centres = y_true[..., -1]
        positive = ops.cast(ops.equal(heat_true, 1.0), heat.dtype)
        focal = -(positive * (1 - heat) ** 2 * ops.log(heat)
                  + (1 - positive) * (1 - heat_true) ** 4 * heat ** 2 * ops.log(1 - heat))
        error = ops.abs(y_true[..., k:k + 4] - y_pred[..., k:])
        error = self.size_weight * ops.sum(error[..., :2], -1) + self.offset_weight * ops.sum(error[..., 2:], -1)
        count = ops.maximum(ops.sum(centres, axis=(1, 2)), 1.0)
        return (ops.sum(focal, axis=(1, 2, 3)) + ops.sum(error * centres, axis=(1, 2))) / count

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "size_weight": self.size_weight,
                "offset_weight": self.offset_weight}


def decode(outputs: np.ndarray, num_classes: int, max_boxes: int = 100, min_score: float = 0.05,
           iou_threshold: float = 0.5) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per frame: boxes (k, 4) in input pixels, class indices (k,), scores (k,), best first."""
    import tensorflow as tf

    outputs = tf.convert_to_tensor(outputs, tf.float32)
    heat = outputs[..., :num_classes]
    peaks = tf.cast(tf.equal(heat, tf.nn.max_pool2d(heat, 3, 1, "SAME")), tf.float32) * heat
    found = []
    for frame, frame_peaks in zip(outputs.numpy(), peaks.numpy()):
        flat = frame_peaks.reshape(-1)
        best = np.argsort(flat)[::-1][:max_boxes]
        best = best[flat[best] >= min_score]
        rows, cols, labels = np.unravel_index(best, frame_peaks.shape)
        regression = frame[rows, cols, num_classes:]
        w, h = np.exp(np.clip(regression[:, :2], -6, 6)).T * STRIDE
        cx, cy = (cols + regression[:, 2]) * STRIDE, (rows + regression[:, 3]) * STRIDE
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).astype(np.float32).reshape(-1, 4)
        scores = flat[best].astype(np.float32)
        keep = non_max_suppression(boxes, labels, scores, iou_threshold)
        found.append((boxes[keep], labels[keep].astype(np.int32), scores[keep]))
    return found


def non_max_suppression(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray, iou_threshold: float):
    """Indices kept by per-class NMS, best first (TensorFlow's kernel; boxes as y0, x0, y1, x1)."""
    import tensorflow as tf

    keep = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen = tf.image.non_max_suppression(boxes[members][:, [1, 0, 3, 2]], scores[members],
                                              len(members), iou_threshold).numpy()
        keep.extend(members[chosen])
    return np.array(sorted(keep, key=lambda k: -scores[k]), dtype=np.int64)


class Detector(ServedModel):
    """Raw RGB frames of any size in, per frame boxes (x0, y0, x1, y1 in that frame's pixels),
    class names and scores out."""

    any_size_input = True

    def detect(self, frames) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        from PIL import Image

        from workbench.data.coco import letterbox

        size = tuple(self.settings["input_size"])
        boxed = [letterbox(Image.fromarray(np.asarray(frame, np.uint8)).convert("RGB"), size) for frame in frames]
        outputs = self.network.predict(np.stack([b[0] for b in boxed]), batch_size=32, verbose=0)
        found = decode(outputs, len(self.settings["classes"]), self.settings["max_boxes"],
                       self.settings["min_score"], self.settings["iou_threshold"])
        return [(boxes / scale, labels, scores) for (boxes, labels, scores), (_, scale) in zip(found, boxed)]

    def predict(self, inputs) -> list[dict]:
        names = self.settings["classes"]
        return [{"boxes": np.round(boxes, 1).tolist(), "classes": [names[k] for k in labels],
                 "scores": np.round(scores, 4).tolist()} for boxes, labels, scores in self.detect(list(inputs))]
