"""Driving task: CarRacing recordings and closed loop, Udacity logs, splits, flips, models, runs."""

import csv
import shutil

import numpy as np
import pytest

from conftest import all_runs, artifact_paths, client, run_cli
from workbench.tasks.configure import make_config
from workbench.config import ConfigError
from workbench.data import driving
from workbench.data.splits import DataError
from workbench.tasks import get_task

TINY = {"tracks": 4, "track_steps": 120, "seed": 42}   # 4 tracks of 120 recorded frames
TINY_FLAGS = ["--tracks", "4", "--track-steps", "120", "--epochs", "1", "--batch-size", "32"]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """The tiny CarRacing recordings, made once and copied into each test's home."""
    folder = tmp_path_factory.mktemp("recordings")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(folder))
        driving.record_tracks(driving.track_seeds(TINY["tracks"], TINY["seed"]), TINY["track_steps"])
    return folder / "data" / "carracing"


@pytest.fixture
def recorded_home(home, recordings):
    shutil.copytree(recordings, home / "data" / "carracing")
    return home


# ---- config ----------------------------------------------------------------------------------

def test_defaults_and_cross_field_checks():
    config = make_config(task="driving")
    assert (config.dataset, config.model, config.loss) == ("carracing", "pilotnet", "mse")
    assert make_config(task="driving", model="unet").loss == "binary_crossentropy"
    assert make_config(task="driving", model="cnn", loss="huber").loss == "huber"
    for values, field in ((dict(model="unet", loss="mse"), "loss"),
                          (dict(model="pilotnet", loss="binary_crossentropy"), "loss"),
                          (dict(model="unet", dataset="udacity:/tmp/log.csv"), "model"),
                          (dict(tracks=2), "tracks"),
                          (dict(dataset="kitti"), "dataset")):
        with pytest.raises(ConfigError) as error:
            make_config(task="driving", **values)
        assert error.value.field == field


# ---- CarRacing: recordings, splits, masks, closed loop ---------------------------------------

def test_recordings_are_cached_and_split_by_track_seed(recorded_home, recordings):
    stamps = {p.name: p.stat().st_mtime_ns for p in recordings.iterdir()}
    data = get_task("driving").load_data(make_config(task="driving", **TINY))
    assert {p.name: p.stat().st_mtime_ns for p in (recorded_home / "data" / "carracing").iterdir()} == stamps
    groups = data.extras["sequences"]
    seeds = {split: {int(name.split()[-1]) for name in names} for split, names in groups.items()}
    assert seeds["train"] and seeds["validation"] and seeds["test"]
    assert not seeds["train"] & seeds["test"] and not seeds["train"] & seeds["validation"]
    assert not seeds["validation"] & seeds["test"]
    assert seeds["train"] | seeds["validation"] | seeds["test"] == set(driving.track_seeds(4, 42))
    assert data.extras["test_tracks"] == sorted(seeds["test"])
    assert len(data.x_train) == 120 * len(seeds["train"]) and len(data.x_test) == 120 * len(seeds["test"])
    assert data.x_train.shape[1:] == (96, 96, 3) and data.x_train.dtype == np.uint8
    assert np.abs(data.y_train).max() <= 1 and np.abs(data.y_train).max() > 0.05  # it does steer


def test_recording_labels_the_experts_correction_while_perturbed():
    from workbench import simulator

    recording = simulator.record_track(7, steps=150)
    clean = simulator.record_track(7, steps=150, perturb=False)
    first = simulator.PERTURB_EVERY - simulator.PERTURB_STEPS  # the first perturbation starts here
    assert np.allclose(recording.steering[:first], clean.steering[:first], atol=1e-6)
    # after the perturbation the car is off the clean line and the expert steers back
    after = slice(simulator.PERTURB_EVERY, simulator.PERTURB_EVERY + 15)
    assert np.abs(recording.steering[after] - clean.steering[after]).max() > 0.05
    assert recording.frames.shape == (150, 96, 96, 3) and len(recording.speed) == 150


def test_closed_loop_expert_matches_the_recorded_coverage(recordings):
    from workbench import simulator

    seed = driving.track_seeds(4, 42)[0]
    with np.load(recordings / driving.recording_path(seed, 120).name) as stored:
        recorded = float(stored["coverage"])
    expert, = simulator.drive([seed], steps=120)
    assert expert.steps == 120 and expert.coverage > 0.05
    assert abs(expert.coverage - recorded) <= 0.03
    seen = []

    def hard_right(frames):
        seen.append(frames.shape)
        return np.ones(len(frames))

    wrong, = simulator.drive([seed], steps=120, policy=hard_right, frame_stack=3, keep_frames=1)
    assert seen[0] == (1, 3, 96, 96, 3)
    assert wrong.coverage < 0.5 * expert.coverage
    assert len(wrong.frames) == 121 and wrong.path.shape == (121, 2)


def test_road_mask_from_the_fixed_colours(recordings):
    with np.load(next(recordings.iterdir())) as stored:
        frames = stored["frames"][::20]
    mask = driving.road_mask(frames)[..., 0]
    assert mask.shape == frames.shape[:3]
    assert not mask[:, -driving.INDICATOR_ROWS:].any()          # the indicator bar is not road
    assert 0.05 < mask.mean() < 0.6
    below_car = frames[:, 80, 48]                                # just behind the car: asphalt
    assert (np.ptp(below_car, axis=-1) <= 6).all() and mask[:, 80, 48].all()
    grass = np.array([[[[100, 202, 100], [100, 228, 100], [204, 0, 0], [102, 102, 102], [253, 0, 0],
                        [253, 253, 253]]]], np.uint8)
    assert driving.road_mask(np.pad(grass, ((0, 0), (0, 20), (0, 0), (0, 0))))[0, 0, :, 0].tolist() == \
        [0, 0, 0, 1, 1, 1]


def test_frame_stacks_stay_inside_one_sequence():
    def sequence(n, start):
        frames = np.zeros((n, 96, 96, 3), np.uint8) + np.arange(start, start + n, dtype=np.uint8)[:, None, None, None]
        return driving.Sequence(f"s{start}", frames, np.linspace(-1, 1, n).astype(np.float32), np.zeros(n, np.float32))

    x, y, owner = driving.examples([sequence(5, 0), sequence(2, 100), sequence(4, 200)], frame_stack=3)
    assert x.shape == (3 + 0 + 2, 3, 96, 96, 3)
    assert [list(stack[:, 0, 0, 0]) for stack in x] == [[0, 1, 2], [1, 2, 3], [2, 3, 4], [200, 201, 202],
                                                        [201, 202, 203]]
    assert y[0] == pytest.approx(np.linspace(-1, 1, 5)[2]) and owner.tolist() == [0, 0, 0, 2, 2]


def test_flip_mirrors_the_frame_and_negates_steering():
    import tensorflow as tf

    frame = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    flipped, steering = driving.flip_horizontally(tf.constant(frame), tf.constant([0.3]))
    assert np.array_equal(flipped.numpy(), frame[:, ::-1]) and steering.numpy().tolist() == pytest.approx([-0.3])
    stack, _ = driving.flip_horizontally(tf.constant(np.stack([frame, frame])), tf.constant([0.3]))
    assert np.array_equal(stack.numpy()[1], frame[:, ::-1])
    mask = (frame[..., :1] > 128).astype(np.float32)
    _, mirrored = driving.flip_horizontally(tf.constant(frame), tf.constant(mask), flip_target=True)
    assert np.array_equal(mirrored.numpy(), mask[:, ::-1])

    config = make_config(task="driving")
    augment = get_task("driving").train_augmentation(None, config)
    outcomes = set()
    for _ in range(40):
        x, y = augment(tf.constant(frame), tf.constant([0.3]))
        if np.array_equal(x.numpy(), frame):
            assert y.numpy()[0] == pytest.approx(0.3)
            outcomes.add("kept")
        else:
            assert np.array_equal(x.numpy(), frame[:, ::-1]) and y.numpy()[0] == pytest.approx(-0.3)
            outcomes.add("flipped")
    assert outcomes == {"kept", "flipped"}


# ---- models ----------------------------------------------------------------------------------

@pytest.mark.parametrize("model, shape, output", [
    ("pilotnet", (96, 96, 3), (2, 1)), ("cnn", (96, 96, 3), (2, 1)),
    ("cnn-lstm", (3, 96, 96, 3), (2, 1)), ("unet", (96, 96, 3), (2, 96, 96, 1))])
def test_models_take_raw_frames(model, shape, output):
    import keras

    from workbench.data.splits import Splits

    config = make_config(task="driving", model=model, frame_stack=3)
    x = np.random.default_rng(1).integers(0, 255, (2, *shape), dtype=np.uint8)
    data = Splits(x, np.zeros(2), x, np.zeros(2), x, np.zeros(2), ["steering"], "t", "t",
                  extras={"crop": (0, 12)})
    net = get_task("driving").build_model(config, data)
    predicted = net.predict(x, verbose=0)
    assert predicted.shape == output and predicted.dtype == np.float32
    assert (np.abs(predicted) <= 1).all()
    if model == "unet":
        assert (predicted >= 0).all()  # P(road)
    if model == "pilotnet":
        convs = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
        assert [(c.filters, c.kernel_size, c.strides) for c in convs] == [
            (24, (5, 5), (2, 2)), (36, (5, 5), (2, 2)), (48, (5, 5), (2, 2)),
            (64, (3, 3), (1, 1)), (64, (3, 3), (1, 1))]
        assert [d.units for d in net.layers if isinstance(d, keras.layers.Dense)] == [100, 50, 10, 1]


# ---- Udacity logs ----------------------------------------------------------------------------

def _udacity_log(root, rows=40, header=True, style="windows", odd_size_row=None, steering=None):
    """A driving_log.csv with tiny JPEGs; the red channel of each image encodes its row."""
    from PIL import Image

    (root / "IMG").mkdir(parents=True)
    prefix = {"windows": "C:\\Users\\me\\IMG\\", "unix": "/home/me/run1/IMG/", "relative": "IMG/"}[style]
    lines = [["center", "left", "right", "steering", "throttle", "brake", "speed"]] if header else []
    values = steering if steering is not None else np.round(np.sin(np.arange(rows) / 5) * 0.9, 3)
    for i in range(rows):
        names = [f"{camera}_{i}.jpg" for camera in ("center", "left", "right")]
        for camera, name in enumerate(names):
            size = (48, 24) if i == odd_size_row else (64, 32)
            pixels = np.zeros((size[1], size[0], 3), np.uint8)
            pixels[..., 0], pixels[..., 1] = 4 * i, 80 * camera
            Image.fromarray(pixels).save(root / "IMG" / name, quality=95)
        sep = " " if style == "windows" else ""  # the simulator writes ", C:\..." with a space
        lines.append([prefix + names[0], sep + prefix + names[1], sep + prefix + names[2], str(values[i]), "0.5", "0",
                      "20.1"])
    with open(root / "driving_log.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(lines)
    return root / "driving_log.csv"


@pytest.mark.parametrize("header, style", [(True, "windows"), (False, "windows"), (False, "unix"), (True, "relative")])
def test_udacity_log_with_or_without_header_and_any_path_style(tmp_path, header, style):
    log = _udacity_log(tmp_path / "sim", header=header, style=style)
    parts = driving.load_udacity(log, steering_correction=0.2, validation_split=0.1, seed=3)
    rows_of = lambda seqs: [r for s in seqs for r in range(s.info["rows"][0], s.info["rows"][1] + 1)]  # noqa: E731
    centre_train = [s for s in parts.train if "camera" not in s.name]
    first_row = 2 if header else 1
    all_rows = rows_of(centre_train) + rows_of(parts.val) + rows_of(parts.test)
    assert sorted(all_rows) == list(range(first_row, first_row + 40))       # every row, once
    assert len(parts.val) == 1 and len(parts.test) == 2 and len(centre_train) == 7  # 10 contiguous segments
    for sequence in parts.val + parts.test + centre_train:
        first, last = sequence.info["rows"]
        assert len(sequence) == last - first + 1
        # the frame really is the row's center image, resized to 96x96
        assert sequence.frames.shape[1:] == (96, 96, 3)
        expected_red = 4 * (np.arange(first, last + 1) - first_row)
        assert np.abs(sequence.frames[:, 40, 40, 0].astype(int) - expected_red).max() <= 3
        assert sequence.frames[:, 40, 40, 1].max() <= 3
    lefts = [s for s in parts.train if "left" in s.name]
    rights = [s for s in parts.train if "right" in s.name]
    assert len(lefts) == len(rights) == 7 and not any("camera" in s.name for s in parts.val + parts.test)
    left, centre = lefts[0], centre_train[0]
    assert np.allclose(left.steering, np.clip(centre.steering + 0.2, -1, 1))
    assert np.allclose(rights[0].steering, np.clip(centre.steering - 0.2, -1, 1))
    assert (np.abs(left.frames[:, 40, 40, 1].astype(int) - 80) <= 3).all()  # the left camera's images
    assert parts.notes == []

    centre_only = driving.load_udacity(log, steering_correction=0.0, validation_split=0.1, seed=3)
    assert not any("camera" in s.name for s in centre_only.train)


def test_udacity_missing_images_name_the_first_one_and_the_count(tmp_path):
    log = _udacity_log(tmp_path / "sim", style="windows")
    for name in ("center_3.jpg", "left_3.jpg", "right_7.jpg"):
        (tmp_path / "sim" / "IMG" / name).unlink()
    with pytest.raises(DataError) as error:
        driving.load_udacity(log, 0.2, 0.1, 0)
    message = str(error.value)
    assert "3 image(s)" in message and str(tmp_path / "sim" / "IMG" / "center_3.jpg") in message
    assert "row 5" in message  # header + rows 0..3
    # without side cameras only the missing center image counts
    with pytest.raises(DataError, match=r"1 image\(s\)"):
        driving.load_udacity(log, 0.0, 0.1, 0)


def test_udacity_steering_outside_the_range_names_csv_row_and_value(tmp_path):
    values = np.zeros(40)
    values[12] = 1.7
    log = _udacity_log(tmp_path / "sim", header=False, steering=values)
    with pytest.raises(DataError) as error:
        driving.load_udacity(log, 0.2, 0.1, 0)
    assert str(log) in str(error.value) and "row 13" in str(error.value) and "1.7" in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("break_it, message", [
    (lambda root: (root / "IMG" / "center_0.jpg").unlink(), "center_0.jpg"),
    (lambda root: (root / "driving_log.csv").write_text("IMG/center_0.jpg,,,-2.5,0,0,0\n"), "-2.5"),
])
def test_bad_udacity_log_exits_2_without_a_run(home, tmp_path, break_it, message):
    log = _udacity_log(tmp_path / "sim")
    break_it(tmp_path / "sim")
    result = run_cli("train", "--in-process", "--task", "driving", "--dataset", f"udacity:{log}", "--epochs", "1")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and str(log.parent) in result.stderr and "Traceback" not in result.stderr
    assert all_runs(home) == []


@pytest.mark.slow
def test_udacity_run_resizes_an_odd_image_and_notes_it(home, tmp_path):
    log = _udacity_log(tmp_path / "sim", style="unix", odd_size_row=9)
    result = run_cli("train", "--in-process", "--task", "driving", "--model", "cnn", "--dataset",
                     f"udacity:{log.parent}", "--epochs", "1", "--batch-size", "16")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = all_runs(home)
    assert run.info.status == "FINISHED"
    assert "not 64x32" in run.data.tags["data_notes"] and "center_9.jpg: 48x24" in run.data.tags["data_notes"]
    assert "data_notes.txt" in artifact_paths(home, run.info.run_id)
    metrics = run.data.metrics
    assert {"test_rmse", "baseline_zero_test_rmse", "baseline_mean_test_rmse"} <= set(metrics)
    assert not any(k.startswith("closed_loop_") for k in metrics)  # no simulator for a log


# ---- full runs -------------------------------------------------------------------------------

@pytest.mark.slow
def test_pilotnet_run_through_the_notebook_logs_everything(recorded_home):
    result = run_cli("train", "--task", "driving", "--model", "pilotnet", *TINY_FLAGS, "--closed-loop-steps", "60")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = all_runs(recorded_home)
    assert run.info.status == "FINISHED"
    run_id, metrics = run.info.run_id, run.data.metrics
    assert run.data.params["model"] == "pilotnet" and run.data.params["tracks"] == "4"
    assert [m.step for m in client(recorded_home).get_metric_history(run_id, "val_rmse")] == [0]
    for name in ("test_rmse", "test_mae", "baseline_zero_test_rmse", "baseline_zero_test_mae",
                 "baseline_mean_test_rmse", "baseline_mean_test_mae", "test_rmse_over_baseline_zero",
                 "closed_loop_coverage", "closed_loop_expert_coverage", "closed_loop_coverage_ratio",
                 "closed_loop_reward", "closed_loop_expert_reward"):
        assert np.isfinite(metrics[name]), name
    assert metrics["test_rmse_over_baseline_zero"] == pytest.approx(
        metrics["test_rmse"] / metrics["baseline_zero_test_rmse"])
    assert metrics["closed_loop_tracks"] == 1 and metrics["closed_loop_steps"] == 60
    assert metrics["closed_loop_expert_coverage"] > 0.02
    artifacts = artifact_paths(recorded_home, run_id)
    assert {"figures/training_curves.png", "figures/steering_trace.png", "figures/saliency.png",
            "figures/closed_loop_paths.png", "tables/closed_loop.json", "tables/test_sequences.json",
            f"notebook/train-{run_id}.ipynb", f"notebook/train-{run_id}.html"} <= artifacts
    (gif,) = [p for p in artifacts if p.endswith(".gif")]
    local = client(recorded_home).download_artifacts(run_id, gif, str(recorded_home / "dl"))
    from PIL import Image

    with Image.open(local) as image:
        assert image.n_frames == 21 and image.size == (192, 192)  # 61 frames, every 3rd, doubled

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{recorded_home}/mlflow.db")
    (logged,) = run.outputs.model_outputs
    model = mlflow.keras.load_model(f"models:/{logged.model_id}")
    with np.load(next((recorded_home / "data" / "carracing").iterdir())) as stored:
        frames = stored["frames"][:5]                       # raw uint8 camera frames
    steering = model.predict(frames, verbose=0)
    assert steering.shape == (5, 1) and (np.abs(steering) <= 1).all()


@pytest.mark.slow
def test_unet_run_through_the_notebook_segments_the_road(recorded_home):
    result = run_cli("train", "--task", "driving", "--model", "unet", *TINY_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = all_runs(recorded_home)
    assert run.info.status == "FINISHED" and run.data.params["loss"] == "binary_crossentropy"
    metrics = run.data.metrics
    for name in ("val_mean_iou", "best_val_loss", "test_mean_iou", "test_road_iou", "test_pixel_accuracy",
                 "baseline_prior_test_mean_iou", "test_loss"):
        assert 0 <= metrics[name] < 10, name
    assert not any(k.startswith("closed_loop_") for k in metrics)
    artifacts = artifact_paths(recorded_home, run.info.run_id)
    assert {"figures/segmentation.png", "figures/training_curves.png"} <= artifacts
    assert len(run.outputs.model_outputs) == 1


@pytest.mark.slow
def test_cnn_lstm_drives_from_frame_stacks(recorded_home):
    import workbench

    result = workbench.train("driving", model="cnn-lstm", frame_stack=3, epochs=1, batch_size=32,
                             closed_loop_steps=30, verbose=0, **TINY)
    assert result.model.input_shape == (None, 3, 96, 96, 3)
    assert result.metrics["closed_loop_steps"] == 30 and np.isfinite(result.metrics["test_rmse"])
    assert result.metrics["test_rmse"] < 1.0
