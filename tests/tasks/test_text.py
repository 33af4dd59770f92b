"""Text task: real on-disk formats, splits without shared texts, models that read raw strings."""

import warnings

import numpy as np
import pytest

from workbench.tasks.configure import make_config
from workbench.config import ConfigError
from workbench.data import text as sources
from workbench.data.splits import DataError
from workbench.tasks import get_task

TOPICS = {
    "space": ["The rocket reached orbit after a long burn of its engines {}.",
              "Astronomers saw a new comet near the planet and its moons {}.",
              "The telescope measured light from a distant galaxy cluster {}."],
    "cooking": ["Simmer the onions in butter until they turn golden brown {}.",
                "Knead the dough and let the bread rise in a warm kitchen {}.",
                "Season the soup with salt, pepper and fresh herbs to taste {}."],
}


def texts(topic: str, count: int) -> list[str]:
    return [TOPICS[topic][i % 3].format(f"number {i}") for i in range(count)]


@pytest.fixture
def imdb_folder(tmp_path):
    """The aclImdb layout: one folder of .txt files per class."""
    root = tmp_path / "reviews"
    for topic in TOPICS:
        (root / topic).mkdir(parents=True)
        for i, text in enumerate(texts(topic, 30)):
            (root / topic / f"{i}.txt").write_text(text)
    return root


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "texts.csv"
    rows = ["body,topic"] + [f'"{t}",{topic}' for topic in TOPICS for t in texts(topic, 30)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _no_shared_text(data):
    splits = [set(data.x_train), set(data.x_val), set(data.x_test)]
    return not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])


@pytest.mark.skipif(not sources.FORTUNES_DIR.exists(), reason="Debian fortunes not installed")
def test_fortunes_topics_split_without_shared_texts():
    data = get_task("text").load_data(make_config(task="text"))
    assert data.class_names == list(sources.FORTUNE_TOPICS)
    assert sum(data.sizes().values()) > 3000
    assert _no_shared_text(data)
    assert all(len(t) >= sources.MIN_TEXT_CHARS for t in data.x_train)


def test_fortune_records_are_split_on_percent_lines(tmp_path):
    for topic in ("art", "work"):
        (tmp_path / topic).write_text(f"First {topic} quotation, long enough.\n%\nSecond {topic} one, "
                                      "also long enough.\n%\nshort\n%\n")
    source = sources.load_fortunes(tmp_path, ("art", "work"))
    assert sorted(source.texts.tolist()) == sorted([
        "First art quotation, long enough.", "Second art one, also long enough.",
        "First work quotation, long enough.", "Second work one, also long enough."])


def test_folder_layout_loads_and_reports_empty_files(imdb_folder):
    (imdb_folder / "space" / "empty.txt").write_text("  \n")
    with pytest.warns(UserWarning, match="empty.txt"):
        source = sources.load_text_folder(str(imdb_folder))
    assert source.class_names == ["cooking", "space"]
    assert len(source.texts) == 60
    assert source.notes[0] == "1 of 61 files have an empty text and were left out: space/empty.txt"


def test_folder_class_without_files_is_an_error(imdb_folder):
    (imdb_folder / "sports").mkdir()
    with pytest.raises(DataError, match="sports has no .txt files"):
        sources.load_text_folder(str(imdb_folder))


def test_csv_with_configurable_columns(csv_file):
    config = make_config(task="text", dataset=f"csv:{csv_file}", text_column="body", label_column="topic")
    data = get_task("text").load_data(config)
    assert data.class_names == ["cooking", "space"] and _no_shared_text(data)


def test_csv_rows_with_an_empty_text_are_reported_by_row(tmp_path):
    path = tmp_path / "texts.csv"
    rows = ["text,label"] + [f'"{t}",{topic}' for topic in TOPICS for t in texts(topic, 10)]
    rows[3:3] = ['"",space', '"   ",cooking']  # data rows 3 and 4
    path.write_text("\n".join(rows) + "\n")
    data = get_task("text").load_data(make_config(task="text", dataset=f"csv:{path}", model="bow"))
    assert data.notes[0] == "2 of 22 rows have an empty text and were left out: row 3, row 4"
    assert sum(data.sizes().values()) == 20


def test_sizes_are_read_from_the_training_split_and_noted(csv_file):
    config = make_config(task="text", dataset=f"csv:{csv_file}", text_column="body", label_column="topic",
                                 model="cnn1d")
    data = get_task("text").load_data(config)
    sizes = get_task("text").text_sizes(config, data)
    words = [w for t in data.x_train for w in sources.normalized(t).lower().replace(".", "").replace(",", "").split()]
    assert sizes["vocabulary_size"] == sum(1 for w in set(words) if words.count(w) >= 2)
    assert sizes["sequence_length"] == int(np.ceil(np.percentile([len(t.split()) for t in data.x_train], 95)))
    assert f"vocabulary size {sizes['vocabulary_size']}" in data.notes[-1]


@pytest.mark.parametrize("model_name", ["bow", "minilm"])
def test_glove_for_a_model_without_word_embeddings_is_a_config_error(model_name):
    with pytest.raises(ConfigError, match=f"'embeddings': 'glove'.*model '{model_name}'"):
        make_config(task="text", model=model_name, embeddings="glove")


def test_frozen_layers_only_for_minilm():
    with pytest.raises(ConfigError, match="'frozen_layers': 2.*model 'lstm'"):
        make_config(task="text", model="lstm", frozen_layers=2)


def test_csv_without_the_label_column_names_it(csv_file):
    with pytest.raises(DataError, match="no 'label' column.*body, topic"):
        sources.load_text_csv(str(csv_file), text_column="body")


def test_binary_loss_rejected_for_six_topics():
    with pytest.raises(ConfigError, match="only for 2-class"):
        make_config(task="text", loss="binary_crossentropy")


@pytest.mark.parametrize("model_name", ["bow", "cnn1d", "rnn", "lstm", "transformer"])
def test_every_text_model_learns_from_raw_strings(model_name, imdb_folder, tmp_path):
    from workbench.training import compile_model, fit, predict, seed_everything

    config = make_config(task="text", dataset=f"folder:{imdb_folder}", model=model_name, epochs=25,
                                 batch_size=8, learning_rate=2e-3)
    seed_everything(0)
    task = get_task("text")
    data = task.load_data(config)
    model = task.build_model(config, data)
    compile_model(model, config, task, data)
    history = fit(model, config, task, data, tmp_path / "backup", verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    probabilities = predict(model, data.x_test)  # raw strings in, class probabilities out
    assert probabilities.shape == (len(data.x_test), 2)
    if model_name in ("bow", "cnn1d", "transformer"):  # recurrent nets need more than a few short epochs
        assert (probabilities.argmax(axis=1) == data.y_test).mean() >= 0.9


def test_sequence_models_also_read_a_bag_of_words_and_pairs_unless_told_not_to(imdb_folder):
    task = get_task("text")
    config = make_config(task="text", dataset=f"folder:{imdb_folder}", model="cnn1d")
    data = task.load_data(config)
    wide = task.build_model(config, data)
    bag = wide.get_layer("word_and_pair_bag")
    assert any(" " in term for term in bag.get_vocabulary()), "word pairs are in the bag"
    head = wide.get_layer("probabilities")
    assert head.input.shape[-1] == 3 * 100 + bag.vocabulary_size(), "the classifier reads both paths"
    narrow = task.build_model(config.replace(wide=False), data)
    assert "word_and_pair_bag" not in [layer.name for layer in narrow.layers]
    assert narrow.get_layer("probabilities").input.shape[-1] == 3 * 100


def test_the_bag_weighs_each_term_by_how_well_it_tells_the_classes_apart():
    from workbench.tasks.text import BAG_GAIN, word_and_pair_bag

    texts = np.array(["good film", "good plot", "bad film", "bad plot"])
    bag = word_and_pair_bag(texts, np.array([1, 1, 0, 0]), 2, max_tokens=20)
    terms = bag.get_vocabulary()
    weight = {term: bag([term]).numpy()[0][terms.index(term)] for term in ("good", "bad", "film", "plot")}
    # "good" is in both class-1 texts and no class-0 text: (2 + 1) / (0 + 1) after smoothing
    assert weight["good"] == pytest.approx(BAG_GAIN * np.log(3)) and weight["bad"] == weight["good"]
    assert weight["film"] == pytest.approx(0) and weight["plot"] == pytest.approx(0)
    counted = dict(zip(terms, bag(["good good film"]).numpy()[0]))
    assert counted["good"] == pytest.approx(2 * weight["good"]) and counted["film"] == 0


def test_a_csv_that_is_not_utf8_names_the_file_and_the_byte(tmp_path):
    from workbench.errors import DataError

    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\u00e9 au lait,food\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv is not UTF-8 text: byte 14 .*save it as UTF-8"):
        get_task("text").load_data(make_config(task="text", dataset=f"csv:{path}", model="bow"))
