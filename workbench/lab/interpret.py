"""Why a model predicts what it predicts: saliency and Grad-CAM maps for image inputs, word
occlusion for text.

The map functions take any Keras model with one input and one output: class probabilities (the
predicted class, or a chosen one, is explained) or a single value such as a steering angle (that
value is explained). Models come back from MLflow with `load_logged_model(run_id)`, the same
artifact that would be served.

    from workbench.lab.interpret import load_logged_model, saliency, grad_cam, word_occlusion
    model = load_logged_model(run_id)
    maps = saliency(model, images)          # same shape as `images`
    heat = grad_cam(model, images)          # (batch, height, width) in [0, 1]
    word_occlusion(text_model, "a raw string")  # [(word, score), ...]
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np


# ---- runs and models ------------------------------------------------------------------------------

def load_logged_model(run_id: str):
    """The Keras model a training run logged (MLflow 3 logged model; `runs:/RUN/model` otherwise)."""
    from workbench.tracking import queries

    return queries.load_logged_model(run_id)


def run_config(run_id: str):
    """The RunConfig a run was trained with, from its parameters."""
    from workbench.tasks.configure import config_from_params
    from workbench.tracking import queries

    return config_from_params(queries.run_params(run_id))


def latest_run_with_model(task: str) -> str | None:
    """The newest FINISHED run of `task` that logged a model (tuning trials log none), or None."""
    from workbench.lab.compare import find_runs
    from workbench.tracking import queries

    return queries.first_with_logged_model(find_runs(task=task, status="FINISHED").run_id)


# ---- gradients ------------------------------------------------------------------------------------

def _explained(outputs, target) -> Any:
    """One score per example: the target (or predicted) class probability, or the single output."""
    import tensorflow as tf

    outputs = tf.reshape(outputs, (tf.shape(outputs)[0], -1))
    if outputs.shape[-1] == 1:
        return outputs[:, 0]
    if target is None:
        target = tf.argmax(outputs, axis=-1)
    target = tf.broadcast_to(tf.cast(target, tf.int64), tf.shape(outputs)[:1])
    return tf.gather(outputs, target, axis=1, batch_dims=1)


def saliency(model, x: np.ndarray, target: int | Sequence[int] | None = None) -> np.ndarray:
    """Absolute input gradients of the explained output: which input values move it most.

    `x` is a batch; the result has its shape. `target` picks the class (default: the predicted one)."""
    import tensorflow as tf

    inputs = tf.convert_to_tensor(np.asarray(x, dtype="float32"))
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        score = _explained(model(inputs, training=False), target)
    return np.abs(tape.gradient(score, inputs).numpy())


def last_conv_layer(model) -> str:
    """Name of the model's last convolutional layer (the one Grad-CAM looks at)."""
    for layer in reversed(model.layers):
        output = getattr(layer, "output", None)
        if "conv" in type(layer).__name__.lower() and output is not None and len(output.shape) == 4:
            return layer.name
    raise ValueError(f"model {model.name!r} has no 2-D convolutional layer, which Grad-CAM needs "
                     "(use saliency for it)")


def grad_cam(model, x: np.ndarray, target: int | Sequence[int] | None = None,
             layer: str | None = None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., 2017): the last conv layer's feature maps weighted by the mean
    gradient of the explained output, rectified, scaled to [0, 1] per example and resized to the
    input's height and width. Returns (batch, height, width)."""
    import keras
    import tensorflow as tf

    layer = layer or last_conv_layer(model)
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.outputs[0]])
    inputs = tf.convert_to_tensor(np.asarray(x, dtype="float32"))
    with tf.GradientTape() as tape:
        features, outputs = probe(inputs, training=False)
        score = _explained(outputs, target)
    weights = tf.reduce_mean(tape.gradient(score, features), axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", features, weights))
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    cam = tf.math.divide_no_nan(cam, peak)
    resized = tf.image.resize(cam[..., None], inputs.shape[1:3], method="bilinear")[..., 0]
    return resized.numpy()


# ---- text -------------------------------------------------------------------------------------------

def word_occlusion(model, text: str, target: int | None = None) -> list[tuple[str, float]]:
    """Drop each word in turn and measure how much the explained class probability falls:
    one (word, score) per whitespace-separated word; positive = the word supports the class.
    The model takes raw strings (its TextVectorization layer is inside)."""
    from workbench.data.batches import predict

    words = text.split()
    variants = [text] + [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    probabilities = predict(model, np.array(variants, dtype=object))
    probabilities = probabilities.reshape(len(variants), -1)
    if probabilities.shape[1] == 1:  # one sigmoid unit: probability of class 1
        probabilities = np.concatenate([1 - probabilities, probabilities], axis=1)
    target = int(np.argmax(probabilities[0])) if target is None else int(target)
    base = probabilities[0, target]
    return [(word, float(base - probabilities[i + 1, target])) for i, word in enumerate(words)]


def occlusion_html(scores: list[tuple[str, float]], title: str = "") -> str:
    """The words coloured by score: red supports the explained class, blue speaks against it."""
    peak = max((abs(s) for _, s in scores), default=0.0) or 1.0
    spans = []
    for word, score in scores:
        colour = "220,40,40" if score > 0 else "40,90,220"
        spans.append(f"<span title='{score:+.3f}' style='background: rgba({colour},{abs(score) / peak:.2f}); "
                     f"padding: 1px 2px; border-radius: 3px'>{html.escape(word)}</span>")
    heading = f"<div style='font-weight: bold'>{html.escape(title)}</div>" if title else ""
    return f"<div style='line-height: 1.9'>{heading}{' '.join(spans)}</div>"


# ---- a run's model on its own test examples ---------------------------------------------------------

def explain(model, data, count: int = 8) -> list:
    """Displayable explanations of the first `count` test examples, chosen by the input's kind:
    word occlusion (HTML) for texts, saliency and Grad-CAM (a figure) for images and frame stacks,
    saliency over time (a figure) for waveforms and other sequences."""
    from IPython.display import HTML

    x, y = data.x_test[:count], data.y_test[:count]
    if x.dtype == object or x.dtype.kind in "US":
        shown = []
        for text, label in zip(x, y):
            scores = word_occlusion(model, str(text))
            predicted = _predicted_labels(model, np.array([text], dtype=object), data)[0]
            shown.append(HTML(occlusion_html(scores, f"{_label(label, data)} → {predicted}")))
        return shown
    titles = [f"{_label(t, data)} → {p}" for t, p in zip(y, _predicted_labels(model, x, data))]
    maps = saliency(model, x)
    if x.ndim >= 4:
        try:
            cams = grad_cam(model, x)
        except ValueError:  # no 2-D convolution (e.g. an MLP): saliency only
            cams = None
        return [explanation_figure(x, maps, cams, titles)]
    return [sequence_saliency_figure(x, maps, titles)]


def _predicted_labels(model, x, data) -> list[str]:
    from workbench.data.batches import predict

    outputs = np.asarray(predict(model, x)).reshape(len(x), -1)
    if outputs.shape[1] == 1:  # a regression output, e.g. a steering angle
        return [f"{v:.3g}" for v in outputs[:, 0]]
    return [_label(i, data) for i in outputs.argmax(axis=1)]


def _label(value, data) -> str:
    names = getattr(data, "class_names", None) or []
    if np.ndim(value) == 0 and float(value).is_integer() and 0 <= int(value) < len(names):
        return str(names[int(value)])
    return f"{float(np.ravel(value)[0]):.3g}"


# ---- pictures ---------------------------------------------------------------------------------------

def explanation_figure(images: np.ndarray, saliency_maps: np.ndarray, cams: np.ndarray | None = None,
                       titles: Sequence[str] = ()):
    """One column per example: the image, its saliency map, and its Grad-CAM over the image."""
    from matplotlib.figure import Figure

    rows = 2 if cams is None else 3
    count = len(images)
    fig = Figure(figsize=(1.8 * count + 0.6, 1.9 * rows), layout="constrained")
    axes = fig.subplots(rows, count, squeeze=False)
    for i in range(count):
        image = _for_display(images[i][-1] if np.ndim(images[i]) == 4 else images[i])  # last of stacked frames
        salient = saliency_maps[i][-1] if np.ndim(saliency_maps[i]) == 4 else saliency_maps[i]
        gray = image.ndim == 2
        axes[0, i].imshow(image, cmap="gray" if gray else None)
        axes[0, i].set_title(titles[i] if i < len(titles) else "", fontsize=8)
        axes[1, i].imshow(np.asarray(salient).reshape(image.shape[:2] + (-1,)).max(axis=-1), cmap="hot")
        if cams is not None:
            axes[2, i].imshow(image, cmap="gray" if gray else None)
            axes[2, i].imshow(cams[i], cmap="jet", alpha=0.45)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("saliency")
    if cams is not None:
        axes[2, 0].set_ylabel("Grad-CAM")
    return fig


def _for_display(image: np.ndarray) -> np.ndarray:
    """An image as imshow wants it: 2-D for one channel, the last 3 channels of stacked frames."""
    image = np.asarray(image, dtype="float32")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] > 3:
        image = image[..., -3:]
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def sequence_saliency_figure(x: np.ndarray, maps: np.ndarray, titles: Sequence[str] = ()):
    """Waveforms (or other 1-D inputs) with their saliency underneath, one row per example."""
    from matplotlib.figure import Figure

    count = len(x)
    fig = Figure(figsize=(10, 1.4 * count + 0.4), layout="constrained")
    axes = fig.subplots(count, 1, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        signal = np.asarray(x[i], dtype="float32").reshape(len(x[i]), -1)[:, 0]
        ax.plot(signal, color="0.6", linewidth=0.6)
        twin = ax.twinx()
        twin.plot(np.asarray(maps[i]).reshape(len(x[i]), -1).max(axis=1), color="tab:red", linewidth=0.8)
        twin.set_yticks([])
        ax.set_yticks([])
        ax.set_title(titles[i] if i < len(titles) else "", fontsize=8, loc="left")
    fig.suptitle("input (grey) and saliency (red)")
    return fig
