"""Driving: steering from camera frames (behaviour cloning) and road segmentation.

Datasets: `carracing` (Gymnasium CarRacing-v3 driven by a scripted expert, recorded once and
cached; split by track) and `udacity:PATH` (a Udacity simulator `driving_log.csv`; split by
contiguous segments of the log). Models: `pilotnet`, `cnn`, `cnn-lstm` (steering) and `unet`
(road mask, carracing only). Training mirrors frames left-right with the steering negated.

Steering models are scored offline (RMSE and MAE on held-out tracks, beside predicting zero and
predicting the training mean) and, on carracing, in closed loop: the model steers CarRacing on
the test tracks with the expert's speed controller, and the share of track tiles it drives over
is compared with the expert's on the same tracks.
"""

from __future__ import annotations

import numpy as np

from workbench.config import ConfigError, Option, RunConfig
from workbench.data.splits import DataError, Splits
from workbench.tasks.base import Evaluation, Task

STEERING_MODELS = ("pilotnet", "cnn", "cnn-lstm")
STEERING_LOSSES = ("mse", "mae", "huber")
# Rows cut (top, bottom) before steering models look at a frame. CarRacing draws the car's front
# wheels turned by the current steering, and its bottom bar shows that angle too: a model that sees
# either can copy the steering already applied instead of reading the road (the copycat problem).
# The bottom 32 rows hold the car and the bar; the road ahead stays.
CARRACING_CROP = (0, 32)
UDACITY_CROP = (24, 10)    # sky and bonnet; PilotNet needs >= 61 rows left
SEGMENTATION_EVERY = 10    # unet learns from every 10th frame: neighbours are near duplicates
SALIENCY_FRAMES = 4
SEGMENTATION_FRAMES = 6
GIF_EVERY = 3              # every 3rd step at 50/3 frames per second: real time


class DrivingTask(Task):
    name = "driving"
    datasets = ("carracing",)
    dataset_prefixes = ("udacity:",)
    models = (*STEERING_MODELS, "unet")
    losses = (*STEERING_LOSSES, "binary_crossentropy")
    default_dataset = "carracing"
    default_model = "pilotnet"
    default_loss = "mse"
    monitor = "val_loss"
    monitor_mode = "min"
    main_metric = "test_mae"  # steering error on held-out tracks
    options = (
        Option("steering_correction", float, 0.2, "udacity:PATH: steering added for the left camera and "
                                                  "subtracted for the right; 0 = center only", minimum=0, maximum=1),
        Option("tracks", int, 0, "carracing: tracks recorded; 0 = 24", minimum=0,
               allowed="an integer >= 0 (0 = default)"),
        Option("track_steps", int, 0, "carracing: steps recorded per track; 0 = one lap", minimum=0,
               allowed="an integer >= 0 (0 = one lap)"),
        Option("closed_loop_steps", int, 0, "steps the model drives each held-out track after training; "
                                            "0 = one lap, -1 = skip", minimum=-1,
               allowed="an integer >= -1 (0 = one lap, -1 = skip)"),
        Option("frame_stack", int, 4, "cnn-lstm: consecutive frames per example", minimum=2),
    )

    def output_width(self, config: RunConfig, data: Splits) -> int:
        return 1  # the steering angle

    def default_loss_for(self, model: str) -> str:
        return "binary_crossentropy" if model == "unet" else "mse"

    def check_config(self, config: RunConfig) -> None:
        if config.model == "unet":
            if config.loss != "binary_crossentropy":
                raise ConfigError("loss", config.loss, "binary_crossentropy for model 'unet' (a per-pixel road mask)")
            if config.dataset != "carracing":
                raise ConfigError("model", config.model, "steering models (pilotnet, cnn, cnn-lstm) for "
                                  f"'{config.dataset}': road masks come from CarRacing's fixed colours, "
                                  "so unet needs dataset carracing")
        elif config.loss not in STEERING_LOSSES:
            raise ConfigError("loss", config.loss, f"{', '.join(STEERING_LOSSES)} for steering model '{config.model}'")
        if config.dataset == "carracing" and 0 < config.tracks < 3:
            raise ConfigError("tracks", config.tracks, "0 (= 24) or >= 3: at least one track each for training, "
                              "validation and test")

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, config: RunConfig) -> Splits:
        from pathlib import Path

        from workbench.data import driving

        if config.dataset == "carracing":
            parts = driving.load_carracing(config.tracks, config.track_steps, config.seed, config.validation_split)
            name, crop = "carracing", CARRACING_CROP
        else:
            path = Path(config.dataset.removeprefix("udacity:")).expanduser()
            path = path / "driving_log.csv" if path.is_dir() else path
            parts = driving.load_udacity(path, config.steering_correction, config.validation_split, config.seed)
            name, crop = f"udacity-{path.resolve().parent.name}", UDACITY_CROP
        stack = config.frame_stack if config.model == "cnn-lstm" else 0
        arrays = {}
        for split, sequences in (("train", parts.train), ("val", parts.val), ("test", parts.test)):
            x, y, owner = driving.examples(sequences, stack)
            if config.model == "unet":  # neighbouring frames are near duplicates
                x, owner = x[::SEGMENTATION_EVERY], owner[::SEGMENTATION_EVERY]
            if len(x) == 0:
                raise DataError(f"{parts.source}: the {split} split has no examples "
                                f"({len(sequences)} sequence(s), shortest {min(map(len, sequences))} frames"
                                + (f", frame_stack {stack})" if stack else ")"))
            if config.model == "unet":
                y = driving.road_mask(x)
            arrays[split] = (x, y, owner)
        return Splits(*arrays["train"][:2], *arrays["val"][:2], *arrays["test"][:2],
                      class_names=["background", "road"] if config.model == "unet" else ["steering"],
                      name=name, source=parts.source, notes=parts.notes,
                      extras={"crop": crop, "frame_stack": stack,
                              "test_owner": arrays["test"][2],
                              "test_sequences": [s.name for s in parts.test],
                              "train_steering_mean": float(np.mean(np.concatenate([s.steering for s in parts.train]))),
                              "sequences": {split: [s.name for s in seqs] for split, seqs in
                                            (("train", parts.train), ("validation", parts.val), ("test", parts.test))},
                              "test_tracks": [s.info["track_seed"] for s in parts.test if "track_seed" in s.info]})

    def train_augmentation(self, data: Splits, config: RunConfig):
        """Mirror half of the frames left-right: steering changes sign (a mask is mirrored with its frame)."""
        import tensorflow as tf

        from workbench.data.driving import flip_horizontally

        segmentation = config.model == "unet"
        # Plain TensorFlow ops, nothing for AutoGraph to rewrite; converting it anyway once picked up
        # another function's cached conversion.
        flip = tf.autograph.experimental.do_not_convert(flip_horizontally)

        def augment(x, y):
            return tf.cond(tf.random.uniform(()) < 0.5, lambda: flip(x, y, flip_target=segmentation), lambda: (x, y))

        return augment

    def preview(self, data: Splits) -> list:
        picks = np.linspace(0, len(data.x_train) - 1, 8).astype(int)
        frames = _last_frames(data.x_train[picks])
        if data.class_names == ["steering"]:
            from workbench.figures import image_grid

            titles = [f"steering {data.y_train[i]:+.2f}" for i in picks]
            return [image_grid(frames, titles, columns=8, title=f"{data.name}: training frames")]
        return [_mask_overlay(frames, data.y_train[picks][..., 0], None, f"{data.name}: training frames, road mask")]

    # ---- models -------------------------------------------------------------------------

    def build_model(self, config: RunConfig, data: Splits):
        from workbench.models import driving as models

        if config.model == "unet":
            return models.unet(config, data.input_shape)
        build = {"pilotnet": models.pilotnet, "cnn": models.small_cnn, "cnn-lstm": models.cnn_lstm}[config.model]
        return build(config, data.input_shape, data.extras["crop"])

    def metrics(self, config: RunConfig, data: Splits) -> list:
        import keras

        if config.model == "unet":
            return [keras.metrics.BinaryIoU(target_class_ids=[0, 1], threshold=0.5, name="mean_iou")]
        return [keras.metrics.RootMeanSquaredError(name="rmse"), keras.metrics.MeanAbsoluteError(name="mae")]

    def targets(self, y, config: RunConfig, data: Splits):
        if config.model == "unet":
            return y.astype(np.float32)
        return y.reshape(-1, 1).astype(np.float32)

    def exported_model(self, model, data: Splits):
        return model, data.x_test[:3]

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        if config.model == "unet":
            return self._evaluate_segmentation(model, data)
        from workbench.data.batches import predict

        predicted = predict(model, data.x_test).reshape(-1)
        truth = data.y_test
        zero_rmse = _rmse(truth, 0.0)
        result = Evaluation(metrics={"test_rmse": _rmse(truth, predicted), "test_mae": _mae(truth, predicted)})
        result.metrics["test_rmse_over_baseline_zero"] = result.metrics["test_rmse"] / max(zero_rmse, 1e-12)
        owner = data.extras["test_owner"]
        names = data.extras["test_sequences"]
        result.tables["test_sequences"] = {
            "sequence": names,
            "frames": [int((owner == i).sum()) for i in range(len(names))],
            "rmse": [_rmse(truth[owner == i], predicted[owner == i]) for i in range(len(names))],
            "baseline_zero_rmse": [_rmse(truth[owner == i], 0.0) for i in range(len(names))]}
        first = owner == 0
        result.figures["steering_trace"] = _steering_trace(truth[first], predicted[first], names[0])
        picks = np.linspace(0, len(data.x_test) - 1, SALIENCY_FRAMES).astype(int)
        result.figures["saliency"] = _saliency_figure(model, data.x_test[picks], truth[picks], predicted[picks])
        if data.extras["test_tracks"] and config.closed_loop_steps != -1:
            self._closed_loop(model, data, config, result)
        return result

    def _closed_loop(self, model, data: Splits, config: RunConfig, result: Evaluation) -> None:
        """The model steers every test track (one batch per step), then the expert drives the same tracks."""
        from workbench import simulator

        tracks = data.extras["test_tracks"]
        policy = lambda frames: model.predict_on_batch(frames.astype(np.float32))  # noqa: E731
        driven = simulator.drive(tracks, config.closed_loop_steps, policy, data.extras["frame_stack"], keep_frames=1)
        expert = simulator.drive(tracks, config.closed_loop_steps)
        model_coverage = np.array([d.coverage for d in driven])
        expert_coverage = np.array([d.coverage for d in expert])
        result.metrics.update({
            "closed_loop_tracks": len(tracks),
            "closed_loop_steps": float(np.mean([d.steps for d in driven])),
            "closed_loop_coverage": float(model_coverage.mean()),
            "closed_loop_reward": float(np.mean([d.reward for d in driven])),
            "closed_loop_laps_finished": float(sum(d.lap_finished for d in driven)),
            "closed_loop_expert_coverage": float(expert_coverage.mean()),
            "closed_loop_expert_reward": float(np.mean([d.reward for d in expert])),
            "closed_loop_expert_laps_finished": float(sum(d.lap_finished for d in expert)),
            "closed_loop_coverage_ratio": float(model_coverage.sum() / max(expert_coverage.sum(), 1e-12)),
            "closed_loop_worst_coverage_ratio": float(np.min(model_coverage / np.maximum(expert_coverage, 1e-12))),
        })
        result.tables["closed_loop"] = {
            "track_seed": tracks, "model_coverage": model_coverage.tolist(),
            "expert_coverage": expert_coverage.tolist(), "model_reward": [d.reward for d in driven],
            "expert_reward": [d.reward for d in expert], "model_lap_finished": [d.lap_finished for d in driven],
            "model_steps": [d.steps for d in driven]}
        result.figures["closed_loop_paths"] = _paths_figure(driven[:3], expert[:3])
        result.files[f"closed_loop/track-{tracks[0]}.gif"] = simulator.gif(
            driven[0].frames, every=GIF_EVERY, fps=round(50 / GIF_EVERY))

    def _evaluate_segmentation(self, model, data: Splits) -> Evaluation:
        from workbench.data.batches import predict

        probability = predict(model, data.x_test)[..., 0]
        scores = _mask_scores(data.y_test[..., 0] > 0, probability > 0.5)
        result = Evaluation(metrics={f"test_{k}": v for k, v in scores.items()})
        picks = np.linspace(0, len(data.x_test) - 1, SEGMENTATION_FRAMES).astype(int)
        result.figures["segmentation"] = _mask_overlay(
            data.x_test[picks], probability[picks] > 0.5, data.y_test[picks][..., 0] > 0,
            "Predicted road (blue) and the true road's outline (yellow), test frames")
        return result

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        """Steering: always zero, always the training mean. Road: the training frames' average mask."""
        if config.model == "unet":
            prior = data.y_train[..., 0].mean(axis=0) > 0.5
            scores = _mask_scores(data.y_test[..., 0] > 0, np.broadcast_to(prior, data.y_test.shape[:-1]))
            return {f"baseline_prior_test_{k}": v for k, v in scores.items()}
        mean = data.extras["train_steering_mean"]
        return {"baseline_zero_test_rmse": _rmse(data.y_test, 0.0), "baseline_zero_test_mae": _mae(data.y_test, 0.0),
                "baseline_mean_test_rmse": _rmse(data.y_test, mean), "baseline_mean_test_mae": _mae(data.y_test, mean),
                "baseline_train_steering_mean": mean}


# ---- scores and figures -------------------------------------------------------------------

def _rmse(truth, predicted) -> float:
    return float(np.sqrt(np.mean((np.asarray(truth, np.float64) - predicted) ** 2))) if len(truth) else float("nan")


def _mae(truth, predicted) -> float:
    return float(np.mean(np.abs(np.asarray(truth, np.float64) - predicted))) if len(truth) else float("nan")


def _mask_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    def iou(a, b):
        union = np.logical_or(a, b).sum()
        return float(np.logical_and(a, b).sum() / union) if union else 1.0

    road, background = iou(truth, predicted), iou(~truth, ~predicted)
    return {"road_iou": road, "background_iou": background, "mean_iou": (road + background) / 2,
            "pixel_accuracy": float((truth == predicted).mean())}


def _last_frames(x: np.ndarray) -> np.ndarray:
    """The newest frame of each example (examples are frames or stacks of frames)."""
    return x[:, -1] if x.ndim == 5 else x


def _steering_trace(truth, predicted, name: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.plot(truth, label="expert (true)", linewidth=1.2)
    ax.plot(predicted, label="model", linewidth=1.0, alpha=0.85)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set(title=f"Steering over {name} (held out)", xlabel="frame", ylabel="steering (+ = right)", ylim=(-1.05, 1.05))
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def _saliency_figure(model, x: np.ndarray, truth, predicted):
    """|d steering / d pixel| (max over colour channels) over the frame: where the model looks."""
    import tensorflow as tf
    from matplotlib.figure import Figure

    inputs = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        steering = model(inputs, training=False)
    gradient = tf.reduce_max(tf.abs(tape.gradient(steering, inputs)), axis=-1).numpy()
    gradient = _last_frames(gradient[..., None])[..., 0]
    frames = _last_frames(x)
    fig = Figure(figsize=(2.6 * len(x), 2.9), layout="constrained")
    for ax, frame, heat, true, guess in zip(np.atleast_1d(fig.subplots(1, len(x))), frames, gradient, truth, predicted):
        ax.imshow(frame)
        ax.imshow(heat / max(np.percentile(heat, 99.5), 1e-12), cmap="inferno", alpha=0.6, vmin=0, vmax=1)
        ax.set_title(f"true {true:+.2f}, model {guess:+.2f}", fontsize=8)
        ax.axis("off")
    fig.suptitle("Saliency: gradient of steering w.r.t. the input pixels (test frames)")
    return fig


def _mask_overlay(frames, masks, outlines, title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.4 * len(frames), 2.7), layout="constrained")
    for i, ax in enumerate(np.atleast_1d(fig.subplots(1, len(frames)))):
        ax.imshow(frames[i])
        ax.imshow(np.ma.masked_where(~np.asarray(masks[i], bool), masks[i]), cmap="winter", alpha=0.45, vmin=0, vmax=1)
        if outlines is not None:
            ax.contour(outlines[i].astype(float), levels=[0.5], colors="yellow", linewidths=0.8)
        ax.axis("off")
    fig.suptitle(title)
    return fig


def _paths_figure(driven, expert):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(driven), 4.4), layout="constrained")
    for ax, model_drive, expert_drive in zip(np.atleast_1d(fig.subplots(1, len(driven))), driven, expert):
        centre = np.vstack([model_drive.centre_line, model_drive.centre_line[:1]])
        ax.plot(centre[:, 0], centre[:, 1], color="lightgrey", linewidth=6, label="track")
        ax.plot(expert_drive.path[:, 0], expert_drive.path[:, 1], linewidth=1.2, label="expert")
        ax.plot(model_drive.path[:, 0], model_drive.path[:, 1], linewidth=1.2, label="model")
        ax.set_title(f"track {model_drive.track_seed}: tiles {model_drive.coverage:.0%} "
                     f"(expert {expert_drive.coverage:.0%})", fontsize=9)
        ax.set_aspect("equal")
        ax.axis("off")
    np.atleast_1d(fig.axes)[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("Closed loop on held-out tracks")
    return fig
