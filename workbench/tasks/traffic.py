"""Traffic: detecting other vehicles in top-down road scenes, and a user's own boxes.

Datasets: `highway` (highway-env scenes recorded with every other vehicle's box, the pictures
randomized per scene; split by scene seed so validation and test scenes are never trained on) and
`coco:PATH` (a COCO-format annotations.json with its images). Model: `centernet`, a one-stage
detector (object centres as heatmap peaks, sizes and offsets regressed there, then non-maximum
suppression). Scored by COCO mAP through pycocotools beside a classical colour-blob detector
fitted on the same training frames; on highway the detector also drives: a rule controller brakes
or changes lane from its boxes, against the same rule fed the true boxes (`traffic_loop`).
The sibling task `lanes` segments the same scenes' lanes.
"""

from __future__ import annotations

import json

import numpy as np

from workbench.config import ConfigError, Option, RunConfig
from workbench.data.splits import DataError, Splits
from workbench.tasks.base import Evaluation, Task

DEFAULT_SCENES = 60        # many short scenes: a scene's frames are alike, its look is not
DEFAULT_SCENE_FRAMES = 20
GALLERY_FRAMES = 6
SCENARIOS = ("highway", "merge", "roundabout", "intersection")


def scene_options() -> tuple[Option, ...]:
    """What both traffic tasks take to record highway scenes."""
    return (
        Option("scenes", int, 0, f"highway: scenes recorded (whole scenes are split); 0 = {DEFAULT_SCENES}",
               minimum=0, allowed="an integer >= 0 (0 = default, else >= 3)"),
        Option("scene_frames", int, 0, f"highway: frames recorded per scene; 0 = {DEFAULT_SCENE_FRAMES}",
               minimum=0, allowed="an integer >= 0 (0 = default)"),
        Option("scenarios", str, "highway", "highway: comma-separated highway-env scenarios the scenes "
                                            f"cycle through ({', '.join(SCENARIOS)})"),
        Option("randomize", bool, True, "highway: randomize each scene's picture (colours, texture, "
                                        "brightness, noise, blur, rotation, zoom, occlusions)"),
    )


def check_scene_options(config: RunConfig) -> None:
    unknown = [s for s in scenario_list(config) if s not in SCENARIOS]
    if unknown or not scenario_list(config):
        raise ConfigError("scenarios", config.scenarios, "comma-separated names from " + ", ".join(SCENARIOS))
    if 0 < config.scenes < 3:
        raise ConfigError("scenes", config.scenes, "0 (= default) or >= 3: at least one scene each for "
                          "training, validation and test")


def scenario_list(config: RunConfig) -> tuple[str, ...]:
    return tuple(s.strip() for s in str(config.scenarios).split(",") if s.strip())


def load_scenes(config: RunConfig):
    from workbench.data import highway

    return highway.load_highway(config.scenes or DEFAULT_SCENES, config.scene_frames or DEFAULT_SCENE_FRAMES,
                                config.seed, config.validation_split, config.randomize, scenario_list(config))


class TrafficTask(Task):
    name = "traffic"
    datasets = ("highway",)
    dataset_prefixes = ("coco:",)
    models = ("centernet",)
    losses = ("centernet",)
    default_dataset = "highway"
    default_model = "centernet"
    default_loss = "centernet"
    monitor = "val_loss"
    monitor_mode = "min"
    main_metric = "test_map50"
    main_metric_mode = "max"
    default_epochs = 0
    auto_steps = 1500
    auto_epoch_range = (5, 60)
    auto_patience = 6
    supports_user_models = False  # a detector's output is a map of centres, not (batch, classes)
    options = (
        *scene_options(),
        Option("frame_size", str, "256x256", "coco:PATH: every image letterboxed to HEIGHTxWIDTH (multiples of 16)"),
        Option("closed_loop_steps", int, 0, "highway: steps the rule controller drives each test scene from "
                                            "the detector's boxes and from the true boxes; 0 = 40, -1 = skip",
               minimum=-1, allowed="an integer >= -1 (0 = 40, -1 = skip)"),
        Option("min_score", float, 0.05, "detections below this heatmap score are dropped", minimum=0, maximum=1),
    )

    def check_config(self, config: RunConfig) -> None:
        if config.loss != "centernet":
            raise ConfigError("loss", config.loss, "centernet (heatmap focal loss plus size and offset L1)")
        check_scene_options(config)
        frame_size(config)

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.models.detection import encode

        if config.dataset.startswith("coco:"):
            parts = _coco_parts(config)
        else:
            parts = _highway_parts(config)
        class_names, frame_shape = parts["class_names"], parts["train"][0].shape[1:3]
        arrays = {}
        for split in ("train", "val", "test"):
            frames, boxes, labels = parts[split]
            arrays[split] = (frames, encode(boxes, labels, frame_shape, len(class_names)))
        extras = {"boxes": {s: parts[s][1] for s in ("train", "val", "test")},
                  "labels": {s: parts[s][2] for s in ("train", "val", "test")},
                  "test_scenes": parts.get("test_scenes", [])}
        return Splits(*arrays["train"], *arrays["val"], *arrays["test"], class_names=class_names,
                      name=parts["name"], source=parts["source"], notes=parts["notes"], extras=extras)

    def preview(self, data: Splits) -> list:
        from workbench.tasks.traffic_figures import box_gallery

        picks = np.linspace(0, len(data.x_train) - 1, GALLERY_FRAMES).astype(int)
        truth = [data.extras["boxes"]["train"][i] for i in picks]
        return [box_gallery(data.x_train[picks], truth, None, data.class_names,
                            f"{data.name}: training frames and their true boxes")]

    # ---- model --------------------------------------------------------------------------

    def build_model(self, config: RunConfig, data: Splits):
        from workbench.models.detection import centernet

        return centernet(config, data.input_shape, data.num_classes)

    def compile(self, model, config: RunConfig, data: Splits, replicas: int = 1) -> None:
        from workbench.models.compiling import make_optimizer
        from workbench.models.detection import CenterNetLoss

        steps_per_epoch = data.steps_per_epoch(config.batch_size * replicas)
        model.compile(optimizer=make_optimizer(config, steps_per_epoch), loss=CenterNetLoss(data.num_classes),
                      jit_compile=config.jit_compile, steps_per_execution=config.steps_per_execution)

    def metrics(self, config: RunConfig, data: Splits) -> list:
        return []

    def exported_model(self, model, data: Splits):
        from workbench.models.detection import SERVED_MIN_SCORE, Detector

        settings = {"classes": list(data.class_names), "input_size": list(data.input_shape[:2]),
                    "max_boxes": 100, "min_score": SERVED_MIN_SCORE, "iou_threshold": 0.5}
        return Detector(model, settings), data.x_test[:2]

    # ---- evaluation ---------------------------------------------------------------------

    def detections(self, model, data: Splits, config: RunConfig):
        from workbench.data.batches import predict
        from workbench.models.detection import decode

        return decode(predict(model, data.x_test), data.num_classes, min_score=config.min_score)

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        from workbench.tasks.detection_scores import coco_ground_truth, coco_map, precision_recall_figure
        from workbench.tasks.traffic_baseline import detections_of
        from workbench.tasks.traffic_figures import box_gallery

        found = self.detections(model, data, config)
        truth = coco_ground_truth(data.extras["boxes"]["test"], data.extras["labels"]["test"], data.class_names,
                                  data.x_test.shape[1:3])
        detections = detections_of(found)
        scores = coco_map(truth, detections)
        baseline = self._baseline_scores(data)
        result = Evaluation(metrics={"test_map50": scores.map50, "test_map": scores.map, "test_map75": scores.map75,
                                     "test_boxes_per_frame": float(np.mean([len(f[0]) for f in found]))})
        result.figures["precision_recall"] = precision_recall_figure(scores, baseline)
        # what COCOeval scored, for any other COCO tool: test frame i is image id i + 1
        result.files["coco/test_ground_truth.json"] = json.dumps(truth).encode()
        result.files["coco/test_detections.json"] = json.dumps(detections).encode()
        picks = np.linspace(0, len(data.x_test) - 1, GALLERY_FRAMES).astype(int)
        result.figures["test_detections"] = box_gallery(
            data.x_test[picks], [data.extras["boxes"]["test"][i] for i in picks], [found[i] for i in picks],
            data.class_names, "Detected vehicles (scores) and the true boxes (white), held-out test frames")
        if data.extras["test_scenes"] and config.closed_loop_steps != -1:
            from workbench.tasks.traffic_loop import closed_loop

            closed_loop(model, data, config, result)
        return result

    def _baseline_scores(self, data: Splits):
        """The blob detector fitted on training frames, scored on the test frames (computed once)."""
        if "baseline_scores" not in data.extras:
            from workbench.tasks.detection_scores import coco_ground_truth, coco_map
            from workbench.tasks.traffic_baseline import detections_of, fit_blob_detector

            boxes, labels = data.extras["boxes"], data.extras["labels"]
            detector = fit_blob_detector(data.x_train, boxes["train"], labels["train"], data.class_names)
            truth = coco_ground_truth(boxes["test"], labels["test"], data.class_names, data.x_test.shape[1:3])
            data.extras["baseline_scores"] = coco_map(truth, detections_of(detector.detect(data.x_test)))
            data.extras["baseline_detector"] = detector
        return data.extras["baseline_scores"]

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        scores, detector = self._baseline_scores(data), data.extras["baseline_detector"]
        return {"baseline_test_map50": scores.map50, "baseline_test_map": scores.map,
                "baseline_test_map75": scores.map75, "baseline_blob_threshold": detector.threshold,
                "baseline_blob_min_area": float(detector.min_area)}


def frame_size(config: RunConfig) -> tuple[int, int]:
    text = str(config.frame_size).lower()
    parts = text.split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) >= 32 and int(p) % 16 == 0 for p in parts):
        raise ConfigError("frame_size", config.frame_size, "HEIGHTxWIDTH, each a multiple of 16 and >= 32 "
                          "(e.g. 256x256)")
    return int(parts[0]), int(parts[1])


def _highway_parts(config: RunConfig) -> dict:
    scenes = load_scenes(config)
    parts = {"class_names": ["vehicle"], "name": "highway" + ("" if config.randomize else "-plain"),
             "source": scenes.source, "notes": list(scenes.notes),
             "test_scenes": [(s.scenario, s.seed) for s in scenes.test]}
    for split, group in (("train", scenes.train), ("val", scenes.val), ("test", scenes.test)):
        frames = np.concatenate([s.frames for s in group])
        boxes = [b for s in group for b in s.boxes]
        parts[split] = (frames, boxes, [np.zeros(len(b), np.int32) for b in boxes])
    return parts


def _coco_parts(config: RunConfig) -> dict:
    from pathlib import Path

    from workbench.data.coco import load_coco, split_detection

    path = Path(config.dataset.removeprefix("coco:")).expanduser()
    data = load_coco(path, frame_size(config))
    train, val, test = split_detection(data, config.validation_split, config.seed)
    parts = {"class_names": data.class_names, "name": f"coco-{Path(data.source).resolve().parent.name}",
             "source": data.source, "notes": list(data.notes)}
    for split, rows in (("train", train), ("val", val), ("test", test)):
        parts[split] = (data.frames[rows], [data.boxes[i] for i in rows], [data.labels[i] for i in rows])
    if not sum(len(b) for b in parts["train"][1]):
        raise DataError(f"{data.source}: the training split has no boxes ({len(train)} images)")
    return parts
