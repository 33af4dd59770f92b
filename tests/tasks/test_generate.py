"""Generate task: the Kneser-Ney baseline, the split by document, and one run end to end."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import all_runs, artifact_paths, client, run_cli

SENTENCES = ["The cat sat on the mat and looked at the door.", "A dog ran in the park after a red ball.",
             "Rain fell on the roofs of the old town all night.", "She read the letter twice and smiled.",
             "The train left the station just before noon.", "Birds sang in the tall trees by the river."]


@pytest.fixture
def story_folder(tmp_path):
    root = tmp_path / "stories"
    root.mkdir()
    for i in range(24):
        (root / f"{i:02d}.txt").write_text(" ".join(SENTENCES[(i + j) % 6] for j in range(3)) + f" Story {i}.")
    return root


def test_kneser_ney_distribution_sums_to_one_and_prefers_seen_text():
    from workbench.models.kneser_ney import KneserNey

    rng = np.random.default_rng(0)
    pattern = np.tile(np.arange(2, 12), 200)
    model = KneserNey(3, 12).fit(pattern)
    for context in ([2, 3], [11, 2], [5], [0, 1]):  # seen, wrapped, short and unseen contexts
        assert model.next_distribution(context).sum() == pytest.approx(1.0)
    assert model.perplexity(pattern[:300]) < 1.5 < model.perplexity(rng.integers(0, 12, 300))


def test_documents_are_split_whole(story_folder):
    from workbench.data.documents import load_documents, split_documents

    documents = load_documents(f"folder:{story_folder}")
    train, val, test = split_documents(documents, (0.2, 0.2), seed=0)
    assert len(train) + len(val) + len(test) == 24 and val and test
    assert not (set(train) & set(test) or set(train) & set(val) or set(val) & set(test))


def test_test_windows_predict_every_token_once():
    from workbench.data.tokens import scored_windows

    for size, length in ((23, 5), (24, 6), (8, 7), (40, 1)):
        stream = np.arange(size)
        x, y, mask = scored_windows(stream, length)
        assert sorted(y[mask].tolist()) == list(range(1, size)), (size, length)
        assert (y == x + 1).all()
        # after the first window, a scored token has at least half a window of history before it
        history = np.broadcast_to(np.arange(1, length + 1), mask.shape)
        assert (history[1:][mask[1:]] >= length // 2).all(), (size, length)
    with pytest.raises(ValueError, match="no window of 5"):
        scored_windows(np.arange(5), 5)


def test_one_epoch_logs_perplexities_samples_and_a_model_that_continues_prompts(home, story_folder):
    import mlflow

    from workbench import train

    result = train(task="generate", model="gpt", dataset=f"folder:{story_folder}", epochs=1, batch_size=16,
                   context_length=32, width=32, depth=1, sample_length=20, prompts="The cat|Rain", verbose=0)
    assert result.metrics["test_perplexity"] > 1 and result.metrics["baseline_test_perplexity"] > 1
    run = client(home).get_run(result.run_id)
    assert {"test_perplexity", "baseline_test_perplexity", "test_loss"} <= set(run.data.metrics)
    artifacts = artifact_paths(home, result.run_id)
    assert "samples/epoch_001.txt" in artifacts
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    reloaded = mlflow.pyfunc.load_model(f"models:/{run.outputs.model_outputs[0].model_id}")
    (written,) = reloaded.predict(["The dog"])
    assert isinstance(written, str) and written.startswith("The dog")


def test_subword_level_encodes_and_decodes(story_folder):
    from workbench.data.tokens import Vocabulary

    vocabulary = Vocabulary.learn(SENTENCES * 5, "subword", 200)
    ids = vocabulary.encode("The cat sat on the mat.")
    assert 1 not in ids and vocabulary.decode(ids) == "The cat sat on the mat."


def test_empty_corpus_is_a_clear_error_and_leaves_no_run(home, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("   \n")
    done = run_cli("train", "--in-process", "--task", "generate", "--dataset", f"folder:{empty}", "--epochs", "1",
                   timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "no text to learn from" in done.stderr and "folder:PATH" in done.stderr
    assert "Traceback" not in done.stderr
    assert all_runs(home) == []


def test_corpus_shorter_than_the_context_is_a_clear_error(story_folder):
    from workbench.data.splits import DataError
    from workbench.tasks import get_task
    from workbench.tasks.configure import make_config

    config = make_config(task="generate", dataset=f"folder:{story_folder}", context_length=4000)
    with pytest.raises(DataError, match="context of 4000"):
        get_task("generate").load_data(config)
