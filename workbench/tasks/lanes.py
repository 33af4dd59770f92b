"""Lanes: per-pixel lane segmentation of the traffic task's recorded highway scenes.

Each pixel is off-road, the ego vehicle's lane, or another lane, from the road network's lane
geometry. Model: `unet`. Scored by mean IoU over the three classes on held-out scenes, beside the
prior that predicts every pixel's most frequent training class (the average mask). The U-Net
gets dilated convolutions at its bottom: whether a pixel is in the ego's lane depends on where the
ego car is, up to a frame's width away. A task of its
own because its main metric (mean IoU) differs from detection's (mAP), and seed groups, the
champion and `workbench compare` judge every run of a task by one metric.
"""

from __future__ import annotations

import numpy as np

from workbench.config import ConfigError, RunConfig
from workbench.data.splits import Splits
from workbench.tasks.base import Evaluation, Task
from workbench.tasks.traffic import check_scene_options, load_scenes, scene_options

OVERLAY_FRAMES = 4


class LanesTask(Task):
    name = "lanes"
    datasets = ("highway",)
    models = ("unet",)
    losses = ("sparse_categorical_crossentropy",)
    default_dataset = "highway"
    default_model = "unet"
    default_loss = "sparse_categorical_crossentropy"
    monitor = "val_mean_iou"
    monitor_mode = "max"
    main_metric = "test_mean_iou"
    main_metric_mode = "max"
    default_epochs = 0
    auto_steps = 1200
    auto_epoch_range = (5, 60)
    auto_patience = 6
    supports_user_models = False
    options = scene_options()

    def check_config(self, config: RunConfig) -> None:
        if config.loss != "sparse_categorical_crossentropy":
            raise ConfigError("loss", config.loss, "sparse_categorical_crossentropy (one class per pixel)")
        check_scene_options(config)

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.data.highway import LANE_CLASSES

        scenes = load_scenes(config)
        arrays = []
        for group in (scenes.train, scenes.val, scenes.test):
            arrays += [np.concatenate([s.frames for s in group]), np.concatenate([s.lanes for s in group])]
        return Splits(*arrays, class_names=list(LANE_CLASSES), name="highway" + ("" if config.randomize else "-plain"),
                      source=scenes.source, notes=list(scenes.notes))

    def preview(self, data: Splits) -> list:
        from workbench.tasks.traffic_figures import lane_overlay

        picks = np.linspace(0, len(data.x_train) - 1, OVERLAY_FRAMES).astype(int)
        return [lane_overlay(data.x_train[picks], data.y_train[picks], data.y_train[picks], data.class_names,
                             f"{data.name}: training frames and their lane masks")]

    def build_model(self, config: RunConfig, data: Splits):
        from workbench.models.driving import unet

        return unet(config, data.input_shape, data.num_classes, context=True)

    def metrics(self, config: RunConfig, data: Splits) -> list:
        import keras

        return [keras.metrics.MeanIoU(data.num_classes, sparse_y_pred=False, name="mean_iou")]

    def targets(self, y, config: RunConfig, data: Splits):
        return y.astype(np.int32)

    def exported_model(self, model, data: Splits):
        return model, data.x_test[:2]

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        from workbench.data.batches import predict
        from workbench.tasks.traffic_figures import lane_overlay

        predicted = np.argmax(predict(model, data.x_test), -1)
        scores = lane_scores(data.y_test, predicted, data.class_names)
        result = Evaluation(metrics={f"test_{k}": v for k, v in scores.items()})
        picks = np.linspace(0, len(data.x_test) - 1, OVERLAY_FRAMES).astype(int)
        result.figures["test_lanes"] = lane_overlay(
            data.x_test[picks], predicted[picks], data.y_test[picks], data.class_names,
            "Predicted lanes (green: ego lane, blue: other lanes), true borders in yellow, held-out test frames")
        return result

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        """Every pixel's most frequent class over the training masks (the average mask)."""
        counts = np.stack([(data.y_train == k).sum(0) for k in range(data.num_classes)])
        prior = np.broadcast_to(np.argmax(counts, 0), data.y_test.shape)
        return {f"baseline_prior_test_{k}": v for k, v in lane_scores(data.y_test, prior, data.class_names).items()}


def lane_scores(truth: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """IoU per class over all test pixels, their mean, and pixel accuracy."""
    scores = {}
    for k, name in enumerate(class_names):
        union = np.logical_or(truth == k, predicted == k).sum()
        scores[f"iou_{name.replace(' ', '_').replace('-', '_')}"] = \
            float(np.logical_and(truth == k, predicted == k).sum() / union) if union else 1.0
    scores["mean_iou"] = float(np.mean(list(scores.values())))
    scores["pixel_accuracy"] = float((truth == predicted).mean())
    return scores
