"""The reference: the images `cnn` trained by a plain Keras script, no workbench, no tracking.

    .venv/bin/python bench/plain_keras.py EPOCHS

Same data (Fashion-MNIST, 54,000 train / 6,000 validation), same layers, same batch size and
optimizer as `workbench train --model cnn`. Prints one JSON line with the seconds of each epoch.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from workbench.data.images import load_fashion_mnist  # noqa: E402  (reads the same IDX files)


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def cnn(num_classes: int) -> keras.Model:
    inputs = keras.Input(shape=(28, 28, 1))
    x = inputs
    for filters in (32, 64):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x))


def main(epochs: int) -> None:
    keras.utils.set_random_seed(42)
    source = load_fashion_mnist()
    x_train, y_train, x_val, y_val = source.x[:54000], source.y[:54000], source.x[54000:], source.y[54000:]
    model = cnn(10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, validation_data=(x_val, y_val),
              callbacks=[timer], verbose=0)
    print(json.dumps({"epoch_seconds": timer.seconds}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
