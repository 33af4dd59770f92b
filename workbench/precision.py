"""`precision auto` on a CPU: bfloat16 where the CPU computes it natively and it trains this model
faster, float32 everywhere else.

A CPU with AVX512_BF16 or AMX (read from /proc/cpuinfo's flags) runs bfloat16 dot products at up
to twice the float32 rate, but how much of that reaches a model depends on the model (casts,
normalization and memory-bound layers stay as slow as before; bench/accelerators.py). So the
answer is measured: a probe trains the run's own model for a few steps on one batch in float32 and
in mixed_bfloat16, alternating, and bfloat16 is kept when it is at least MIN_GAIN faster (the
probe leaves out augmentation and the input pipeline, so its gain is an upper bound). The answer
is kept in `<home>/precision.json` per CPU and usable cores, TensorFlow version, task, dataset,
model, options, input shape and batch size, so repeated runs agree and the probe is paid once. Runs shorter than WORTH_PROBING_STEPS stay float32
unprobed: the probe would cost more than it could save. Output layers stay float32 either way
(the tasks' heads fix their dtype).
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

from workbench.procs import file_lock, usable_cores

NATIVE_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
WARMUP_STEPS = 2
ROUNDS, STEPS_PER_ROUND = 3, 3
MIN_GAIN = 1.1             # bfloat16 must be this much faster: smaller gains are within run-to-run noise
WORTH_PROBING_STEPS = 2000  # training steps before a probe (two builds, 22 steps) is worth its cost
CACHE_FILE = "precision.json"


@functools.lru_cache(maxsize=1)  # read once per process: it does not change
def cpu_flags() -> tuple[str, frozenset[str]]:
    """(model name, flags) of this machine's CPU; ("", set()) where /proc/cpuinfo is missing."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "", frozenset()
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return name, frozenset(flags)


def native_bfloat16() -> str | None:
    """The CPU flag that makes bfloat16 native here, or None."""
    flags = cpu_flags()[1]
    return next((flag for flag in NATIVE_BFLOAT16_FLAGS if flag in flags), None)


def probes(training_steps: int) -> bool:
    """Whether `auto` consults the probe (measured now or read from the cache) for a run this long."""
    return native_bfloat16() is not None and training_steps >= WORTH_PROBING_STEPS


def choose_cpu_precision(config, task, data, training_steps: int) -> tuple[str, str]:
    """(Keras dtype policy, why) for `precision auto` on a CPU; see the module docs."""
    flag = native_bfloat16()
    if flag is None:
        return "float32", "auto: this CPU has no native bfloat16 (AVX512_BF16 or AMX)"
    if not probes(training_steps):
        return "float32", (f"auto: {training_steps} training steps are too few to pay for measuring "
                           f"bfloat16 (from {WORTH_PROBING_STEPS})")
    with file_lock(_cache_path().with_suffix(".lock")):  # workers starting together probe once
        cache = _read_cache()
        key = _cache_key(config, data)
        if key not in cache:
            try:
                cache[key] = _probe(config, task, data)
            except Exception as exc:  # a model this probe cannot step on one batch: train it as before
                first_line = (str(exc).strip().splitlines() or [""])[0][:200]
                return "float32", f"auto: measuring bfloat16 failed ({type(exc).__name__}: {first_line}), so float32"
            _write_cache(cache)
    float32, bfloat16 = cache[key]["float32"], cache[key]["mixed_bfloat16"]
    gain = float32 / bfloat16
    chosen = "mixed_bfloat16" if gain >= MIN_GAIN else "float32"
    return chosen, (f"auto: {flag} on this CPU; a probe of this model measured bfloat16 at {gain:.2f}x "
                    f"float32's speed ({1000 * float32:.0f} and {1000 * bfloat16:.0f} ms per step), "
                    f"{'at least' if chosen != 'float32' else 'below'} the {MIN_GAIN}x that bfloat16 must reach")


def _cache_key(config, data) -> str:
    """What the answer depends on: the CPU and the cores this process may use, TensorFlow, and
    everything that shapes the model and its steps."""
    import numpy as np
    import tensorflow as tf

    cores = len(usable_cores() or []) or os.cpu_count()
    return "|".join(map(str, [cpu_flags()[0], cores, tf.__version__, config.task, config.dataset, config.model,
                              np.shape(data.x_train)[1:], config.batch_size, config.jit_compile,
                              sorted(config.options.items())]))


def _probe(config, task, data) -> dict[str, float]:
    """Seconds per training step of the run's model on one batch, in each precision: the best of
    rounds that alternate between the two, so load from elsewhere on the machine hits both alike."""
    import keras
    from keras.src.backend.common import global_state

    from workbench.data.batches import input_pipeline

    size = min(config.batch_size, len(data.x_train))
    x, y = next(iter(input_pipeline(data.x_train[:size], task.targets(data.y_train[:size], config, data), size,
                                    False, config.seed)))
    policy_before = keras.mixed_precision.global_policy()
    # Layer names count up per process; the run's own model is named as if the probe had not been.
    names_before = dict(global_state.get_global_attribute("object_name_uids", default={}))
    models = {}
    try:
        for policy in ("float32", "mixed_bfloat16"):  # a layer keeps the policy it was built under
            keras.mixed_precision.set_global_policy(policy)
            models[policy] = task.model_for(config, data)
            task.compile(models[policy], config, data)
            for _ in range(WARMUP_STEPS):  # trace, and let oneDNN pick its kernels
                models[policy].train_on_batch(x, y)
    finally:
        keras.mixed_precision.set_global_policy(policy_before)
        names = global_state.get_global_attribute("object_name_uids")
        if names is not None:
            names.clear()
            names.update(names_before)
    best = dict.fromkeys(models, float("inf"))
    for _ in range(ROUNDS):
        for policy, model in models.items():
            started = time.perf_counter()
            for _ in range(STEPS_PER_ROUND):
                model.train_on_batch(x, y)
            best[policy] = min(best[policy], (time.perf_counter() - started) / STEPS_PER_ROUND)
    return best


def _cache_path() -> Path:
    from workbench.home import home

    return home() / CACHE_FILE


def _read_cache() -> dict:
    try:
        cache = json.loads(_cache_path().read_text())
        return cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):  # none yet, or damaged: measure again
        return {}


def _write_cache(cache: dict) -> None:
    path = _cache_path()
    pending = path.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp")  # renamed whole: never half a file
    try:
        pending.write_text(json.dumps(cache, indent=1) + "\n")
        os.replace(pending, path)
    except OSError:  # a full disk or read-only home: this run still has its answer; the next measures again
        pending.unlink(missing_ok=True)
