"""Traffic and lanes tasks through the command a user runs: highway scenes, coco:PATH, the logged
detector, the closed loop, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import all_runs, artifact_paths, client, run_cli
from workbench.config import ConfigError
from workbench.data import highway
from workbench.tasks.configure import make_config

SCENES = ["--scenes", "3", "--scene-frames", "2"]


def make_coco(folder, images: int, seed: int = 0):
    """Grey frames with red cars (16x8) and blue trucks (24x12): category ids 1 and 2."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "truck"}]}
    for i in range(images):
        pixels = np.full((64, 96, 3), 90, np.uint8) + rng.integers(0, 20, (64, 96, 3), dtype=np.uint8)
        for _ in range(rng.integers(1, 4)):
            category = int(rng.integers(1, 3))
            w, h = (16, 8) if category == 1 else (24, 12)
            x, y = int(rng.integers(0, 96 - w)), int(rng.integers(0, 64 - h))
            pixels[y:y + h, x:x + w] = (220, 40, 40) if category == 1 else (40, 40, 220)
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i + 1, "category_id": category,
                                       "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        Image.fromarray(pixels).save(folder / "images" / f"frame{i:03d}.png")
        doc["images"].append({"id": i + 1, "file_name": f"frame{i:03d}.png", "width": 96, "height": 64})
    (folder / "annotations.json").write_text(json.dumps(doc))
    return folder, doc


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Three tiny randomized highway scenes, recorded once and copied into each test's home."""
    folder = tmp_path_factory.mktemp("scenes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(folder))
        highway.load_highway(3, 2, 42, 0.2, True, ("highway",), progress=lambda *_: None)
    return folder / "data" / "highway"


@pytest.fixture
def scene_home(home, scenes):
    shutil.copytree(scenes, home / "data" / "highway")
    return home


def test_defaults_and_checks():
    config = make_config(task="traffic")
    assert (config.dataset, config.model, config.loss) == ("highway", "centernet", "centernet")
    assert make_config(task="lanes").loss == "sparse_categorical_crossentropy"
    for task, values, field in (("traffic", dict(scenarios="highway,motorway"), "scenarios"),
                                ("traffic", dict(scenes=2), "scenes"),
                                ("traffic", dict(frame_size="100x64"), "frame_size"),
                                ("traffic", dict(loss="mse"), "loss"),
                                ("lanes", dict(loss="centernet"), "loss"),
                                ("lanes", dict(dataset="coco:/tmp/x"), "dataset")):
        with pytest.raises(ConfigError) as error:
            make_config(task=task, **values)
        assert error.value.field == field


@pytest.mark.slow
def test_highway_detector_trains_scores_and_drives(scene_home):
    done = run_cli("train", "--in-process", "--task", "traffic", *SCENES, "--epochs", "1", "--batch-size", "4",
                   "--closed-loop-steps", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = all_runs(scene_home)
    metrics = run.data.metrics
    assert run.info.status == "FINISHED"
    for name in ("test_map50", "test_map", "baseline_test_map50", "baseline_test_map", "closed_loop_km",
                 "closed_loop_true_boxes_km", "closed_loop_collisions_per_km"):
        assert name in metrics, name
    assert 0 <= metrics["test_map"] <= metrics["test_map50"] <= 1
    assert metrics["closed_loop_true_boxes_km"] > 0  # it drove
    # both drives report the share of choices the rule would have made otherwise from this frame's true boxes
    assert 0 <= metrics["closed_loop_true_boxes_choices_unlike_true_boxes"] <= 1
    assert 0 <= metrics["closed_loop_choices_unlike_true_boxes"] <= 1
    paths = artifact_paths(scene_home, run.info.run_id)
    assert {"figures/test_detections.png", "figures/precision_recall.png", "tables/closed_loop.json",
            "coco/test_ground_truth.json", "coco/test_detections.json"} <= paths
    # the exported ground truth reads back in pycocotools: one image per test frame
    from pycocotools.coco import COCO

    local = client(scene_home).download_artifacts(run.info.run_id, "coco/test_ground_truth.json", str(scene_home))
    truth = COCO(local)
    assert len(truth.getImgIds()) == metrics["test_examples"] and truth.getCatIds() == [1]
    assert "recording highway" not in done.stdout  # the scenes came from the cache


@pytest.mark.slow
def test_lanes_unet_beside_the_average_mask_through_the_training_notebook(scene_home):
    done = run_cli("train", "--task", "lanes", *SCENES, "--epochs", "1", "--batch-size", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = all_runs(scene_home)
    metrics = run.data.metrics
    assert 0 < metrics["test_mean_iou"] <= 1 and 0 < metrics["baseline_prior_test_mean_iou"] <= 1
    assert {"test_iou_ego_lane", "test_iou_other_lanes", "test_iou_off_road"} <= set(metrics)
    paths = artifact_paths(scene_home, run.info.run_id)
    assert {"figures/test_lanes.png", f"notebook/train-{run.info.run_id}.ipynb"} <= paths


@pytest.mark.slow
def test_coco_detector_learns_and_its_logged_model_returns_boxes_on_any_frame_size(home, tmp_path):
    import mlflow
    from PIL import Image

    folder, doc = make_coco(tmp_path / "cars", images=96)
    done = run_cli("train", "--in-process", "--task", "traffic", "--dataset", f"coco:{folder}", "--frame-size",
                   "64x96", "--epochs", "25", "--batch-size", "16")
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = all_runs(home)
    assert run.data.metrics["test_map50"] > run.data.metrics["baseline_test_map50"]
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    (logged,) = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    model = mlflow.pyfunc.load_model(logged.model_uri)
    # a training image at twice its size: boxes come back in that frame's pixels
    frame = np.asarray(Image.open(folder / "images" / "frame000.png").resize((192, 128), Image.NEAREST))
    (found,) = model.predict(frame[None])
    assert set(found) == {"boxes", "classes", "scores"} and found["boxes"]
    truth = {(a["category_id"], tuple(2 * v for v in a["bbox"])) for a in doc["annotations"] if a["image_id"] == 1}
    names = {1: "car", 2: "truck"}

    def iou(box, xywh):
        x, y, w, h = xywh
        ix = max(0.0, min(box[2], x + w) - max(box[0], x))
        iy = max(0.0, min(box[3], y + h) - max(box[1], y))
        return ix * iy / ((box[2] - box[0]) * (box[3] - box[1]) + w * h - ix * iy)

    best = found["boxes"][0], found["classes"][0]
    assert any(iou(best[0], xywh) > 0.5 and names[category] == best[1] for category, xywh in truth), (found, truth)


def test_an_empty_annotation_file_is_named_and_creates_no_run(home, tmp_path):
    (tmp_path / "annotations.json").write_text("")
    done = run_cli("train", "--in-process", "--task", "traffic", "--dataset", f"coco:{tmp_path}", "--epochs", "1")
    assert done.returncode == 2
    assert "annotations.json" in done.stderr
    assert not all_runs(home)


def test_the_rule_brakes_or_passes_for_a_car_close_ahead_and_speeds_up_on_a_clear_road(home):
    from workbench.tasks.traffic_loop import rule_action

    env = highway.make_env("highway", 5, vehicles=1)
    try:
        ego = env.unwrapped.vehicle
        lane = env.unwrapped.road.network.get_lane(ego.lane_index)
        s, _ = lane.local_coordinates(ego.position)
        assert rule_action(env, np.zeros((0, 2))) == "FASTER"
        close_ahead = lane.position(s + 10, 0)[None]
        assert rule_action(env, close_ahead) in ("LANE_LEFT", "LANE_RIGHT", "SLOWER")
        # every neighbouring lane blocked too: it can only brake
        blocked = [close_ahead[0]] + [env.unwrapped.road.network.get_lane(side).position(s + 2, 0)
                                      for side in env.unwrapped.road.network.side_lanes(ego.lane_index)]
        assert rule_action(env, np.array(blocked)) == "SLOWER"
        # a box on the ego itself is not a car: it is dropped before the tracker sees it
        from workbench.tasks.traffic_loop import others_than_ego

        own = np.asarray(ego.position, float) + [1.0, 0.3]
        assert others_than_ego(env, np.array([own, close_ahead[0]])).tolist() == [list(close_ahead[0])]
    finally:
        env.close()
    # fed the true boxes without memory, every choice is the true boxes' own
    from workbench.tasks.traffic_loop import drive

    plain = drive("highway", 5, 3, True, remember=False)
    assert plain.steps == 3 and plain.disagreed == 0 and plain.last_choices[0] == plain.last_choices[1] != ""


@pytest.mark.pure
def test_a_car_the_detector_misses_for_a_frame_is_still_seen_where_its_speed_took_it():
    from workbench.tasks.traffic_tracks import Tracks

    tracks, ego_velocity = Tracks(kept_missed=2), np.array([25.0, 0.0])
    ahead, beside = np.array([40.0, 0.0]), np.array([10.0, 4.0])
    assert len(tracks.update(np.array([ahead, beside]), 1.0, ego_velocity)) == 2
    # one second on: the car ahead drove 22 m, the one beside 25 m; both are matched, speeds learnt
    seen = tracks.update(np.array([ahead + [22, 0], beside + [25, 0]]), 1.0, ego_velocity)
    assert sorted(map(tuple, seen)) == [(35.0, 4.0), (62.0, 0.0)]
    # the detector misses the car ahead: it is still there, 22 m further on
    seen = tracks.update(np.array([beside + [50, 0]]), 1.0, ego_velocity)
    assert sorted(map(tuple, seen)) == [(60.0, 4.0), (84.0, 0.0)]
    tracks.update(np.array([beside + [75, 0]]), 1.0, ego_velocity)
    # missed a third time in a row: gone; a car found far from any known one is a new car
    seen = tracks.update(np.array([beside + [100, 0], [0.0, -4.0]]), 1.0, ego_velocity)
    assert sorted(map(tuple, seen)) == [(0.0, -4.0), (110.0, 4.0)]


@pytest.mark.pure
def test_a_car_much_slower_than_the_ego_is_one_track_and_a_single_finding_is_not_remembered():
    from workbench.tasks.traffic_tracks import Tracks

    tracks, ego_velocity = Tracks(kept_missed=2), np.array([30.0, 0.0])
    slow, phantom = np.array([60.0, 0.0]), np.array([20.0, 4.0])
    tracks.update(np.array([slow, phantom]), 1.0, ego_velocity)
    # one second on the slow car (21 m/s) is 9 m short of where the ego's speed would have taken it;
    # the phantom is gone, and is not remembered: it was found once
    seen = tracks.update(np.array([slow + [21, 0]]), 1.0, ego_velocity)
    assert sorted(map(tuple, seen)) == [(81.0, 0.0)]
    # matched as one car, its own speed learnt: missed twice, it is where 21 m/s takes it
    tracks.update(np.zeros((0, 2)), 1.0, ego_velocity)
    seen = tracks.update(np.zeros((0, 2)), 1.0, ego_velocity)
    assert sorted(map(tuple, seen)) == [(123.0, 0.0)]
    # found again after the misses: still one car, its speed measured over the three seconds
    seen = tracks.update(np.array([[144.0, 0.0]]), 1.0, ego_velocity)
    assert len(seen) == 1 and tracks.tracks[0].velocity[0] == pytest.approx(21.0)
