"""Language models that write text: character- or WordPiece-level `lstm` and `gpt` (a causal
transformer decoder), trained on next-token prediction over windows of a corpus.

Datasets: `fortunes`, `rotten-tomatoes`, `folder:PATH` (.txt files), `csv:PATH` (a text
column). The split is by document (by movie for reviews): a test text was never seen in
training, and the vocabulary is learnt from the training split only. The metric is held-out
perplexity per token (per character at `--level char`) over every test token, each document's
closing boundary included, read through windows that overlap by half so that each token has at
least half a context of history (tokens of the first window excepted); the baseline is an interpolated Kneser-Ney n-gram model on the same
training tokens, its order chosen on validation, scored on exactly the same test tokens. Every
epoch the network continues fixed prompts (`samples/epoch_NNN.txt`); the logged model takes a
prompt and returns it continued.
"""

from __future__ import annotations

import numpy as np

from workbench.config import Option, RunConfig
from workbench.data.splits import DataError, Splits
from workbench.tasks.base import Evaluation, Task

LEVELS = ("char", "subword")
DEFAULT_CONTEXT = {"char": 128, "subword": 64}
DEFAULT_SAMPLE_LENGTH = {"char": 300, "subword": 80}
MAX_NGRAM_ORDER = {"char": 7, "subword": 4}  # beyond these, orders stop helping on corpora of a few MB
HELD_OUT = (0.1, 0.1)  # shares of documents for validation and test
PROMPT_WORDS = 2       # default prompts: the first words of a few validation documents
PROMPTS = 3
SCORED_AT_ONCE = 512   # test windows predicted per call


class GenerateTask(Task):
    name = "generate"
    datasets = ("fortunes", "rotten-tomatoes")
    dataset_prefixes = ("folder:", "csv:")
    models = ("lstm", "gpt")
    losses = ("sparse_categorical_crossentropy",)
    default_dataset = "fortunes"
    default_model = "gpt"
    default_loss = "sparse_categorical_crossentropy"
    monitor = "val_loss"
    monitor_mode = "min"
    main_metric = "test_perplexity"
    main_metric_mode = "min"
    supports_user_models = False
    # Epochs from the corpus size: enough gradient steps to fit a few-MB corpus; early stopping
    # (best weights restored) ends a run whose validation loss stops falling.
    default_epochs = 0
    auto_steps = 3000
    auto_epoch_range = (2, 100)
    auto_patience = 3
    options = (
        Option("level", str, "char", "tokens: characters, or WordPiece subwords learnt from the training split",
               choices=LEVELS),
        Option("context_length", int, 0, "tokens the model reads; 0 = 128 characters or 64 subwords",
               minimum=0, allowed="an integer >= 0 (0 = from the level)"),
        Option("subword_vocabulary", int, 4000, "subword level: WordPiece vocabulary size aimed at", minimum=100),
        Option("width", int, 0, "hidden size (LSTM units, transformer width); 0 = lstm 256, gpt 128", minimum=0),
        Option("depth", int, 0, "layers; 0 = lstm 2, gpt 4", minimum=0),
        Option("temperature", float, 0.8, "sampling temperature; 0 = always the most likely token", minimum=0.0),
        Option("top_k", int, 40, "sample among the k most likely tokens; 0 = all", minimum=0),
        Option("sample_length", int, 0, "tokens generated per prompt; 0 = 300 characters or 80 subwords", minimum=0),
        Option("prompts", str, "", "fixed prompts separated by '|'; empty = the first words of 3 validation texts"),
        Option("ngram_order", int, 0, "Kneser-Ney baseline order; 0 = chosen on validation", minimum=0),
        Option("text_column", str, "text", "text column of csv: datasets"),
    )

    def search_space(self, model: str) -> dict[str, dict]:
        return {"learning_rate": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
                "dropout": {"type": "float", "low": 0.0, "high": 0.3},
                "batch_size": {"type": "categorical", "choices": [32, 64]}}

    # ---- data ---------------------------------------------------------------------------

    def sizes(self, config: RunConfig) -> tuple[int, int]:
        """(context length, tokens sampled per prompt) of this config."""
        return (config.context_length or DEFAULT_CONTEXT[config.level],
                config.sample_length or DEFAULT_SAMPLE_LENGTH[config.level])

    def load_data(self, config: RunConfig) -> Splits:
        from workbench.data.documents import load_documents, split_documents
        from workbench.data.tokens import Vocabulary, scored_windows, windows

        documents = load_documents(config.dataset, config.text_column)
        train, val, test = split_documents(documents, HELD_OUT, config.seed)
        vocabulary = Vocabulary.learn(train, config.level, config.subword_vocabulary)
        streams = {name: vocabulary.stream(texts) for name, texts in (("train", train), ("val", val), ("test", test))}
        context, _ = self.sizes(config)
        short = {name: len(s) for name, s in streams.items() if len(s) <= context + 1}
        if short:
            raise DataError(f"dataset '{config.dataset}': too short for a context of {context} tokens: the "
                            + ", ".join(f"{k} split has {v} tokens" for k, v in short.items())
                            + f" ({config.level} level). Use a smaller context_length or a larger corpus")
        x_train, y_train = windows(streams["train"], context, max(1, context // 2))  # every token at two offsets
        x_val, y_val = windows(streams["val"], context, context)
        x_test, y_test = windows(streams["test"], context, context)
        unknown = float(np.mean(streams["test"] == 1))
        notes = [*documents.notes, f"documents: {len(train)} train, {len(val)} validation, {len(test)} test "
                 f"(split by {'group' if documents.groups else 'document'})",
                 f"{config.level} vocabulary of {len(vocabulary)} tokens from the training split; "
                 f"{len(streams['train'])} training tokens; {unknown:.2%} of test tokens unknown"]
        prompts = [p for p in config.prompts.split("|") if p.strip()] if config.prompts.strip() else \
            [" ".join(text.split()[:PROMPT_WORDS]) for text in val[:PROMPTS]]
        return Splits(x_train, y_train, x_val, y_val, x_test, y_test, class_names=list(vocabulary.tokens),
                      name=config.dataset.split("/")[-1], source=documents.source, notes=notes,
                      extras={"vocabulary": vocabulary, "streams": streams, "prompts": prompts,
                              "test_windows": scored_windows(streams["test"], context),
                              "config": config})

    def preview(self, data: Splits) -> list:
        """A few training windows as text, and how often each token occurs."""
        import textwrap

        from matplotlib.figure import Figure

        vocabulary = data.extras["vocabulary"]
        counts = np.bincount(data.extras["streams"]["train"], minlength=len(vocabulary))
        fig = Figure(figsize=(13, 4.8), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
        top = np.argsort(-counts)[:30]
        left.barh(range(len(top)), counts[top][::-1], color="tab:blue")
        left.set_yticks(range(len(top)), [repr(vocabulary.tokens[i]) for i in top][::-1], fontsize=7)
        left.set(title=f"Most frequent of {len(vocabulary)} tokens (train)", xlabel="count")
        right.axis("off")
        lines = [textwrap.shorten(vocabulary.decode([t for t in row if t]), 160) for row in data.x_train[:5]]
        right.text(0, 1, "\n\n".join(textwrap.fill(line, 80) for line in lines), va="top", fontsize=8,
                   family="monospace", parse_math=False)
        right.set_title(f"Training windows ({data.x_train.shape[1]} tokens each)")
        return [fig]

    # ---- models -------------------------------------------------------------------------

    def build_model(self, config: RunConfig, data: Splits):
        from workbench.models.language import language_model

        context, _ = self.sizes(config)
        return language_model(config.model, len(data.class_names), context, config.width, config.depth,
                              config.dropout, name=f"{self.name}_{config.model}")

    def epoch_callbacks(self, config: RunConfig, data: Splits, run) -> list:
        import keras

        task = self

        class Samples(keras.callbacks.Callback):
            """The fixed prompts continued after every epoch: the run page shows generation improving."""

            def on_epoch_end(self, epoch, logs=None):
                if run.run_id is None:  # a non-chief worker logs nothing
                    return
                texts = task.samples(self.model, data, config, seed=config.seed + epoch)
                header = f"epoch {epoch + 1}, temperature {config.temperature}, top_k {config.top_k}\n\n"
                run.log_bytes((header + "\n\n---\n\n".join(texts) + "\n").encode(),
                              f"samples/epoch_{epoch + 1:03d}.txt")

        return [Samples()]

    def samples(self, network, data: Splits, config: RunConfig, seed: int) -> list[str]:
        from workbench.models.generation import generate

        context, length = self.sizes(config)
        return generate(network, data.extras["vocabulary"], data.extras["prompts"], context, length,
                        config.temperature, config.top_k, seed)

    def exported_model(self, model, data: Splits):
        from workbench.models.generation import TextGenerator

        config = data.extras["config"]
        context, length = self.sizes(config)
        vocabulary = data.extras["vocabulary"]
        settings = {"level": vocabulary.level, "tokens": vocabulary.tokens, "context_length": context,
                    "sample_length": length, "temperature": config.temperature, "top_k": config.top_k,
                    "seed": config.seed}
        return TextGenerator(model, settings), list(data.extras["prompts"])

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate(self, model, data: Splits, config: RunConfig) -> Evaluation:
        """Perplexity over every test token (each predicted once), per position in the window, and samples."""
        from matplotlib.figure import Figure

        from workbench.data.batches import predict

        data.extras["config"] = config  # what exported_model, called after this, samples with
        x, targets, mask = data.extras["test_windows"]
        # Only each target's probability is kept: all of them, windows x context x vocabulary,
        # would take gigabytes on a large test split.
        chosen = np.concatenate([
            np.take_along_axis(predict(model, x[i:i + SCORED_AT_ONCE]),
                               targets[i:i + SCORED_AT_ONCE, :, None].astype(np.int64), axis=-1)[..., 0]
            for i in range(0, len(x), SCORED_AT_ONCE)])
        nll = -np.log(np.maximum(chosen.astype(np.float64), 1e-30))
        per_position = nll.mean(axis=0)  # every window's every position: how history helps
        cross_entropy = float(nll[mask].mean())
        unit = "character" if config.level == "char" else "subword"
        metrics = {"test_perplexity": float(np.exp(cross_entropy)), "test_cross_entropy": cross_entropy,
                   "test_bits_per_token": cross_entropy / np.log(2), "test_tokens": float(mask.sum())}
        fig = Figure(figsize=(7, 3.6), layout="constrained")
        ax = fig.subplots()
        ax.plot(np.arange(1, len(per_position) + 1), np.exp(per_position), color="tab:blue")
        ax.set(xlabel="tokens of context seen", ylabel=f"perplexity per {unit}", yscale="log",
               title="Test perplexity by tokens of history in the window")
        texts = self.samples(model, data, config, seed=config.seed)
        table = {"prompt": list(data.extras["prompts"]), "generated": texts}
        return Evaluation(metrics, {"perplexity_by_position": fig}, {"samples": table})

    def baseline(self, data: Splits, config: RunConfig) -> dict[str, float]:
        """Kneser-Ney on the training stream; its order chosen on validation unless ngram_order is set."""
        from workbench.models.kneser_ney import KneserNey

        streams, size = data.extras["streams"], len(data.class_names)
        top = int(min(MAX_NGRAM_ORDER[config.level], 61 / np.log2(size)))
        orders = [config.ngram_order] if config.ngram_order else range(1, top + 1)
        scored = {n: KneserNey(n, size).fit(streams["train"]) for n in orders}
        validation = {n: m.perplexity(streams["val"]) for n, m in scored.items()}
        best = min(validation, key=validation.get)
        return {"baseline_test_perplexity": scored[best].perplexity(streams["test"]),
                "baseline_val_perplexity": validation[best], "baseline_order": float(best)}
