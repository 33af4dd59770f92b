"""Text classification: fortunes by topic, class-per-folder .txt trees, or CSV files.

Models take raw strings (a TextVectorization layer inside the model, so the logged MLflow model
predicts on text): `bow`, `cnn1d`, `rnn`, `lstm`, `transformer`.
Baseline: TF-IDF (1-2 grams) + logistic regression on the same training split.
"""

from __future__ import annotations

import numpy as np

from workbench.config import RunConfig
from workbench.data.splits import DataError, Splits, split_holdout
from workbench.tasks.base import ClassificationTask, Evaluation

VOCABULARY_SIZE = 20_000
SEQUENCE_LENGTH = 128
EMBEDDING_WIDTH = 64
TEST_FRACTION = 0.2
MISTAKES_SHOWN = 20


class TextTask(ClassificationTask):
    name = "text"
    datasets = ("fortunes",)
    dataset_prefixes = ("folder:", "csv:")
    models = ("bow", "cnn1d", "rnn", "lstm", "transformer")
    losses = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")
    default_dataset = "fortunes"
    default_model = "transformer"
    default_loss = "sparse_categorical_crossentropy"

    def check_config(self, config: RunConfig) -> None:
        from workbench.config import ConfigError

        if config.jit_compile:
            raise ConfigError("jit_compile", True, "false for text models: their TextVectorization layer runs "
                              "string operations that XLA cannot compile")
        if config.loss == "binary_crossentropy" and config.dataset == "fortunes":
            raise ConfigError("loss", config.loss, "only for 2-class datasets; 'fortunes' has 6 topics "
                              "(use sparse_categorical_crossentropy or categorical_crossentropy)")

    # ---- data ---------------------------------------------------------------------------

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.config import ConfigError
        from workbench.data import text as sources

        if config.dataset == "fortunes":
            source = sources.load_fortunes()
        elif config.dataset.startswith("csv:"):
            source = sources.load_text_csv(config.dataset.removeprefix("csv:"), config.text_column,
                                           config.label_column)
        else:
            source = sources.load_text_folder(config.dataset.removeprefix("folder:"))
        if config.loss == "binary_crossentropy" and len(source.class_names) != 2:
            raise ConfigError("loss", config.loss, f"only for 2-class datasets; '{config.dataset}' has "
                              f"{len(source.class_names)} classes")
        x_pool, x_test, y_pool, y_test = split_holdout(source.texts, source.labels, TEST_FRACTION, config.seed)
        x_train, x_val, y_train, y_val = split_holdout(x_pool, y_pool, config.validation_split, config.seed)
        if min(len(x_train), len(x_val), len(x_test)) == 0:
            raise DataError(f"dataset '{config.dataset}' is too small to split ({len(source.texts)} texts)")
        return Splits(x_train, y_train, x_val, y_val, x_test, y_test, class_names=source.class_names,
                      name=config.dataset.split("/")[-1], source=source.source, notes=source.notes)

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
        from workbench.models.sequence import token_and_position_embedding, transformer_encoder

        inputs = keras.Input(shape=(), dtype="string", name="text")
        train_texts = tf.data.Dataset.from_tensor_slices(data.x_train).batch(512)
        if config.model == "bow":
            vectorizer = layers.TextVectorization(max_tokens=VOCABULARY_SIZE, ngrams=2, output_mode="tf_idf")
            vectorizer.adapt(train_texts)
            x = blocks.dense(vectorizer(inputs), 128, config)
        else:
            vectorizer = layers.TextVectorization(max_tokens=VOCABULARY_SIZE, output_mode="int",
                                                  output_sequence_length=SEQUENCE_LENGTH)
            vectorizer.adapt(train_texts)
            tokens = vectorizer(inputs)
            vocabulary = vectorizer.vocabulary_size()
            if config.model == "transformer":
                x = token_and_position_embedding(tokens, SEQUENCE_LENGTH, vocabulary, EMBEDDING_WIDTH)
                x = transformer_encoder(x, heads=4, width=EMBEDDING_WIDTH, feed_forward=128,
                                        dropout=config.dropout, activation=config.activation)
                x = layers.GlobalAveragePooling1D()(x)
            else:
                x = layers.Embedding(vocabulary, EMBEDDING_WIDTH, mask_zero=config.model in ("rnn", "lstm"))(tokens)
                if config.model == "cnn1d":
                    x = layers.Conv1D(128, 5, activation=config.activation, kernel_regularizer=blocks.weight_penalty(config))(x)
                    x = layers.GlobalMaxPooling1D()(x)
                elif config.model == "rnn":
                    x = layers.SimpleRNN(64, activation=config.activation)(x)
                else:
                    x = layers.Bidirectional(layers.LSTM(64))(x)
            x = layers.Dropout(config.dropout)(x) if config.dropout else x
            x = blocks.dense(x, 64, config)
        outputs = blocks.classifier_head(x, data.num_classes, config)
        return keras.Model(inputs, outputs, name=f"{self.name}_{config.model}")

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        from workbench.evaluation import classification_report
        from workbench.training import predict

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
