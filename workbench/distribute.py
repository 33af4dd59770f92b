"""Where a run computes: tf.distribute strategy, mixed precision, and GPU slots for processes.

`batch_size` in RunConfig is per replica: the global batch is batch_size x replicas, so the
per-device work (and the usual learning rates) stay the same when a run moves to more devices.
An impossible request (a TPU that is not there, float16 on a CPU) is an error that says so,
never a silent change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from workbench.config import ConfigError, RunConfig

LOGICAL_CPUS_ENV = "WORKBENCH_LOGICAL_CPUS"  # split the CPU into N devices (tests, demos of mirroring)


@dataclass
class Placement:
    strategy: object
    kind: str                 # default, mirrored, multiworker, tpu
    replicas: int
    devices: list[str]
    precision: str            # the Keras dtype policy in force
    chief: bool               # only the chief logs to MLflow
    reason: str               # why `auto` chose what it chose
    precision_reason: str = ""  # why `precision auto` chose what it chose, where that needed a reason

    @property
    def on_cpu_alone(self) -> bool:
        return self.kind == "default" and all("CPU" in device.upper() for device in self.devices)

    def describe(self) -> dict[str, str]:
        tags = {"strategy": self.kind, "replicas": str(self.replicas), "devices": ", ".join(self.devices),
                "precision_policy": self.precision, "strategy_reason": self.reason}
        return {**tags, "precision_reason": self.precision_reason} if self.precision_reason else tags


def split_cpu(count: int) -> None:
    """Expose the CPU as `count` logical devices; must happen before TensorFlow starts its runtime."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)


def enable_memory_growth() -> None:
    """Let several processes share a GPU instead of the first one grabbing all its memory."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # runtime already initialized: the setting is fixed by then
            pass


def _tpu_resolver():
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except (ValueError, RuntimeError, tf.errors.NotFoundError):
        return None


def is_chief() -> bool:
    """The process that logs: the `chief` task, or worker 0 when the cluster has no chief."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and task.get("index", 0) == 0 and "chief" not in config.get("cluster", {})


def place(config: RunConfig) -> Placement:
    import tensorflow as tf

    if os.environ.get(LOGICAL_CPUS_ENV):
        split_cpu(int(os.environ[LOGICAL_CPUS_ENV]))
    enable_memory_growth()
    # Only physical-device queries before the strategy exists: listing logical devices starts
    # the TensorFlow runtime, after which a multi-worker strategy can no longer be created.
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    kind, reason = config.strategy, "asked for"
    resolver = None
    if kind in ("auto", "tpu"):
        resolver = _tpu_resolver() if (kind == "tpu" or os.environ.get("TPU_NAME") or
                                       os.path.exists("/dev/accel0") or os.environ.get("COLAB_TPU_ADDR")) else None
        if kind == "tpu" and resolver is None:
            raise ConfigError("strategy", "tpu", "auto, default, mirrored, multiworker: no TPU was found")
        if kind == "auto":
            if resolver is not None:
                kind, reason = "tpu", "a TPU cluster resolved"
            elif len(gpus) > 1:
                kind, reason = "mirrored", f"{len(gpus)} GPUs are visible"
            else:
                kind = "default"
                reason = "one GPU is visible" if gpus else "no TPU and no GPU: the CPU"
    if kind == "tpu":
        strategy = tf.distribute.TPUStrategy(resolver)
    elif kind == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
            [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(devices) < 2:
            raise ConfigError("strategy", "mirrored", f"needs 2 or more devices; this machine has {devices} "
                              f"(set {LOGICAL_CPUS_ENV}=2 to mirror over CPU slices)")
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    elif kind == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError("strategy", "multiworker", "set TF_CONFIG with the cluster and this worker's task "
                              "(see README: Running on GPUs, TPUs and clusters)")
        from workbench import multiworker

        if not multiworker.supported():
            import keras

            raise ConfigError("strategy", "multiworker", f"default, mirrored or tpu: multi-worker training is "
                              f"checked with Keras {', '.join(multiworker.CHECKED_KERAS)}x, not {keras.__version__}")
        multiworker.apply_keras_fixes()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    precision = choose_precision(config.precision, kind, gpus)
    import keras

    keras.mixed_precision.set_global_policy(precision)
    if kind == "default":
        devices = [d.name for d in (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))][:1]
    else:
        devices = list(strategy.extended.worker_devices)
    return Placement(strategy, kind, strategy.num_replicas_in_sync, devices, precision, is_chief(), reason)


def choose_precision(asked: str, kind: str, gpus: list[str]) -> str:
    """`auto`: bfloat16 on TPUs and GPUs that support it, float16 on older GPUs, float32 on CPUs
    (until `runs.prepare` has measured bfloat16 on a CPU that computes it natively: precision.py)."""
    if asked == "float32":
        return "float32"
    capability = _gpu_compute_capability() if gpus else None
    if asked == "auto":
        if kind == "tpu":
            return "mixed_bfloat16"
        if capability is None:
            return "float32"
        return "mixed_bfloat16" if capability >= (8, 0) else "mixed_float16"
    if asked == "mixed_float16" and capability is None and kind != "tpu":
        raise ConfigError("precision", asked, "float32, mixed_bfloat16 or auto on a CPU: float16 math needs a GPU")
    return asked


def _gpu_compute_capability() -> tuple[int, int] | None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return tuple(details.get("compute_capability", (0, 0)))


def gpu_slots(available: list[str], workers: int, per_worker: int = 1) -> list[str]:
    """CUDA_VISIBLE_DEVICES for each of `workers` processes: `per_worker` GPUs each, round robin
    when there are fewer GPUs than workers, and "" (CPU) when there are none."""
    if per_worker < 1:
        raise ConfigError("gpus_per_worker", per_worker, "an integer >= 1")
    if not available:
        return [""] * workers
    slots = []
    for worker in range(workers):
        start = (worker * per_worker) % len(available)
        slots.append(",".join(available[(start + i) % len(available)] for i in range(min(per_worker, len(available)))))
    return slots


def cpu_slots(available: list[int], workers: int) -> list[set[int]]:
    """The CPU cores each of `workers` processes is pinned to: the cores split into equal shares,
    or one core each, round robin, when there are more workers than cores. Pinned workers do not
    fight over the same cores, and each one sizes its thread pools to its share."""
    if workers <= len(available):
        return [set(available[w * len(available) // workers:(w + 1) * len(available) // workers])
                for w in range(workers)]
    return [{available[w % len(available)]} for w in range(workers)]


def visible_gpu_ids() -> list[str]:
    """GPU ids a parent process may hand out (honours an existing CUDA_VISIBLE_DEVICES)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return [d for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                         text=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]
