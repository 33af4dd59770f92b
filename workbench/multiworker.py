"""Two fixes that let Keras 3's `fit`, `evaluate` and `predict` run under MultiWorkerMirroredStrategy.

Keras 3.15's TensorFlow trainer fails there in two places, both about reducing values across
workers: it reduces a whole (x, y) batch as one value when it builds the model, and it reduces
scalar step results with `axis=0`. Both are replaced by per-value reductions; every other
strategy goes through Keras' own code unchanged. Applied only when a multi-worker strategy is
placed, and only to the Keras versions checked here.
"""

from __future__ import annotations

import keras

CHECKED_KERAS = ("3.15.",)


def supported() -> bool:
    return keras.__version__.startswith(CHECKED_KERAS)


def apply_keras_fixes() -> None:
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_workbench_multiworker_fixed", False):
        return
    keras_reduce = trainer.reduce_per_replica
    keras_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            # Metrics and losses are scalars: reduce them whole, batches along their first axis.
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=0 if v.shape.rank else None), values)
        return keras_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is None or self._distribute_strategy is None:
            return keras_build(self, iterator=iterator, data_batch=data_batch)
        # Building needs only the shapes of one batch: this worker's first replica has them.
        for _, _, batches in iterator:
            data_batch = tree.map_structure(
                lambda x: self._distribute_strategy.experimental_local_results(x)[0]
                if isinstance(x, tf.distribute.DistributedValues) else x, next(batches))
            break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer._workbench_multiworker_fixed = True
