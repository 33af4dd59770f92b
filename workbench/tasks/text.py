"""Text classification: fortunes by topic, Rotten Tomatoes fresh/rotten reviews, class-per-folder
.txt trees, or CSV files.

Models take raw strings, so the logged MLflow model predicts on text: `bow` (linear over a bag of
words and word pairs, each weighted by its naive-Bayes log-count ratio), `cnn1d`, `rnn`, `lstm`,
`transformer` (a TextVectorization layer inside the model; the sequence models can start from
GloVe vectors, and by default their classifier also reads bow's bag: on ~10k short reviews the
sequence path alone stayed below the linear baseline) and `minilm` (a pretrained 6-layer BERT,
its tokenizer attached, a head on the mean of its token vectors).
Vocabulary size and sequence length default to what the training split needs.
Baseline: TF-IDF (1-2 grams) + logistic regression on the same training split.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from workbench.config import Option, RunConfig
from workbench.data.splits import DataError, Splits, split_holdout
from workbench.tasks.base import ClassificationTask, Evaluation

MAX_VOCABULARY = 20_000
MIN_WORD_COUNT = 2           # a word seen once in training teaches the model nothing it can reuse
LENGTH_PERCENTILE = 95       # texts longer than this share are cut, shorter ones padded
EMBEDDING_WIDTH = 64
# Adam moves every weight at about the same pace, so an input's scale sets how fast its path
# learns: at x1 the sequence path had memorized the training reviews before the bag's weights
# had grown, and x4 beat x1 and x16 on rotten-tomatoes (BENCHMARKS.md).
BAG_GAIN = 4.0
TEST_FRACTION = 0.2
MISTAKES_SHOWN = 20
EMBEDDING_MODELS = ("cnn1d", "rnn", "lstm", "transformer")
# TextVectorization's default standardization: lower case, punctuation removed, split on spaces
PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-./:;<=>?@\[\\\]^_`{|}~\']')


def words(text: str) -> list[str]:
    return PUNCTUATION.sub("", text.lower()).split()


def vocabulary_from_data(texts, ngrams: int) -> int:
    """Terms (words, and word pairs for ngrams=2) seen at least twice in `texts`, at most 20,000."""
    counts = Counter()
    for text in texts:
        tokens = words(text)
        counts.update(tokens)
        if ngrams == 2:
            counts.update(" ".join(pair) for pair in zip(tokens, tokens[1:]))
    return min(MAX_VOCABULARY, sum(1 for c in counts.values() if c >= MIN_WORD_COUNT))


def length_from_data(texts) -> int:
    """Words per text at the 95th percentile: long enough for nearly all, without padding to the longest."""
    return max(1, int(np.ceil(np.percentile([len(words(t)) for t in texts], LENGTH_PERCENTILE))))


EMBEDDINGS = ("learned", "glove", "glove-frozen")


class TextTask(ClassificationTask):
    name = "text"
    datasets = ("fortunes", "rotten-tomatoes")
    dataset_prefixes = ("folder:", "csv:")
    models = ("bow", "cnn1d", "rnn", "lstm", "transformer", "minilm")
    losses = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")
    default_dataset = "fortunes"
    default_model = "transformer"
    default_loss = "sparse_categorical_crossentropy"
    options = (
        Option("vocabulary_size", int, 0, "most frequent words kept; 0 = from the data (words seen at least "
                                          "twice, at most 20,000)", minimum=0, allowed="an integer >= 0 (0 = from the data)"),
        Option("sequence_length", int, 0, "tokens read per text (minilm: its maximum length); 0 = from the data "
                                          "(95th percentile)", minimum=0, allowed="an integer >= 0 (0 = from the data)"),
        Option("embeddings", str, "learned", "sequence models' word vectors: learned, or GloVe 6B 50-d fine-tuned "
                                             "(glove) or frozen (glove-frozen)", choices=EMBEDDINGS),
        Option("wide", bool, True, "cnn1d, rnn, lstm, transformer: also feed bow's weighted bag of words and word "
                                   "pairs straight to the classifier, beside the sequence path (wide and deep)"),
        Option("text_column", str, "text", "text column of csv: datasets"),
        Option("label_column", str, "label", "label column of csv: datasets"),
    )
    model_options = {"minilm": (
        Option("frozen_layers", int, 0, "encoder layers kept frozen, counted from the input; -1 = all (only the "
                                        "head learns)", minimum=-1, allowed="an integer >= -1 (-1 = all)"),
    )}
    # Epochs from the data's size: text models fit a training split within a few thousand steps
    # and then overfit, so early stopping (best weights restored) ends most runs well before the cap.
    default_epochs = 0
    auto_steps = 2000
    auto_epoch_range = (5, 40)
    auto_patience = 4

    def default_epochs_for(self, model: str) -> int:
        return 3 if model == "minilm" else 0  # fine-tuning a pretrained encoder: BERT's 2-4 epochs

    def default_dropout_for(self, model: str) -> float:
        # the transformer has no other regularizer; 0.3 beat none on every seed measured (BENCHMARKS.md)
        return 0.3 if model == "transformer" else 0.0

    def warmup_fraction_for(self, model: str) -> float:
        return 0.1 if model == "minilm" else 0.0  # BERT's fine-tuning recipe warms up over the first 10%

    def default_learning_rate_for(self, model: str) -> float:
        return 5e-5 if model == "minilm" else 1e-3  # BERT's fine-tuning rate (Devlin et al.)

    def search_space(self, model: str) -> dict[str, dict]:
        if model != "minilm":
            return super().search_space(model)
        return {"learning_rate": {"type": "float", "low": 1e-5, "high": 2e-4, "log": True},
                "batch_size": {"type": "categorical", "choices": [16, 32, 64]}}

    def check_config(self, config: RunConfig) -> None:
        from workbench.config import ConfigError
        from workbench.models import minilm

        if config.jit_compile:
            raise ConfigError("jit_compile", True, "false for text models: their TextVectorization layer runs "
                              "string operations that XLA cannot compile")
        if config.loss == "binary_crossentropy" and config.dataset == "fortunes":
            raise ConfigError("loss", config.loss, "only for 2-class datasets; 'fortunes' has 6 topics "
                              "(use sparse_categorical_crossentropy or categorical_crossentropy)")
        if config.embeddings != "learned" and config.model not in EMBEDDING_MODELS:
            raise ConfigError("embeddings", config.embeddings, f"'learned' with model '{config.model}', which has "
                              f"no word embedding to start from GloVe; glove and glove-frozen work with model "
                              f"{', '.join(EMBEDDING_MODELS)}")
        # frozen_layers is minilm's own option: other models do not accept it at all
        layers = minilm.encoder_layers() if config.model == "minilm" and config.frozen_layers > 0 else None
        if layers is not None and config.frozen_layers > layers:
            raise ConfigError("frozen_layers", config.frozen_layers, f"-1 to {layers} for model minilm "
                              f"(it has {layers} encoder layers)")

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.config import ConfigError
        from workbench.data import text as sources

        if config.dataset == "fortunes":
            source = sources.load_fortunes()
        elif config.dataset == "rotten-tomatoes":
            source = sources.load_rotten_tomatoes()
        elif config.dataset.startswith("csv:"):
            source = sources.load_text_csv(config.dataset.removeprefix("csv:"), config.text_column,
                                           config.label_column)
        else:
            source = sources.load_text_folder(config.dataset.removeprefix("folder:"))
        if config.loss == "binary_crossentropy" and len(source.class_names) != 2:
            raise ConfigError("loss", config.loss, f"only for 2-class datasets; '{config.dataset}' has "
                              f"{len(source.class_names)} classes")
        x_train, y_train, x_val, y_val, x_test, y_test = _split(source, config)
        if min(len(x_train), len(x_val), len(x_test)) == 0:
            raise DataError(f"dataset '{config.dataset}' is too small to split ({len(source.texts)} texts)")
        data = Splits(x_train, y_train, x_val, y_val, x_test, y_test, class_names=source.class_names,
                      name=config.dataset.split("/")[-1], source=source.source, notes=source.notes)
        sizes = self.text_sizes(config, data)
        data.notes.append("; ".join(f"{k.replace('_', ' ')} {v}" for k, v in sizes.items()))
        return data

    def text_sizes(self, config: RunConfig, data: Splits) -> dict[str, str | int]:
        """The vocabulary size and sequence length this run uses, each given or read from the training split."""
        key = ("text_sizes", config.model, config.vocabulary_size, config.sequence_length)
        if key in data.extras:  # the same splits may serve several configs (tuning trials)
            return data.extras[key]
        sizes: dict[str, str | int] = {}
        if config.model == "minilm":
            from workbench.models import minilm

            sizes["sequence_length"] = config.sequence_length or minilm.length_from_data(
                data.x_train, LENGTH_PERCENTILE)
            sizes["sequence_length_from"] = "config" if config.sequence_length else \
                f"the data: wordpieces of the {LENGTH_PERCENTILE}th-percentile training text"
        else:
            ngrams = 2 if config.model == "bow" else 1
            sizes["vocabulary_size"] = config.vocabulary_size or vocabulary_from_data(data.x_train, ngrams)
            sizes["vocabulary_size_from"] = "config" if config.vocabulary_size else \
                f"the data: {'terms' if ngrams == 2 else 'words'} seen at least {MIN_WORD_COUNT} times in " \
                f"training, at most {MAX_VOCABULARY}"
            if config.model != "bow":
                sizes["sequence_length"] = config.sequence_length or length_from_data(data.x_train)
                sizes["sequence_length_from"] = "config" if config.sequence_length else \
                    f"the data: words of the {LENGTH_PERCENTILE}th-percentile training text"
        data.extras[key] = sizes
        return sizes

    def preview(self, data: Splits):
        """Sample texts with their labels, the length histogram, and the vocabulary size."""
        import textwrap

        from matplotlib.figure import Figure

        lengths = np.array([len(t.split()) for t in data.x_train])
        vocabulary = len({w for t in data.x_train for w in t.lower().split()})
        fig = Figure(figsize=(13, 4.8), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
        left.hist(lengths, bins=40, color="tab:blue")
        left.set(title=f"Words per text (train, {len(lengths)} texts, {vocabulary} distinct words)",
                 xlabel="words", ylabel="texts")
        right.axis("off")
        lines = []
        for text, label in zip(data.x_train[:6], data.y_train[:6]):
            snippet = textwrap.shorten(text, 110, placeholder=" …")
            lines.append(f"[{data.class_names[label]}] {snippet}")
        right.text(0, 1, "\n\n".join(textwrap.fill(line, 80) for line in lines), va="top", fontsize=8,
                   family="monospace", parse_math=False)  # quotations contain "$"
        right.set_title("Training examples")
        return [fig]

    # ---- models -------------------------------------------------------------------------

    def build_model(self, config: RunConfig, data: Splits):
        import keras
        import tensorflow as tf
        from keras import layers

        from workbench.models import blocks
        from workbench.models.sequence import (KIM_WIDTHS, kim_cnn, token_and_position_embedding,
                                               transformer_encoder, word_embedding)

        sizes = self.text_sizes(config, data)
        if config.model == "minilm":
            from workbench.models import minilm

            return minilm.classifier(data.num_classes, sizes["sequence_length"], config.frozen_layers,
                                     binary=config.loss == "binary_crossentropy")
        inputs = keras.Input(shape=(), dtype="string", name="text")
        max_tokens = sizes["vocabulary_size"] + 2  # the padding and out-of-vocabulary tokens
        if config.model == "bow":  # linear: a hidden layer over the bag scored lower on every seed (BENCHMARKS.md)
            x = word_and_pair_bag(data.x_train, data.y_train, data.num_classes, max_tokens)(inputs)
            x = layers.Dropout(config.dropout)(x) if config.dropout else x
        else:
            length = sizes["sequence_length"]
            if config.model == "cnn1d":
                length = max(length, max(KIM_WIDTHS))  # the widest convolution needs that many tokens
            vectorizer = layers.TextVectorization(max_tokens=max_tokens, output_mode="int",
                                                  output_sequence_length=length)
            vectorizer.adapt(tf.data.Dataset.from_tensor_slices(data.x_train).batch(512))
            tokens = vectorizer(inputs)
            embedding, found = word_embedding(vectorizer.get_vocabulary(), EMBEDDING_WIDTH, config.embeddings,
                                              config.seed, mask_zero=config.model in ("rnn", "lstm"))
            if found is not None:
                print(f"GloVe: {found} of {vectorizer.vocabulary_size() - 2} words found "
                      f"({'fine-tuned' if config.embeddings == 'glove' else 'frozen'})")
            if config.model == "transformer":
                x = token_and_position_embedding(tokens, length, embedding)
                x = transformer_encoder(x, heads=4, width=embedding.output_dim, feed_forward=128,
                                        dropout=config.dropout, activation=config.activation)
                x = layers.GlobalAveragePooling1D()(x)
            elif config.model == "cnn1d":
                x = kim_cnn(embedding(tokens), config.activation, blocks.weight_penalty(config))
            elif config.model == "rnn":
                x = layers.SimpleRNN(64, activation=config.activation)(embedding(tokens))
            else:
                x = layers.Bidirectional(layers.LSTM(64))(embedding(tokens))
            if config.model != "cnn1d":  # Kim's CNN goes straight from its pooled features to the classifier
                x = layers.Dropout(config.dropout)(x) if config.dropout else x
                x = blocks.dense(x, 64, config)
            if config.wide:
                bag = word_and_pair_bag(data.x_train, data.y_train, data.num_classes,
                                        vocabulary_from_data(data.x_train, 2) + 2)(inputs)
                x = layers.Concatenate(name="wide_and_deep")([x, bag])
        outputs = blocks.classifier_head(x, data.num_classes, config)
        return keras.Model(inputs, outputs, name=f"{self.name}_{config.model}")

    def exported_model(self, model, data: Splits):
        if model.name == f"{self.name}_minilm":  # its pooling is a class of ours: logged with its loader
            from workbench.models.mean_pooled_bert import ServedTextClassifier

            return ServedTextClassifier(model, {}), data.x_test[:5]
        return super().exported_model(model, data)

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        from workbench.evaluation import classification_report
        from workbench.data.batches import predict

        probabilities = predict(model, data.x_test)
        report = classification_report(data.y_test, probabilities, data.class_names)
        confidence = probabilities.max(axis=-1) if probabilities.shape[-1] > 1 else \
            np.where(report.predicted == 1, probabilities[:, 0], 1 - probabilities[:, 0])
        wrong = np.flatnonzero(report.predicted != data.y_test)
        worst = wrong[np.argsort(-confidence[wrong])][:MISTAKES_SHOWN]
        report.tables["confident_mistakes"] = {
            "text": [str(data.x_test[i]) for i in worst],
            "true": [data.class_names[data.y_test[i]] for i in worst],
            "predicted": [data.class_names[report.predicted[i]] for i in worst],
            "confidence": [float(confidence[i]) for i in worst],
        }
        return report

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import f1_score
        from sklearn.pipeline import make_pipeline

        classifier = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                                   LogisticRegression(max_iter=1000, C=10))
        classifier.fit(data.x_train, data.y_train)
        predicted = classifier.predict(data.x_test)
        return {
            "baseline_val_accuracy": float(classifier.score(data.x_val, data.y_val)),
            "baseline_test_accuracy": float(np.mean(predicted == data.y_test)),
            "baseline_test_macro_f1": float(f1_score(data.y_test, predicted, average="macro")),
        }


def word_and_pair_bag(texts, labels, num_classes: int, max_tokens: int):
    """Words and word pairs, each counted and scaled by how well it tells the classes apart in the
    training texts: the naive-Bayes log-count ratio (Wang & Manning, 2012), which beat plain TF-IDF
    under the same linear classifier on short reviews here. Inside the model, so it reads raw strings."""
    import tensorflow as tf
    from keras import layers

    present = layers.TextVectorization(max_tokens=max_tokens, ngrams=2, output_mode="multi_hot")
    present.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(512))
    vocabulary = present.get_vocabulary()
    texts_with_term = np.zeros((num_classes, len(vocabulary)))
    for start in range(0, len(texts), 512):
        hot = present(texts[start:start + 512]).numpy()
        np.add.at(texts_with_term, labels[start:start + 512], hot)
    # the out-of-vocabulary slot comes first; the layer weighs it by the mean of the others
    weights = BAG_GAIN * class_separation(texts_with_term)
    return layers.TextVectorization(max_tokens=max_tokens, ngrams=2, output_mode="tf_idf", name="word_and_pair_bag",
                                    vocabulary=vocabulary[1:], idf_weights=weights[1:])


def class_separation(texts_with_term: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """Per term, the largest |log ratio| between its share of one class' texts and of the other classes'
    (one class against the rest; smoothed so a term seen in one class only stays finite)."""
    in_class = texts_with_term + smoothing
    in_rest = texts_with_term.sum(axis=0, keepdims=True) - texts_with_term + smoothing
    share = in_class / in_class.sum(axis=1, keepdims=True)
    rest_share = in_rest / in_rest.sum(axis=1, keepdims=True)
    return np.abs(np.log(share / rest_share)).max(axis=0).astype(np.float32)


def _split(source, config: RunConfig):
    """Test, then validation, split off the pool; whole groups (e.g. a movie's reviews) when the source has them,
    so a model is judged on movies it never saw."""
    if source.groups is None:
        x_pool, x_test, y_pool, y_test = split_holdout(source.texts, source.labels, TEST_FRACTION, config.seed, "test split")
        x_train, x_val, y_train, y_val = split_holdout(x_pool, y_pool, config.validation_split, config.seed)
        return x_train, y_train, x_val, y_val, x_test, y_test
    from sklearn.model_selection import GroupShuffleSplit

    def holdout(indices, fraction):
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=config.seed)
        keep, held = next(splitter.split(indices, groups=source.groups[indices]))
        return indices[keep], indices[held]

    pool, test = holdout(np.arange(len(source.texts)), TEST_FRACTION)
    train, val = holdout(pool, config.validation_split)
    return tuple(part for idx in (train, val, test) for part in (source.texts[idx], source.labels[idx]))
