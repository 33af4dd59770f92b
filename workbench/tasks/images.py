"""Image classification: Fashion-MNIST, MNIST, scikit-learn digits or a class-per-folder tree.

Models: `mlp`, `cnn` (4 conv + batch norm) and `resnet` (small residual net).
Baseline: logistic regression on raw pixels, trained on the same training split.
"""

from __future__ import annotations

import numpy as np

from workbench.config import ConfigError, Option, RunConfig
from workbench.data.splits import DataError, Splits, split_holdout
from workbench.tasks.base import ClassificationTask, Evaluation

TEST_FRACTION = 0.2           # for datasets without an official test split
BASELINE_MAX_TRAIN = 20_000   # logistic regression cost grows with samples; plenty for a reference
MISCLASSIFIED_SHOWN = 24
MAX_SHIFT = 0.1               # random translation, as a fraction of the image side
FLIPPABLE = ("fashion-mnist",)  # mirrored clothes are still the same class; mirrored digits are not


class ImagesTask(ClassificationTask):
    name = "images"
    datasets = ("fashion-mnist", "mnist", "digits")
    dataset_prefixes = ("folder:",)
    models = ("mlp", "cnn", "resnet")
    losses = ("sparse_categorical_crossentropy", "categorical_crossentropy", "mse", "binary_crossentropy")
    default_dataset = "fashion-mnist"
    default_model = "cnn"
    default_loss = "sparse_categorical_crossentropy"
    options = (
        Option("image_size", int, 0, "image side in pixels for folder datasets; 0 = 64", minimum=0,
               allowed="an integer >= 0 (0 = 64)"),
        Option("augment", bool, False, "random shifts of training images, plus left-right flips where labels "
                                       "allow (fashion-mnist)"),
    )

    def check_config(self, config: RunConfig) -> None:
        if config.loss == "binary_crossentropy" and config.dataset in self.datasets:
            raise ConfigError("loss", config.loss, f"only for 2-class datasets; '{config.dataset}' has 10 "
                              "classes (use sparse_categorical_crossentropy, categorical_crossentropy or mse)")

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.data import images as sources

        if config.dataset == "fashion-mnist":
            source = sources.load_fashion_mnist()
        elif config.dataset == "mnist":
            source = sources.load_mnist()
        elif config.dataset == "digits":
            source = sources.load_digits()
        else:
            source = sources.load_image_folder(config.dataset.removeprefix("folder:"), config.image_size)
        if config.loss == "binary_crossentropy" and len(source.class_names) != 2:
            raise ConfigError("loss", config.loss, f"only for 2-class datasets; '{config.dataset}' has "
                              f"{len(source.class_names)} classes (use sparse_categorical_crossentropy)")
        x_pool, y_pool = source.x, source.y
        if source.x_test is None:
            x_pool, x_test, y_pool, y_test = split_holdout(x_pool, y_pool, TEST_FRACTION, config.seed, "test split")
        else:
            x_test, y_test = source.x_test, source.y_test
        x_train, x_val, y_train, y_val = split_holdout(x_pool, y_pool, config.validation_split, config.seed)
        if min(len(x_train), len(x_val), len(x_test)) == 0:
            raise DataError(f"dataset '{config.dataset}' is too small to split into train/validation/test "
                            f"({len(source.y)} images)")
        return Splits(x_train, y_train, x_val, y_val, x_test, y_test,
                      class_names=source.class_names, name=config.dataset, source=source.source)

    def train_augmentation(self, data: Splits, config: RunConfig):
        """With `augment`: a random shift of up to 10% per side (edge pixels repeat), and a left-right
        flip for datasets whose labels survive it. Drawn anew for every example and epoch."""
        if not config.augment:
            return None
        import tensorflow as tf

        height, width, _ = data.input_shape
        pad_y, pad_x = max(1, round(height * MAX_SHIFT)), max(1, round(width * MAX_SHIFT))
        flip = config.dataset in FLIPPABLE

        def augment(image, label):
            padded = tf.pad(image, [[pad_y, pad_y], [pad_x, pad_x], [0, 0]], mode="SYMMETRIC")
            image = tf.image.random_crop(padded, tf.shape(image))
            if flip:
                image = tf.image.random_flip_left_right(image)
            return image, label

        return augment

    def preview(self, data: Splits):
        from workbench.figures import image_grid

        shown = data.x_train[:16]
        titles = [data.class_names[int(i)] for i in data.y_train[:16]]
        return [image_grid(shown, titles, title=f"{data.name}: training examples")]

    # ---- models -------------------------------------------------------------------------

    def build_model(self, config: RunConfig, data: Splits):
        import keras
        from keras import layers

        from workbench.models import blocks

        inputs = keras.Input(shape=data.input_shape, name="image")
        if config.model == "mlp":
            x = layers.Flatten()(inputs)
            x = blocks.dense(x, 256, config)
            x = blocks.dense(x, 128, config)
        elif config.model == "cnn":
            x = inputs
            for filters in (32, 64):
                x = blocks.conv_bn(x, filters, config)
                x = blocks.conv_bn(x, filters, config)
                x = layers.MaxPooling2D()(x)
                x = layers.Dropout(config.dropout)(x) if config.dropout else x
            x = layers.Flatten()(x)
            x = blocks.dense(x, 128, config)
        else:  # resnet
            x = blocks.conv_bn(inputs, 32, config)
            for filters, strides in ((32, 1), (64, 2), (128, 2)):
                x = blocks.residual_block(x, filters, config, strides=strides)
            x = layers.GlobalAveragePooling2D()(x)
            x = layers.Dropout(config.dropout)(x) if config.dropout else x
        outputs = blocks.classifier_head(x, data.num_classes, config)
        return keras.Model(inputs, outputs, name=f"{self.name}_{config.model}")

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        from workbench.evaluation import classification_report
        from workbench.figures import image_grid
        from workbench.data.batches import predict

        probabilities = predict(model, data.x_test)
        report = classification_report(data.y_test, probabilities, data.class_names)
        wrong = np.flatnonzero(report.predicted != data.y_test)[:MISCLASSIFIED_SHOWN]
        titles = [f"{data.class_names[data.y_test[i]]} → {data.class_names[report.predicted[i]]}"
                  for i in wrong]
        report.figures["misclassified"] = image_grid(
            data.x_test[wrong], titles, title="Misclassified test images (true → predicted)")
        return report

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression

        n = min(len(data.x_train), BASELINE_MAX_TRAIN)
        pick = np.random.default_rng(config.seed).permutation(len(data.x_train))[:n]
        flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
        classifier = LogisticRegression(max_iter=300)
        classifier.fit(flat(data.x_train[pick]), data.y_train[pick])
        return {
            "baseline_val_accuracy": float(classifier.score(flat(data.x_val), data.y_val)),
            "baseline_test_accuracy": float(classifier.score(flat(data.x_test), data.y_test)),
            "baseline_train_samples": float(n),
        }
