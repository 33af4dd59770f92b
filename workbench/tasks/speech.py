"""Keyword spotting: 1 s clips of words, split by speaker so test voices are never heard in training.

Datasets: `spoken-commands` (12 classes: 10 words, _unknown_, _silence_, synthesized by several
engines and voices), `voices` (game phrases by the hedgewars voice packs, split by pack), or
`folder:PATH` (a Speech Commands tree of recordings). Models take raw 16 kHz waveforms (log-mel
front end inside, its top band below the data's lowest native Nyquist frequency): `cnn`,
`ds-cnn` (the MLPerf Tiny keyword-spotting shape), `crnn`. Training perturbs every example anew:
speed (which also shifts pitch), time shift, gain, background noise at a random SNR, and
SpecAugment masks inside the model. Baseline: logistic regression on per-clip mean and spread of
the log-mel bands. Every run reports test accuracy per held-out speaker.
"""

from __future__ import annotations

import io

import numpy as np

from workbench.config import Option, RunConfig
from workbench.data.splits import DataError, Splits
from workbench.tasks.base import ClassificationTask, Evaluation

SPEAKERS = 160            # synthesized voices in spoken-commands
UTTERANCES = 4            # takes of each keyword per voice
HELD_OUT = (0.15, 0.15)   # fraction of voices for validation and for test
MAX_SHIFT = 1600          # samples (100 ms) of random time shift
SPEED_RANGE = (0.85, 1.15)  # speed perturbation factors (Ko et al. 2015 use 0.9-1.1; wider for few speakers)
SNR_DB = (5.0, 30.0)      # background noise level relative to the clip's own power
NOISE_PROBABILITY = 0.8   # the rest train on clean audio
GAIN_RANGE = (0.5, 1.5)
CLIPS_LOGGED = 6
SYNTHETIC_VOICES = 0      # recorded datasets: training voices added by the synthesizers (spoken_labels);
                          # off by default: on the real-voice sets here they did not raise test accuracy


class SpeechTask(ClassificationTask):
    name = "speech"
    datasets = ("spoken-commands", "voices")
    dataset_prefixes = ("folder:",)
    models = ("cnn", "ds-cnn", "crnn")
    losses = ("sparse_categorical_crossentropy", "categorical_crossentropy")
    default_dataset = "spoken-commands"
    default_model = "ds-cnn"
    default_loss = "sparse_categorical_crossentropy"
    # Epochs from the data: few speakers need many passes with fresh perturbations each time
    # (a 1,500-clip set gets ~170 epochs, 4,000 steps; a 280-clip set the cap of 600 epochs); a
    # large set trains at least 20 epochs. Early stopping keeps the best validation epoch. A small
    # set has few steps per epoch and a noisy validation score over few clips, so its patience is
    # counted in steps (1,500); on a large set it is 10 epochs.
    default_epochs = 0
    auto_steps = 4000
    auto_epoch_range = (20, 600)
    auto_patience = 10
    auto_patience_steps = 1500
    options = (
        Option("speakers", int, SPEAKERS, "spoken-commands: synthesized voices, split whole into train, "
                                          "validation and test", minimum=10),
        Option("utterances", int, UTTERANCES, "spoken-commands: takes of each keyword per voice", minimum=1),
        Option("synthetic_voices", int, SYNTHETIC_VOICES, "recorded datasets: synthesized voices saying the class "
                                                          "names, added to the training split only; 0 = none",
               minimum=0),
    )

    def check_config(self, config: RunConfig) -> None:
        from workbench.config import ConfigError

        if config.synthetic_voices and config.dataset == "spoken-commands":
            raise ConfigError("synthetic_voices", config.synthetic_voices, "0 with dataset spoken-commands, whose "
                              "voices are all synthesized already; voices and folder:PATH datasets take it")

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.data import speech, speech_synthesis, voices
        from workbench.home import data_cache

        if config.dataset == "spoken-commands":
            engines = "+".join(speech_synthesis.engines())
            size = f"{config.speakers}x{config.utterances}"
            root = data_cache() / f"spoken-commands-{engines}-{size}-seed{config.seed}"
            speech_synthesis.generate(root, config.speakers, config.utterances, config.seed, HELD_OUT)
            source = speech.load_speech_folder(str(root))
            source.notes += speech_synthesis.notes(root)
        elif config.dataset == "voices":
            source = voices.load_voices(config.seed)
        else:
            source = speech.load_speech_folder(config.dataset.removeprefix("folder:"))
        train, val, test = speech.split_by_speaker(source, config.validation_split, 0.15, config.seed)
        if min(len(train), len(val), len(test)) == 0:
            raise DataError(f"speech dataset {source.source}: a split is empty "
                            f"(train {len(train)}, validation {len(val)}, test {len(test)} clips)")
        pick = lambda idx: (source.waves[idx], source.labels[idx])  # noqa: E731
        x_train, y_train = pick(train)
        train_speakers = sorted(set(source.speakers[train]))
        if config.dataset != "spoken-commands" and config.synthetic_voices:
            x_extra, y_extra, extra_speakers = _spoken_labels(source, config)
            x_train, y_train = np.concatenate([x_train, x_extra]), np.concatenate([y_train, y_extra])
            train_speakers += sorted(set(extra_speakers))
        return Splits(x_train, y_train, *pick(val), *pick(test), class_names=source.class_names,
                      name=config.dataset.split("/")[-1], source=source.source, notes=source.notes,
                      extras={"noises": source.noises, "sample_rate": source.sample_rate,
                              "test_speakers": source.speakers[test],
                              "speakers": {"train": train_speakers,
                                           **{name: sorted(set(source.speakers[idx]))
                                              for name, idx in (("validation", val), ("test", test))}}})

    def train_augmentation(self, data: Splits, config: RunConfig):
        """Speed perturbation, time shift, gain and background noise at a random SNR, drawn anew
        for every example and epoch. Noise comes from the dataset's _background_noise_
        recordings, else from generated white, pink and brown noise and hum."""
        import tensorflow as tf

        from workbench.data.noise_mixing import noisy
        from workbench.data.speech_synthesis import background_noises

        noises = data.extras.get("noises") or list(background_noises(np.random.default_rng(config.seed)).values())
        noise = tf.constant(np.concatenate(noises).astype(np.float32))
        samples = 16_000
        centre = samples / 2

        def augment(wave, label):
            # One linear-interpolation read does both: output sample i reads the input at
            # centre + (i - centre) * speed - shift, so the speech stays near the centre and
            # nothing wraps around (outside the clip is silence).
            speed = tf.random.uniform((), *SPEED_RANGE)
            shift = tf.cast(tf.random.uniform((), -MAX_SHIFT, MAX_SHIFT + 1, dtype=tf.int32), tf.float32)
            position = centre + (tf.range(samples, dtype=tf.float32) - centre) * speed - shift
            below = tf.floor(position)
            weight = position - below
            padded = tf.pad(wave, [[1, 2]])
            index = tf.clip_by_value(tf.cast(below, tf.int32) + 1, 0, samples + 1)
            read = (1 - weight) * tf.gather(padded, index) + weight * tf.gather(padded, index + 1)
            wave = tf.where((position >= 0) & (position <= samples - 1), read, 0.0)

            power = tf.maximum(tf.reduce_mean(wave ** 2), 1e-4)  # a silent clip still gets audible noise
            return noisy(wave, noise, samples, power, SNR_DB, NOISE_PROBABILITY, GAIN_RANGE), label

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
        x = spec_augment(log_mel_front_end(waves, _max_freq(data)))
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
        from workbench.data.batches import predict

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
        if "test_speakers" in data.extras:
            table = _per_speaker_accuracy(data.extras["test_speakers"], report.predicted == data.y_test)
            report.tables["per_speaker_accuracy"] = table
            report.figures["per_speaker_accuracy"] = _per_speaker_figure(table)
        return report

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        features = {split: _band_statistics(x, _max_freq(data)) for split, x in
                    (("train", data.x_train), ("val", data.x_val), ("test", data.x_test))}
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        classifier.fit(features["train"], data.y_train)
        return {"baseline_val_accuracy": float(classifier.score(features["val"], data.y_val)),
                "baseline_test_accuracy": float(classifier.score(features["test"], data.y_test))}


def _spoken_labels(source, config: RunConfig):
    """Training clips of the class names in synthesized voices, and a note saying so."""
    from workbench.data import spoken_labels
    from workbench.home import data_cache

    texts = source.class_texts or [spoken_labels.spoken_text(name) for name in source.class_names]
    waves, labels, speakers = spoken_labels.synthesize(texts, config.synthetic_voices, config.seed, data_cache())
    silent = [name for name, text in zip(source.class_names, texts) if not text]
    source.notes.append(f"training adds {len(waves)} clips of {config.synthetic_voices} synthesized voices "
                        f"saying the class names (--synthetic-voices); validation and test are recordings only"
                        + (f"; not spoken: {', '.join(silent)}" if silent else ""))
    return waves, labels, speakers


def _max_freq(data: Splits) -> float:
    from workbench.models.audio import max_frequency

    return max_frequency(data.extras.get("sample_rate", 16_000))


def _per_speaker_accuracy(speakers: np.ndarray, correct: np.ndarray) -> dict[str, list]:
    names = sorted(set(speakers.tolist()))
    return {"speaker": names,
            "clips": [int((speakers == n).sum()) for n in names],
            "accuracy": [float(correct[speakers == n].mean()) for n in names]}


def _per_speaker_figure(table: dict[str, list]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 0.5 * len(table["speaker"]) + 2), 3.2), layout="constrained")
    ax = fig.subplots()
    ax.bar(range(len(table["speaker"])), table["accuracy"], color="tab:blue")
    ax.set_xticks(range(len(table["speaker"])), table["speaker"], rotation=60, ha="right", fontsize=8)
    ax.set(ylim=(0, 1), ylabel="test accuracy", title="Test accuracy per held-out speaker")
    return fig


def _log_mel(waves: np.ndarray, max_freq: float = 7600.0) -> np.ndarray:
    import keras

    from workbench.models.audio import log_mel_front_end

    inputs = keras.Input(shape=(16_000,))
    extractor = keras.Model(inputs, log_mel_front_end(inputs, max_freq))
    return extractor.predict(waves, batch_size=256, verbose=0)[..., 0]  # (clips, frames, mel)


def _band_statistics(waves: np.ndarray, max_freq: float) -> np.ndarray:
    """Per clip: mean and standard deviation of each log-mel band over time."""
    mel = _log_mel(waves, max_freq)
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
