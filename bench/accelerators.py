"""Training throughput of each task's main model against the machine's peak: float32 vs mixed
precision vs XLA.

    .venv/bin/python bench/accelerators.py [SECONDS_PER_CASE]

For images/cnn (Fashion-MNIST shapes), text/transformer and speech/ds-cnn:
- samples per second in steady state, with the input pipeline excluded (one cached batch repeated)
  and included (the workbench's tf.data pipeline over in-memory data), and the input pipeline alone;
- achieved FLOP/s: samples/s x 3 x the forward FLOPs of one example (TensorFlow's profiler counts
  the traced forward graph; a backward pass costs about twice the forward), and that as a fraction
  of the CPU's float32 peak (see `cpu_peak`). On a GPU the fraction is left out.
The reference row trains the same images model, compiled the same way, from a plain Keras script
(`model.fit` on NumPy arrays). Every case is timed the same way: one `fit` call, a callback
measures the batches after a warm-up. Mixed precision is float16 on GPUs older than Ampere,
bfloat16 on newer GPUs and on CPUs. On a CPU it ends with what `precision auto` picks for each
model (workbench/precision.py's probe). Prints Markdown tables and the device it ran on.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from workbench.data.splits import Splits  # noqa: E402
from workbench.distribute import choose_precision  # noqa: E402
from workbench.tasks import get_task  # noqa: E402
from workbench.tasks.configure import make_config  # noqa: E402
from workbench.training import compile_model, input_pipeline  # noqa: E402

BATCH = 128
WARMUP_BATCHES = 5


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


def cpu_peak() -> tuple[float, float, str]:
    """(float32 FLOP/s, bfloat16 FLOP/s, how they were derived): cores x clock x FLOP per cycle.

    Cores: the physical cores this process may use (hyperthreads share one core's FMA units).
    FLOP per cycle per core, from /proc/cpuinfo's vendor, family and flags: two FMA pipes of 256
    bits (AVX2 + FMA, and AMD Zen 4's AVX-512, run as two 256-bit halves) give 2 x 8 lanes x 2 =
    32 float32 FLOP; 512-bit FMA pipes (Intel's AVX-512 with two units, AMD Zen 5, family 26) give
    64 (Intel parts with one AVX-512 unit give 32: there the figure is an upper bound).
    AVX512_BF16's dot product doubles that for bfloat16; AMX tiles give 1024 bfloat16 FLOP per cycle
    (Sapphire Rapids). The clock is what /proc/cpuinfo's `cpu MHz` says (boost clocks raise the real
    peak: the fractions are upper bounds)."""
    lines = open("/proc/cpuinfo").read().splitlines()

    def field(name: str, default: str = "") -> str:
        return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(name)), default)

    flags, vendor = set(field("flags").split()), field("vendor_id", "unknown vendor")
    ghz = float(field("cpu MHz", "0") or 0) / 1000
    threads_per_core = max(1, int(field("siblings", "1")) // max(1, int(field("cpu cores", "1"))))
    cores = max(1, len(os.sched_getaffinity(0)) // threads_per_core)
    if "avx512f" in flags:
        wide = vendor != "AuthenticAMD" or int(field("cpu family", "0")) >= 26
        fp32, isa = (64, "AVX-512, 512-bit FMA pipes") if wide else (32, "AVX-512 as two 256-bit halves")
    elif "avx2" in flags and "fma" in flags:
        fp32, isa = 32, "AVX2 + FMA"
    elif "avx" in flags:
        fp32, isa = 16, "AVX"
    else:
        fp32, isa = 8, "SSE or unknown"
    bf16, bf16_isa = fp32, "no native bfloat16: converted to float32"
    if "amx_bf16" in flags:
        bf16, bf16_isa = 1024, "AMX tiles"
    elif "avx512_bf16" in flags:
        bf16, bf16_isa = 2 * fp32, "AVX512_BF16 dot products"
    how = (f"{cores} physical cores x {ghz:.2f} GHz x {fp32} float32 FLOP/cycle ({vendor}, {isa}) = "
           f"{cores * ghz * fp32:.0f} GFLOP/s; bfloat16: {bf16} FLOP/cycle ({bf16_isa}) = "
           f"{cores * ghz * bf16:.0f} GFLOP/s")
    return cores * ghz * 1e9 * fp32, cores * ghz * 1e9 * bf16, how


def forward_flops(model: keras.Model, data: Splits) -> float:
    """FLOPs of one forward pass of one example, counted by TensorFlow's profiler on the traced graph
    (string ops count zero, as they should)."""
    example = data.x_train[:1]
    spec = tf.TensorSpec((1, *example.shape[1:]), tf.string if example.dtype == object else example.dtype)
    vectorizers = [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]
    if vectorizers:  # count from the token ids and bags on: their shapes are only known after the strings
        model = keras.Model([v.output for v in vectorizers], model.output)
        spec = [tf.TensorSpec((1, *v.output.shape[1:]), v.output.dtype) for v in vectorizers]
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return float(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


class Rate(keras.callbacks.Callback):
    """Samples per second over the batches after the warm-up; stops the fit after `seconds`."""

    def __init__(self, seconds: float, batch_size: int):
        super().__init__()
        self.seconds, self.batch_size, self.seen, self.batches, self.started = seconds, batch_size, 0, 0, None

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1  # across epochs: `batch` restarts at 0 in each
        if self.seen == WARMUP_BATCHES:
            self.started = time.perf_counter()
        elif self.started is not None:
            self.batches += 1
            if time.perf_counter() - self.started >= self.seconds:
                self.model.stop_training = True

    @property
    def per_second(self) -> float:
        return self.batches * self.batch_size / (time.perf_counter() - self.started)


def built(task: str, model_name: str, precision: str, jit: bool, data: Splits) -> keras.Model:
    keras.mixed_precision.set_global_policy(precision)
    config = make_config(task=task, model=model_name, dataset="folder:/x" if task != "images" else "digits",
                         batch_size=BATCH, jit_compile=jit, epochs=1)
    spec = get_task(task)
    model = spec.build_model(config, data)
    compile_model(model, config, spec, data)
    return model


def throughput(model: keras.Model, data: Splits, seconds: float, with_input: bool) -> float:
    if with_input:
        dataset = input_pipeline(data.x_train, data.y_train, BATCH, True, 0).repeat()
    else:
        batch = next(iter(input_pipeline(data.x_train[:BATCH], data.y_train[:BATCH], BATCH, False, 0)))
        dataset = tf.data.Dataset.from_tensors(batch).repeat()
    rate = Rate(seconds, BATCH)
    model.fit(dataset, steps_per_epoch=10**9, epochs=1, callbacks=[rate], verbose=0)
    return rate.per_second


def input_alone(data: Splits, seconds: float) -> float:
    """Samples per second the input pipeline delivers with no model to feed."""
    batches = iter(input_pipeline(data.x_train, data.y_train, BATCH, True, 0).repeat())
    for _ in range(WARMUP_BATCHES):
        next(batches)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        next(batches)
        count += 1
    return count * BATCH / (time.perf_counter() - started)


def plain_keras_images(seconds: float) -> float:
    """The reference: the same cnn layers and compile, fitted by a plain script on NumPy arrays."""
    sys.path.insert(0, os.path.dirname(__file__))
    from plain_keras import cnn

    data = synthetic("images")
    model = cnn(10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rate = Rate(seconds, BATCH)
    model.fit(data.x_train, data.y_train, batch_size=BATCH, epochs=1000, callbacks=[rate], verbose=0)
    return rate.per_second


def main(seconds: float = 10.0) -> None:
    gpus = tf.config.list_physical_devices("GPU")
    device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "CPU"
    mixed = choose_precision("auto", "default", ["gpu"] if gpus else []) if gpus else "mixed_bfloat16"
    print(f"device: {device} ({os.cpu_count()} CPU cores); batch {BATCH}; {seconds:.0f} s per measurement")
    if not gpus:
        fp32_peak, bf16_peak, how = cpu_peak()
        print(f"CPU peak: {how}")
    print("\n| task/model | variant | forward MFLOP/example | samples/s, input excluded | samples/s, input included "
          "| training GFLOP/s (input excluded) | of the float32 peak | of the bfloat16 peak |")
    print("|---|---|---|---|---|---|---|---|")
    inputs = {}
    for task, model_name in (("images", "cnn"), ("text", "transformer"), ("speech", "ds-cnn")):
        data = synthetic(task)
        inputs[task] = input_alone(data, seconds)
        flops = forward_flops(built(task, model_name, "float32", False, data), data)
        for label, precision, jit in (("float32", "float32", False), (mixed, mixed, False),
                                      ("float32 + XLA", "float32", True)):
            if task == "text" and jit:
                print(f"| {task}/{model_name} | {label} | | n/a: string ops | n/a: string ops | | | |")
                continue
            try:
                model = built(task, model_name, precision, jit, data)
                excluded, included = (throughput(model, data, seconds, i) for i in (False, True))
            except Exception as exc:  # e.g. XLA cannot compile a model's string ops
                print(f"| {task}/{model_name} | {label} | | n/a: {type(exc).__name__} | | | |")
                continue
            finally:
                keras.mixed_precision.set_global_policy("float32")
            achieved = excluded * 3 * flops
            fractions = ("", "") if gpus else (f"{achieved / fp32_peak:.0%}", f"{achieved / bf16_peak:.0%}")
            print(f"| {task}/{model_name} | {label} | {flops / 1e6:.1f} | {excluded:.0f} | {included:.0f} | "
                  f"{achieved / 1e9:.1f} | {fractions[0]} | {fractions[1]} |", flush=True)
    print(f"| images/cnn | plain Keras script (reference), float32 | | | {plain_keras_images(seconds):.0f} | | | |")
    print("\n| task | input pipeline alone, samples/s |\n|---|---|")
    for task, rate in inputs.items():
        print(f"| {task} | {rate:.0f} |")
    if not gpus:
        auto_choices()


def auto_choices() -> None:
    """What `precision auto` picks for each model on this CPU, by its own probe, in a scratch home."""
    import tempfile

    from workbench.precision import choose_cpu_precision

    print("\n| task/model | `precision auto` picks | why |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["WORKBENCH_HOME"] = scratch
        for task, model_name in (("images", "cnn"), ("text", "transformer"), ("speech", "ds-cnn")):
            data = synthetic(task)
            config = make_config(task=task, model=model_name, batch_size=BATCH, epochs=1,
                                 dataset="folder:/x" if task != "images" else "digits")
            precision, reason = choose_cpu_precision(config, get_task(task), data, training_steps=10**6)
            print(f"| {task}/{model_name} | {precision} | {reason} |", flush=True)


if __name__ == "__main__":
    main(*[float(a) for a in sys.argv[1:]])
