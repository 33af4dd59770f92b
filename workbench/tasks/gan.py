"""Image generation with GANs on the image datasets (Fashion-MNIST, scikit-learn digits, folders).

Models: `dcgan` (noise -> image) and `conditional-gan` (noise + one-hot class -> image), trained
by the custom step in workbench.models.gan. The logged model is the generator; it takes one float
array per image: `latent_dim` standard-normal values, followed by the one-hot class when
conditional (`generator_inputs` builds it).

Quality is judged by a small CNN classifier trained on the same training split: how often it
recognises the requested class in conditional samples, and the Fréchet distance between its
features of real and generated images, beside the same distance between two halves of the real
test split (what "as good as real" looks like). Baseline: a per-class Gaussian over the pixels'
principal components.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from workbench.config import Option, RunConfig
from workbench.data.splits import Splits
from workbench.tasks.base import Evaluation, Task

PER_CLASS_SHOWN = 8        # columns of the sample grid (conditional: one row per class)
UNCONDITIONAL_SHOWN = 64   # dcgan: an 8 x 8 grid
JUDGE_MIN_STEPS = 300      # the judge trains for at least this many batches (more epochs on small data)
JUDGE_MAX_EPOCHS = 10
JUDGE_BATCH = 64
BASELINE_COMPONENTS = 256  # principal components the Gaussian baseline models (all of them for digits)
BASELINE_RIDGE = 1e-4      # added to the covariance, which is singular for rare classes


class GanTask(Task):
    name = "gan"
    datasets = ("fashion-mnist", "digits")
    dataset_prefixes = ("folder:",)
    models = ("dcgan", "conditional-gan")
    losses = ("binary_crossentropy",)  # the discriminator's real-vs-generated loss
    default_dataset = "fashion-mnist"
    default_model = "conditional-gan"
    default_loss = "binary_crossentropy"
    options = (
        Option("latent_dim", int, 64, "size of the generator's noise vector", minimum=1),
        Option("image_size", int, 0, "image side in pixels for folder datasets; 0 = 64", minimum=0,
               allowed="an integer >= 0 (0 = 64)"),
    )
    supports_user_models = False  # a generator and a discriminator train against each other
    # Generator and discriminator losses measure the game, not the images; the Fréchet distance
    # to real validation images does, so early stopping and pruning watch it.
    monitor = "val_frechet_distance"
    monitor_mode = "min"
    main_metric = "test_frechet_distance"

    def search_space(self, model: str) -> dict[str, dict]:
        return {
            "learning_rate": {"type": "float", "low": 5e-5, "high": 2e-3, "log": True},
            "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop"]},
            "latent_dim": {"type": "categorical", "choices": [32, 64, 128]},
            "dropout": {"type": "float", "low": 0.0, "high": 0.4},
            "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
        }

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.tasks import get_task

        # The images task's sources and splits; its loss check concerns classifiers, so it is
        # handed a classifier's loss.
        return get_task("images").load_data(dataclasses.replace(config, loss="sparse_categorical_crossentropy"))

    def targets(self, y, config: RunConfig, data: Splits):
        return np.eye(data.num_classes, dtype=np.float32)[y]

    def preview(self, data: Splits):
        from workbench.tasks import get_task

        return get_task("images").preview(data)

    # ---- model and training -------------------------------------------------------------

    def build_model(self, config: RunConfig, data: Splits):
        from workbench.models.gan import GAN, build_discriminator, build_generator

        conditional = config.model == "conditional-gan"
        generator = build_generator(config.latent_dim, data.input_shape, data.num_classes, conditional, config)
        discriminator = build_discriminator(data.input_shape, data.num_classes, conditional, config)
        return GAN(generator, discriminator, config.latent_dim, data.num_classes, conditional, seed=config.seed,
                   name=f"gan_{config.model.replace('-', '_')}")

    def compile(self, model, config: RunConfig, data: Splits, replicas: int = 1) -> None:
        steps_per_epoch = data.steps_per_epoch(config.batch_size * replicas)
        model.compile(_optimizer(config, steps_per_epoch), _optimizer(config, steps_per_epoch),
                      judge=self.judge(data, config), jit_compile=config.jit_compile,
                      steps_per_execution=config.steps_per_execution)

    def epoch_callbacks(self, config: RunConfig, data: Splits, run) -> list:
        import keras

        from workbench.errors import TrainingDiverged

        inputs, row_labels = sample_grid_inputs(config.latent_dim, data, config.model == "conditional-gan",
                                                config.seed)

        class SampleGrid(keras.callbacks.Callback):
            """The same noise through the generator after every epoch: the progression, as images."""

            def on_epoch_end(self, epoch, logs=None):
                if run.run_id is None:  # a non-chief worker logs nothing: skip the drawing too
                    return
                images = self.model.generator(inputs, training=False).numpy()
                run.log_figure(sample_mosaic(images, row_labels, f"{config.model} on {data.name}, epoch {epoch + 1}"),
                               f"samples/epoch_{epoch + 1:03d}")

        class DivergenceGuard(keras.callbacks.Callback):
            """The shared NaN guard watches `loss`, which a GAN does not have: watch both of its losses
            (per epoch: a non-finite batch makes the epoch's mean non-finite too)."""

            def on_epoch_end(self, epoch, logs=None):
                for name in ("generator_loss", "discriminator_loss"):
                    value = float((logs or {}).get(name, 0.0))
                    if not math.isfinite(value):
                        raise TrainingDiverged(f"training diverged: {name} became {value} in epoch {epoch + 1} "
                                               "(try a smaller learning_rate)")

        return [DivergenceGuard(), SampleGrid()]

    def judge(self, data: Splits, config: RunConfig):
        """The classifier that scores generated images, trained once per dataset and seed."""
        key = f"gan_judge_seed{config.seed}"
        if key not in data.extras:
            import keras

            from workbench.models.gan import build_judge
            from workbench.data.batches import input_pipeline

            judge = build_judge(data.input_shape, data.num_classes, config.seed)
            judge.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
            steps_per_epoch = data.steps_per_epoch(JUDGE_BATCH)
            epochs = min(JUDGE_MAX_EPOCHS, max(2, -(-JUDGE_MIN_STEPS // steps_per_epoch)))
            train = input_pipeline(data.x_train, data.y_train, JUDGE_BATCH, shuffle=True, seed=config.seed)
            judge.fit(train, epochs=epochs, verbose=0)
            data.extras[key] = judge
        return data.extras[key]

    def test_metrics(self, model, config: RunConfig, data: Splits) -> dict[str, float]:
        from workbench.data.batches import input_pipeline

        test = input_pipeline(data.x_test, self.targets(data.y_test, config, data), 256, shuffle=False, seed=0)
        results = model.evaluate(test, verbose=0, return_dict=True)
        return {f"test_{name}": float(results[name]) for name in ("generator_loss", "discriminator_loss")}

    def exported_model(self, model, data: Splits):
        """The generator alone: one float array per image in, one image out."""
        inputs, _ = sample_grid_inputs(model.latent_dim, data, model.conditional, seed=0)
        return model.generator, inputs[::PER_CLASS_SHOWN][:5] if model.conditional else inputs[:5]

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        from workbench.data.batches import predict

        conditional = model.conditional
        reference, requested = _test_halves(data, config.seed)
        noise = np.random.default_rng(config.seed).standard_normal((len(requested), config.latent_dim))
        generated = predict(model.generator, generator_inputs(noise, data.y_test[requested], data.num_classes,
                                                              conditional))
        scores, predicted = self._scores(generated, data, config, conditional)
        metrics = {f"test_{name}": value for name, value in scores.items()}
        real_features, real_probabilities = self._judge_outputs(data.x_test, data, config)
        metrics["test_classifier_accuracy"] = float(np.mean(real_probabilities.argmax(1) == data.y_test))
        metrics["test_frechet_distance_real"] = frechet_distance(real_features[reference], real_features[requested])

        inputs, row_labels = sample_grid_inputs(config.latent_dim, data, conditional, config.seed)
        figures = {"samples": sample_mosaic(predict(model.generator, inputs), row_labels,
                                            f"{config.model} on {data.name}: generated samples")}
        figures["class_distribution"] = _class_distribution(predicted, data.y_test[requested], data.class_names)
        tables = {}
        if conditional:
            hit = predicted == data.y_test[requested]
            real_hit = real_probabilities.argmax(1) == data.y_test
            tables["per_class"] = {
                "class": list(data.class_names),
                "conditional_accuracy": [float(hit[data.y_test[requested] == c].mean())
                                         for c in range(data.num_classes)],
                "classifier_accuracy_on_real": [float(real_hit[data.y_test == c].mean())
                                                for c in range(data.num_classes)],
            }
        return Evaluation(metrics=metrics, figures=figures, tables=tables)

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        """A classical generative model: one Gaussian (mean and full covariance) per class over the
        pixels' leading principal components, sampled with the same requested classes as the GAN
        and scored by the same judge."""
        from sklearn.decomposition import PCA

        _, requested = _test_halves(data, config.seed)
        labels = data.y_test[requested]
        rng = np.random.default_rng(config.seed)
        flat = data.x_train.reshape(len(data.x_train), -1)
        pca = PCA(min(BASELINE_COMPONENTS, *flat.shape), random_state=config.seed).fit(flat)
        codes = pca.transform(flat).astype(np.float64)
        sampled = np.zeros((len(labels), pca.n_components_))
        for c in np.unique(labels):
            own = codes[data.y_train == c]
            covariance = np.cov(own, rowvar=False) if len(own) > 1 else np.zeros((own.shape[1],) * 2)
            sampled[labels == c] = rng.multivariate_normal(own.mean(axis=0), covariance + BASELINE_RIDGE * np.eye(
                own.shape[1]), int(np.sum(labels == c)), method="eigh")
        samples = pca.inverse_transform(sampled)
        samples = np.clip(samples, 0, 1).reshape((len(labels), *data.input_shape))
        scores, _ = self._scores(samples, data, config, conditional=config.model == "conditional-gan")
        return {f"baseline_{k}": v for k, v in scores.items()}

    def _scores(self, generated: np.ndarray, data: Splits, config: RunConfig, conditional: bool):
        """Fréchet distance to the reference half of the test split, class entropy and, when the
        images were asked for a class, how often the judge sees that class; and the judged classes."""
        reference, requested = _test_halves(data, config.seed)
        real_features, _ = self._judge_outputs(data.x_test[reference], data, config)
        features, probabilities = self._judge_outputs(generated, data, config)
        predicted = probabilities.argmax(1)
        scores = {"frechet_distance": frechet_distance(real_features, features),
                  "class_entropy": class_entropy(predicted, data.num_classes)}
        if conditional:
            scores["conditional_accuracy"] = float(np.mean(predicted == data.y_test[requested]))
        return scores, predicted

    def _judge_outputs(self, images: np.ndarray, data: Splits, config: RunConfig):
        from workbench.models.gan import judge_outputs
        from workbench.data.batches import predict

        features, probabilities = predict(judge_outputs(self.judge(data, config)), images)
        return features.astype(np.float64), probabilities


# ---- helpers ------------------------------------------------------------------------------


def generator_inputs(noise: np.ndarray, labels: np.ndarray, num_classes: int, conditional: bool) -> np.ndarray:
    """What the generator takes: noise, followed by the one-hot class when conditional."""
    noise = np.asarray(noise, dtype=np.float32)
    if not conditional:
        return noise
    return np.concatenate([noise, np.eye(num_classes, dtype=np.float32)[labels]], axis=1)


def sample_grid_inputs(latent_dim: int, data: Splits, conditional: bool, seed: int):
    """Fixed generator inputs for a grid: one row per class (conditional) or an 8 x 8 grid."""
    rng = np.random.default_rng(seed)
    if conditional:
        labels = np.repeat(np.arange(data.num_classes), PER_CLASS_SHOWN)
        noise = rng.standard_normal((len(labels), latent_dim))
        return generator_inputs(noise, labels, data.num_classes, True), list(data.class_names)
    noise = rng.standard_normal((UNCONDITIONAL_SHOWN, latent_dim))
    return generator_inputs(noise, None, data.num_classes, False), [""] * (UNCONDITIONAL_SHOWN // PER_CLASS_SHOWN)


def sample_mosaic(images: np.ndarray, row_labels: list[str], title: str):
    """Images tiled into one picture, a row per label: one axes, so it draws fast every epoch."""
    from matplotlib.figure import Figure

    rows = len(row_labels)
    images = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    n, height, width, channels = images.shape
    columns = n // rows
    padded = np.pad(images[: rows * columns], ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=1.0)
    tiles = padded.reshape(rows, columns, height + 2, width + 2, channels).transpose(0, 2, 1, 3, 4)
    mosaic = tiles.reshape(rows * (height + 2), columns * (width + 2), channels)
    fig = Figure(figsize=(max(4.0, 0.7 * columns + 1.5), 0.7 * rows + 0.8), layout="constrained")
    ax = fig.subplots()
    ax.imshow(mosaic.squeeze(-1) if channels == 1 else mosaic, cmap="gray" if channels == 1 else None,
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([(r + 0.5) * (height + 2) for r in range(rows)], row_labels if any(row_labels) else [""] * rows)
    ax.tick_params(length=0)
    ax.set_title(title)
    return fig


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors (rows)."""
    import warnings

    import scipy.linalg

    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # features that are always 0 make covariances singular: expected
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # a singular product: a tiny ridge makes the root well defined
        ridge = 1e-6 * np.eye(len(cov_a))
        root = scipy.linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root.real))


def class_entropy(predicted: np.ndarray, num_classes: int) -> float:
    """Entropy of the predicted-class histogram over log(classes): 1 = all classes equally often,
    0 = a single class (mode collapse)."""
    counts = np.bincount(predicted, minlength=num_classes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(num_classes)) + 0.0  # + 0.0: no "-0.0" for one class


def _test_halves(data: Splits, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of the test split: real images to compare against, and the classes
    generated images are asked for (so real-vs-generated and real-vs-real use equal sample sizes)."""
    order = np.random.default_rng(seed).permutation(len(data.x_test))
    half = len(order) // 2
    return np.sort(order[:half]), np.sort(order[half: 2 * half])


def _optimizer(config: RunConfig, steps_per_epoch: int):
    """The config's optimizer and schedule; Adam with beta_1 = 0.5 as in DCGAN, since momentum on
    stale gradients of a moving opponent makes the game oscillate."""
    import keras

    from workbench.models.compiling import make_optimizer

    optimizer = make_optimizer(config, steps_per_epoch)
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam.from_config({**optimizer.get_config(), "beta_1": 0.5})
    return optimizer


def _class_distribution(generated: np.ndarray, requested: np.ndarray, class_names: list[str]):
    from matplotlib.figure import Figure

    k = len(class_names)
    fig = Figure(figsize=(max(5.0, 0.6 * k + 2), 3.4), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(k)
    ax.bar(positions - 0.2, np.bincount(requested, minlength=k), width=0.4, label="real test images")
    ax.bar(positions + 0.2, np.bincount(generated, minlength=k), width=0.4, label="generated (judged class)")
    ax.set_xticks(positions, class_names, rotation=45, ha="right")
    ax.set(title="Classes of generated images, as the judge classifier sees them", ylabel="images")
    ax.legend()
    return fig
