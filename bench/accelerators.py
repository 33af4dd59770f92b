"""Training throughput of each task's main model: float32 vs mixed precision vs XLA.

    .venv/bin/python bench/accelerators.py [SECONDS_PER_CASE]

For images/cnn (Fashion-MNIST shapes), text/transformer and speech/ds-cnn it measures samples
per second in steady state, twice: with the input pipeline excluded (one cached batch repeated)
and included (the workbench's tf.data pipeline over in-memory data). The reference row trains
the same images model from a plain Keras script (`model.fit` on NumPy arrays) in the same run.
Mixed precision is float16 on GPUs older than Ampere, bfloat16 on newer GPUs and on CPUs.
Prints a Markdown table and the device it ran on.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from workbench.tasks.configure import make_config  # noqa: E402
from workbench.data.splits import Splits  # noqa: E402
from workbench.distribute import choose_precision  # noqa: E402
from workbench.tasks import get_task  # noqa: E402
from workbench.training import compile_model, input_pipeline  # noqa: E402

BATCH = 128


def synthetic(task: str, n: int = 4096) -> Splits:
    """Data of each task's real shapes (throughput does not depend on the values)."""
    rng = np.random.default_rng(0)
    if task == "images":
        x = rng.random((n, 28, 28, 1), dtype=np.float32)
        classes = [str(i) for i in range(10)]
    elif task == "text":
        words = np.array("the a computer science politics art work people said one time year".split())
        x = np.array([" ".join(rng.choice(words, 60)) for _ in range(n)], dtype=object)
        classes = [str(i) for i in range(6)]
    else:
        x = rng.normal(0, 0.1, (n, 16_000)).astype(np.float32)
        classes = [str(i) for i in range(12)]
    y = rng.integers(0, len(classes), n)
    return Splits(x, y, x[:256], y[:256], x[:256], y[:256], classes, task, "synthetic")


def throughput(task: str, model_name: str, precision: str, jit: bool, seconds: float, with_input: bool) -> float:
    keras.mixed_precision.set_global_policy(precision)
    config = make_config(task=task, model=model_name, dataset="folder:/x" if task != "images" else "digits",
                                 batch_size=BATCH, jit_compile=jit, epochs=1)
    data = synthetic(task)
    spec = get_task(task)
    model = spec.build_model(config, data)
    compile_model(model, config, spec, data)
    if with_input:
        dataset = input_pipeline(data.x_train, data.y_train, BATCH, True, 0).repeat()
    else:
        batch = next(iter(input_pipeline(data.x_train[:BATCH], data.y_train[:BATCH], BATCH, False, 0)))
        dataset = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(dataset, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.fit(dataset, steps_per_epoch=10, epochs=1, verbose=0)
        steps += 10
    keras.mixed_precision.set_global_policy("float32")
    return steps * BATCH / (time.perf_counter() - started)


def plain_keras_images(seconds: float) -> float:
    """The reference: the same cnn layers, compiled and fitted by a plain script on NumPy arrays."""
    sys.path.insert(0, os.path.dirname(__file__))
    from plain_keras import cnn

    x = np.random.default_rng(0).random((4096, 28, 28, 1), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, 4096)
    model = cnn(10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:640], y[:640], batch_size=BATCH, epochs=1, verbose=0)
    samples, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        samples += len(x)
    return samples / (time.perf_counter() - started)


def main(seconds: float = 10.0) -> None:
    gpus = tf.config.list_physical_devices("GPU")
    device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "CPU"
    mixed = choose_precision("auto", "default", ["gpu"] if gpus else []) if gpus else "mixed_bfloat16"
    print(f"device: {device} ({os.cpu_count()} CPU cores); batch {BATCH}; {seconds:.0f} s per measurement\n")
    print("| task/model | variant | samples/s, input excluded | samples/s, input included |")
    print("|---|---|---|---|")
    for task, model_name in (("images", "cnn"), ("text", "transformer"), ("speech", "ds-cnn")):
        for label, precision, jit in (("float32", "float32", False), (mixed, mixed, False),
                                      ("float32 + XLA", "float32", True)):
            if task == "text" and jit:
                print(f"| {task}/{model_name} | {label} | n/a: string ops | n/a: string ops |")
                continue
            try:
                rates = [f"{throughput(task, model_name, precision, jit, seconds, inputs):.0f}" for inputs in (False, True)]
            except Exception as exc:  # e.g. XLA cannot compile a model's string ops
                keras.mixed_precision.set_global_policy("float32")
                rates = [f"n/a: {type(exc).__name__}"] * 2
            print(f"| {task}/{model_name} | {label} | {rates[0]} | {rates[1]} |", flush=True)
    print(f"| images/cnn | plain Keras script (reference) | | {plain_keras_images(seconds):.0f} |")


if __name__ == "__main__":
    main(*[float(a) for a in sys.argv[1:]])
