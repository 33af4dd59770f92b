"""Speech to text: sentences in, transcripts out, judged on voices never heard in training.

Datasets: `spoken-sentences` (digit strings, commands and fortune sentences said by the
synthesized espeak-ng, flite and festival voices of the speech task, split by voice), or a
user's recordings as `folder:PATH` (.wav with a .txt transcript beside each) or `tsv:PATH` (a
Common Voice / LibriSpeech-style manifest), split by speaker. Clips are padded with silence to
`max_seconds`; transcripts become padded character labels, so the engine's numpy path fits them.
Models (`workbench.models.ctc`): `ctc-rnn` and `ctc-transformer`, trained with CTC, decoded
greedily, by beam search, or (the default) by a beam search guided by a word trigram model of
the training transcripts, its weight chosen on the validation split. Training adds background
noise at a random SNR and a random gain.
Metrics: word and character error rate (jiwer) overall and per kind of sentence. Baseline:
PocketSphinx with its default LM and with a bigram LM of the training transcripts.
"""

from __future__ import annotations

import numpy as np

from workbench.config import Option, RunConfig
from workbench.data.splits import DataError, Splits
from workbench.tasks.base import Evaluation, Task

SPEAKERS = 80             # synthesized voices in spoken-sentences
UTTERANCES = 36           # texts per voice, a third of each kind
HELD_OUT = (0.15, 0.15)   # fraction of voices for validation and for test
SNR_DB = (5.0, 35.0)
NOISE_PROBABILITY = 0.7
GAIN_RANGE = (0.5, 1.5)
WORST_SHOWN = 15
LM_CHOICE_CLIPS = 200     # validation clips the word model's weights are chosen on


class TranscribeTask(Task):
    name = "transcribe"
    datasets = ("spoken-sentences",)
    dataset_prefixes = ("folder:", "tsv:")
    models = ("ctc-rnn", "ctc-transformer")
    losses = ("ctc",)
    default_dataset = "spoken-sentences"
    default_model = "ctc-rnn"
    default_loss = "ctc"
    main_metric = "test_wer"
    main_metric_mode = "min"
    # 20 epochs of ~1,900 clips took 25 minutes with synthesis and baseline on two shared CPU
    # cores (bench/transcribe.py); the validation loss was still falling, so more epochs help
    # where there is time for them.
    default_epochs = 20
    clip_norm = 5.0  # CTC's early gradients can be large
    options = (
        Option("max_seconds", float, 4.0, "longest clip in seconds; clips are padded with silence to it and a "
                                          "longer one is an error naming it", minimum=1.0, maximum=30.0),
        Option("speakers", int, SPEAKERS, "spoken-sentences: synthesized voices", minimum=6),
        Option("utterances", int, UTTERANCES, "spoken-sentences: texts each voice says (a third digit strings, "
                                              "a third commands, a third sentences)", minimum=3),
        Option("decoding", str, "lm", "CTC decoding: beam search guided by a word trigram model of the training "
                                      "transcripts (lm; its weight chosen on the validation split), plain beam "
                                      "search, or the greedy best path", choices=("lm", "beam", "greedy")),
        Option("beam_width", int, 64, "beams kept by beam-search decoding (with the word model, 64 gave a lower WER "
                                      "than 16 or 32 on spoken-sentences, BENCHMARKS.md)", minimum=1),
        Option("baseline_clips", int, 120, "test clips PocketSphinx transcribes (about 1 s each, twice); "
                                           "0 = every test clip", minimum=0),
    )
    model_options = {
        "ctc-rnn": (Option("rnn_units", int, 128, "GRU units per direction", minimum=8),
                    Option("rnn_layers", int, 2, "bidirectional GRU layers", minimum=1, maximum=8)),
        "ctc-transformer": (Option("encoder_dim", int, 144, "width of the encoder (4 attention heads)", minimum=16),
                            Option("encoder_layers", int, 4, "encoder layers", minimum=1, maximum=12)),
    }

    def default_learning_rate_for(self, model: str) -> float:
        return 2e-3

    def search_space(self, model: str) -> dict[str, dict]:
        space = {"learning_rate": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
                 "dropout": {"type": "float", "low": 0.0, "high": 0.3},
                 "batch_size": {"type": "categorical", "choices": [16, 32]}}
        if model == "ctc-rnn":
            space["rnn_units"] = {"type": "categorical", "choices": [96, 128, 160, 192]}
        elif model == "ctc-transformer":
            space["encoder_layers"] = {"type": "int", "low": 2, "high": 6}
        return space

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.data import speech, spoken_sentences, transcripts
        from workbench.data.speech_synthesis import engines, notes
        from workbench.home import data_cache
        from workbench.models.ctc import output_frames

        max_seconds = config.options["max_seconds"]
        if config.dataset == "spoken-sentences":
            speakers, utterances = config.options["speakers"], config.options["utterances"]
            root = data_cache() / (f"spoken-sentences-{'+'.join(engines())}-{speakers}x{utterances}-"
                                   f"{max_seconds:g}s-seed{config.seed}")
            spoken_sentences.generate(root, speakers, utterances, config.seed, max_seconds, HELD_OUT)
            source = transcripts.load_tsv(str(root / spoken_sentences.MANIFEST))
            source.notes += notes(root)
        elif config.dataset.startswith("tsv:"):
            source = transcripts.load_tsv(config.dataset.removeprefix("tsv:"))
        else:
            source = transcripts.load_folder(config.dataset.removeprefix("folder:"))
        max_samples = int(round(max_seconds * 16_000))
        waves = transcripts.padded(source.waves, source.files, max_samples)
        frames = output_frames(max_samples)
        too_long = [f for f, t in zip(source.files, source.texts)
                    if len(t) + sum(a == b for a, b in zip(t, t[1:])) > frames]
        if too_long:
            raise DataError(f"transcribed speech: {len(too_long)} transcript(s) have more characters than the "
                            f"model's {frames} output frames for {max_seconds:g} s: {transcripts.named(too_long)}")
        labels = transcripts.encode(source.texts, max(len(t) for t in source.texts))
        train, val, test = speech.split_by_speaker(source, config.validation_split, HELD_OUT[1], config.seed)
        if min(len(train), len(val), len(test)) == 0:
            raise DataError(f"transcribed speech {source.source}: a split is empty "
                            f"(train {len(train)}, validation {len(val)}, test {len(test)} clips)")
        texts, kinds = np.array(source.texts, dtype=object), source.kinds
        return Splits(waves[train], labels[train], waves[val], labels[val], waves[test], labels[test],
                      class_names=["<blank>", *transcripts.ALPHABET], name=config.dataset.split("/")[-1],
                      source=source.source, notes=source.notes,
                      extras={"max_samples": max_samples, "decoding": config.options["decoding"],
                              "beam_width": config.options["beam_width"], "train_texts": list(texts[train]),
                              "val_texts": list(texts[val]),
                              "test_texts": list(texts[test]), "test_kinds": kinds[test],
                              "test_speakers": source.speakers[test],
                              "speakers": {name: sorted(set(source.speakers[idx]))
                                           for name, idx in (("train", train), ("validation", val), ("test", test))}})

    def train_augmentation(self, data: Splits, config: RunConfig):
        """Background noise (white, pink, brown, hum) at a random SNR over the whole padded clip,
        on most examples, and a random gain: drawn anew for every example and epoch."""
        import tensorflow as tf

        from workbench.data.noise_mixing import noisy
        from workbench.data.speech_synthesis import background_noises

        noise = tf.constant(np.concatenate(list(background_noises(np.random.default_rng(config.seed)).values())))
        samples = data.extras["max_samples"]

        def augment(wave, label):
            voiced = tf.maximum(tf.reduce_sum(tf.cast(tf.abs(wave) > 1e-3, tf.float32)), 1.0)
            power = tf.maximum(tf.reduce_sum(wave ** 2) / voiced, 1e-4)  # of the speech, not the padding
            return noisy(wave, noise, samples, power, SNR_DB, NOISE_PROBABILITY, GAIN_RANGE), label

        return augment

    def preview(self, data: Splits) -> list:
        """A few training clips: spectrogram with the transcript, and a player for each."""
        from IPython.display import Audio

        from workbench.tasks.transcribe_figures import spectrogram_with_path

        texts = data.extras["train_texts"]
        return [item for k in range(min(3, len(texts)))
                for item in (spectrogram_with_path(data.x_train[k], texts[k]), Audio(data.x_train[k], rate=16_000))]

    # ---- models -------------------------------------------------------------------------

    def build_model(self, config: RunConfig, data: Splits):
        from workbench.models import ctc

        o = config.options
        return ctc.build(config, data.extras["max_samples"], data.num_classes, 7600.0, o.get("rnn_units", 128),
                         o.get("rnn_layers", 2), o.get("encoder_dim", 144), o.get("encoder_layers", 4),
                         name=f"{self.name}_{config.model.replace('-', '_')}")

    def output_width(self, config: RunConfig, data: Splits) -> int:
        return data.num_classes

    def check_model_output(self, model, config: RunConfig, data: Splits) -> None:
        from workbench.errors import ConfigError

        shape = model.output_shape
        if not isinstance(shape, tuple) or len(shape) != 3 or shape[-1] != data.num_classes:
            raise ConfigError("model", config.model, f"a model whose output is (batch, frames, {data.num_classes}) "
                              f"character logits (blank first) for task '{self.name}'; it outputs {shape}")

    def metrics(self, config: RunConfig, data: Splits) -> list:
        return []

    def compile(self, model, config: RunConfig, data: Splits, replicas: int = 1) -> None:
        from workbench.models.compiling import make_optimizer
        from workbench.models.ctc import ctc_loss

        steps_per_epoch = data.steps_per_epoch(config.batch_size * replicas)
        optimizer = make_optimizer(config, steps_per_epoch)
        optimizer.clipnorm = self.clip_norm
        model.compile(optimizer=optimizer, loss=ctc_loss,
                      jit_compile=config.jit_compile, steps_per_execution=config.steps_per_execution)

    def exported_model(self, model, data: Splits):
        return self.transcriber(model, data), data.x_test[:2]

    def transcriber(self, model, data: Splits):
        """The network without its loss, with what decoding needs."""
        import keras

        from workbench.data.transcripts import ALPHABET
        from workbench.models.transcriber import Transcriber

        settings = {"alphabet": ALPHABET, "sample_rate": 16_000, "max_samples": data.extras["max_samples"],
                    "decoding": data.extras.get("decoding", "greedy"), "beam_width": data.extras.get("beam_width", 64)}
        served = Transcriber(keras.Model(model.inputs, model.outputs), settings)
        if settings["decoding"] == "lm":
            settings.update(lm_texts=data.extras["train_texts"], **self.lm_weights(served, data))
        return served

    def lm_weights(self, served, data: Splits) -> dict[str, float]:
        """The language model's weight and word bonus with the lowest WER on the validation clips
        (chosen once per trained network), and every pair's WER."""
        from workbench.models import word_lm_decoding as lm_decoding

        key = ("lm_weights", id(served.network.layers[-1]))
        if key not in data.extras:
            lm = lm_decoding.WordLanguageModel(data.extras["train_texts"])
            picked = lm_choice_clips(len(data.x_val))  # each pair of weights decodes them all once
            weight, bonus, rates = lm_decoding.choose_weights(
                served.logits(data.x_val[picked]), [data.extras["val_texts"][i] for i in picked],
                served.settings["alphabet"], lm, int(served.settings["beam_width"]))
            data.extras[key] = {"lm_weight": weight, "word_bonus": bonus,
                                "validation_wer": {f"{w:g},{b:g}": r for (w, b), r in rates.items()}}
        return data.extras[key]

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        from workbench.tasks import transcribe_figures as figures

        served = self.transcriber(model, data)
        logits = served.logits(data.x_test)
        hypotheses = served.texts(logits)
        references = data.extras["test_texts"]
        report = Evaluation(metrics=error_rates(references, hypotheses, data.extras["test_kinds"], "test"))
        if served.settings["decoding"] == "lm":
            report.metrics.update(lm_weight=served.settings["lm_weight"], word_bonus=served.settings["word_bonus"])
            tried = served.settings["validation_wer"]
            report.tables["lm_weights_on_validation"] = {
                "lm_weight": [float(k.split(",")[0]) for k in tried], "word_bonus": [float(k.split(",")[1]) for k in tried],
                "validation_wer": list(tried.values())}
        picked = baseline_indices(data, config)
        report.metrics["test_wer_on_baseline_clips"] = error_rates(
            [references[i] for i in picked], [hypotheses[i] for i in picked], None, "x")["x_wer"]
        report.metrics["test_speakers"] = float(len(data.extras["speakers"]["test"]))
        report.tables["worst_transcriptions"] = figures.worst_table(
            references, hypotheses, data.extras["test_speakers"], data.extras["test_kinds"], WORST_SHOWN)
        report.tables["test_transcriptions"] = figures.worst_table(
            references, hypotheses, data.extras["test_speakers"], data.extras["test_kinds"], len(references))
        k = int(np.argmax([len(r) for r in references[:20]]))
        report.figures["ctc_alignment"] = figures.spectrogram_with_path(
            data.x_test[k], references[k], logits[k], hypotheses[k], served.settings["alphabet"])
        return report

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        from workbench.models import sphinx

        picked = baseline_indices(data, config)
        waves = data.x_test[picked]
        references = [data.extras["test_texts"][i] for i in picked]
        kinds = data.extras["test_kinds"][picked]
        trained, missing = sphinx.transcribe_with_training_lm(waves, data.extras["train_texts"])
        metrics = error_rates(references, trained, kinds, "baseline")
        default = error_rates(references, sphinx.transcribe(waves), kinds, "baseline")
        metrics.update({f"{k}_default_lm": v for k, v in default.items()})
        metrics.update({"baseline_clips": float(len(picked)), "baseline_missing_words": float(len(missing))})
        return metrics


def lm_choice_clips(validation_clips: int) -> np.ndarray:
    """The validation clips the word model's weights are chosen on: at most LM_CHOICE_CLIPS,
    spread evenly over the split."""
    count = min(validation_clips, LM_CHOICE_CLIPS)
    return np.unique(np.linspace(0, validation_clips - 1, count).astype(int))


def baseline_indices(data: Splits, config: RunConfig) -> np.ndarray:
    """The test clips PocketSphinx decodes: taken in turn from each kind and speaker, so a few
    clips still cover them all."""
    kinds, speakers = data.extras["test_kinds"], data.extras["test_speakers"]
    limit = config.options.get("baseline_clips", 0) or len(kinds)
    seen: dict[tuple, int] = {}
    rank = []
    for kind, speaker in zip(kinds, speakers):
        rank.append(seen.get((kind, speaker), 0))
        seen[(kind, speaker)] = rank[-1] + 1
    order = sorted(range(len(kinds)), key=lambda i: (rank[i], i))
    return np.array(sorted(order[:limit]), dtype=np.int64)


def error_rates(references: list[str], hypotheses: list[str], kinds, prefix: str) -> dict[str, float]:
    """`{prefix}_wer` and `{prefix}_cer` over all clips, and per kind of sentence when known."""
    import jiwer

    out = {f"{prefix}_wer": float(jiwer.wer(references, hypotheses)),
           f"{prefix}_cer": float(jiwer.cer(references, hypotheses))}
    for kind in sorted(set(kinds.tolist()) - {""}) if kinds is not None else ():
        chosen = [i for i, k in enumerate(kinds) if k == kind]
        out[f"{prefix}_wer_{kind}"] = float(jiwer.wer([references[i] for i in chosen], [hypotheses[i] for i in chosen]))
        out[f"{prefix}_cer_{kind}"] = float(jiwer.cer([references[i] for i in chosen], [hypotheses[i] for i in chosen]))
    return out
