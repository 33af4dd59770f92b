"""Keyword spotting: 1 s clips of 12 classes (10 words, _unknown_, _silence_), split by speaker.

Models take raw 16 kHz waveforms (log-mel front end inside): `cnn`, `ds-cnn` (the MLPerf Tiny
keyword-spotting shape), `crnn`. Training adds time shift, background noise and SpecAugment.
Baseline: logistic regression on per-clip mean and spread of the log-mel bands.
"""

from __future__ import annotations

import io

import numpy as np

from workbench.config import RunConfig
from workbench.data.splits import DataError, Splits
from workbench.tasks.base import ClassificationTask, Evaluation

SPEAKERS = 160            # synthesized voices in spoken-commands
UTTERANCES = 4            # takes of each keyword per voice
HELD_OUT = (0.15, 0.15)   # fraction of voices for validation and for test
MAX_SHIFT = 1600          # samples (100 ms) of random time shift
CLIPS_LOGGED = 6


class SpeechTask(ClassificationTask):
    name = "speech"
    datasets = ("spoken-commands",)
    dataset_prefixes = ("folder:",)
    models = ("cnn", "ds-cnn", "crnn")
    losses = ("sparse_categorical_crossentropy", "categorical_crossentropy")
    default_dataset = "spoken-commands"
    default_model = "ds-cnn"
    default_loss = "sparse_categorical_crossentropy"

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.data import speech, speech_synthesis
        from workbench.home import data_cache

        if config.dataset == "spoken-commands":
            root = data_cache() / f"spoken-commands-{SPEAKERS}x{UTTERANCES}-seed{config.seed}"
            speech_synthesis.generate(root, SPEAKERS, UTTERANCES, config.seed, HELD_OUT)
            path = str(root)
        else:
            path = config.dataset.removeprefix("folder:")
        source = speech.load_speech_folder(path)
        train, val, test = speech.split_by_speaker(source, config.validation_split, 0.15, config.seed)
        if min(len(train), len(val), len(test)) == 0:
            raise DataError(f"speech dataset {source.source}: a split is empty "
                            f"(train {len(train)}, validation {len(val)}, test {len(test)} clips)")
        pick = lambda idx: (source.waves[idx], source.labels[idx])  # noqa: E731
        return Splits(*pick(train), *pick(val), *pick(test), class_names=source.class_names,
                      name=config.dataset.split("/")[-1], source=source.source, notes=source.notes,
                      extras={"noises": source.noises,
                              "speakers": {name: sorted(set(source.speakers[idx]))
                                           for name, idx in (("train", train), ("validation", val), ("test", test))}})

    def train_augmentation(self, data: Splits, config: RunConfig):
        """Random time shift, gain and background noise, drawn anew for every example and epoch."""
        import tensorflow as tf

        noises = data.extras.get("noises") or []
        noise = tf.constant(np.concatenate(noises) if noises else np.zeros(16_000, np.float32))
        has_noise = bool(noises)

        def augment(wave, label):
            shift = tf.random.uniform((), -MAX_SHIFT, MAX_SHIFT + 1, dtype=tf.int32)
            wave = tf.roll(wave, shift, axis=0)
            positions = tf.range(16_000)
            wave = tf.where((positions < shift) | (positions >= 16_000 + shift), 0.0, wave)  # no wrap-around
            wave = wave * tf.random.uniform((), 0.6, 1.4)
            if has_noise:
                start = tf.random.uniform((), 0, tf.shape(noise)[0] - 16_000, dtype=tf.int32)
                level = tf.random.uniform((), 0.0, 0.15) * tf.cast(tf.random.uniform(()) < 0.8, tf.float32)
                wave = wave + level * noise[start:start + 16_000]
            return wave, label

        return augment

    def preview(self, data: Splits) -> list:
        """Spectrograms of a few training clips, and a player for each."""
        from IPython.display import Audio

        picks = [int(np.flatnonzero(data.y_train == c)[0]) for c in range(data.num_classes)
                 if (data.y_train == c).any()][:6]
        figure = _spectrogram_grid(data.x_train[picks], [data.class_names[data.y_train[i]] for i in picks],
                                   "Training clips (log-mel)")
        return [figure] + [Audio(data.x_train[i], rate=16_000) for i in picks]

    # ---- models -------------------------------------------------------------------------

    def build_model(self, config: RunConfig, data: Splits):
        import keras
        from keras import layers

        from workbench.models import blocks
        from workbench.models.audio import log_mel_front_end, spec_augment

        waves = keras.Input(shape=(16_000,), name="waveform")
        x = spec_augment(log_mel_front_end(waves))
        if config.model == "cnn":
            for filters in (32, 64, 64):
                x = blocks.conv_bn(x, filters, config)
                x = layers.MaxPooling2D()(x)
            x = layers.GlobalAveragePooling2D()(x)
        elif config.model == "ds-cnn":
            x = layers.Conv2D(64, (10, 4), strides=2, padding="same", use_bias=False,
                              kernel_regularizer=blocks.weight_penalty(config))(x)
            x = layers.Activation(config.activation)(layers.BatchNormalization(momentum=blocks.BN_MOMENTUM)(x))
            for _ in range(4):
                x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
                x = layers.Activation(config.activation)(layers.BatchNormalization(momentum=blocks.BN_MOMENTUM)(x))
                x = layers.Conv2D(64, 1, use_bias=False, kernel_regularizer=blocks.weight_penalty(config))(x)
                x = layers.Activation(config.activation)(layers.BatchNormalization(momentum=blocks.BN_MOMENTUM)(x))
            x = layers.GlobalAveragePooling2D()(x)
        else:  # crnn: convolutions over frequency, an LSTM over time
            x = blocks.conv_bn(x, 32, config)
            x = layers.MaxPooling2D((1, 2))(x)
            x = blocks.conv_bn(x, 64, config)
            x = layers.MaxPooling2D((2, 2))(x)
            x = layers.Reshape((-1, x.shape[2] * x.shape[3]))(x)
            x = layers.LSTM(96)(x)
        x = layers.Dropout(config.dropout)(x) if config.dropout else x
        outputs = blocks.classifier_head(x, data.num_classes, config)
        return keras.Model(waves, outputs, name=f"{self.name}_{config.model.replace('-', '_')}")

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        from workbench.data.speech_synthesis import write_wav
        from workbench.evaluation import classification_report
        from workbench.training import predict

        probabilities = predict(model, data.x_test)
        report = classification_report(data.y_test, probabilities, data.class_names)
        wrong = np.flatnonzero(report.predicted != data.y_test)[:CLIPS_LOGGED]
        titles = [f"{data.class_names[data.y_test[i]]} → {data.class_names[report.predicted[i]]}" for i in wrong]
        if len(wrong):
            report.figures["misclassified_spectrograms"] = _spectrogram_grid(
                data.x_test[wrong], titles, "Misclassified test clips (true → predicted)")
        for i, title in zip(wrong, titles):
            buffer = io.BytesIO()
            write_wav(buffer, data.x_test[i])
            name = title.replace(" → ", "_as_").replace("_", "").replace("/", "")
            report.files[f"misclassified_audio/{i}_{name}.wav"] = buffer.getvalue()
        report.metrics["test_speakers"] = float(len(data.extras.get("speakers", {}).get("test", [])))
        return report

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        features = {split: _band_statistics(x) for split, x in
                    (("train", data.x_train), ("val", data.x_val), ("test", data.x_test))}
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        classifier.fit(features["train"], data.y_train)
        return {"baseline_val_accuracy": float(classifier.score(features["val"], data.y_val)),
                "baseline_test_accuracy": float(classifier.score(features["test"], data.y_test))}


def _log_mel(waves: np.ndarray) -> np.ndarray:
    import keras

    from workbench.models.audio import log_mel_front_end

    inputs = keras.Input(shape=(16_000,))
    extractor = keras.Model(inputs, log_mel_front_end(inputs))
    return extractor.predict(waves, batch_size=256, verbose=0)[..., 0]  # (clips, frames, mel)


def _band_statistics(waves: np.ndarray) -> np.ndarray:
    """Per clip: mean and standard deviation of each log-mel band over time."""
    mel = _log_mel(waves)
    return np.concatenate([mel.mean(axis=1), mel.std(axis=1)], axis=1)


def _spectrogram_grid(waves: np.ndarray, titles: list[str], title: str):
    from matplotlib.figure import Figure

    mel = _log_mel(np.asarray(waves, dtype=np.float32))
    fig = Figure(figsize=(2.6 * max(1, len(mel)), 2.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(mel))))
    for ax, spectrogram, label in zip(axes, mel, titles):
        ax.imshow(spectrogram.T, origin="lower", aspect="auto", cmap="magma")
        ax.set(title=label, xlabel="frame", ylabel="mel band")
    fig.suptitle(title)
    return fig
