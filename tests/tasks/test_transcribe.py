"""Transcribe task: user corpora (wav+txt folder, tsv manifest), voice splits, CTC decoding, a tiny
run with its PocketSphinx baseline and pyfunc model, and bad input refused by name."""

import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import all_runs, run_cli
from workbench.data import transcripts
from workbench.data.speech_synthesis import write_wav
from workbench.data.splits import DataError
from workbench.tasks import get_task
from workbench.tasks.configure import make_config

needs_espeak = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed")
RATE = 16_000


def _tone(path, seconds=0.5, pitch=300.0, rate=RATE):
    t = np.arange(int(rate * seconds)) / rate
    write_wav(path, (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32), rate)


def _folder(root, speakers=("ann", "bob", "cem", "dee"), per_speaker=2):
    for s, speaker in enumerate(speakers):
        for k in range(per_speaker):
            _tone(root / speaker / f"{k}.wav", 0.3 + 0.1 * k, 200 + 100 * s)
            (root / speaker / f"{k}.txt").write_text(f"Say {k + 1} times, {speaker.upper()}!\n")
    return root


def test_folder_of_wav_and_txt_loads_normalized_with_speakers_from_folders(tmp_path):
    source = transcripts.load_folder(str(_folder(tmp_path / "corpus")))
    assert len(source.waves) == 8 and source.texts[0] == "say one times ann"
    assert sorted(set(source.speakers.tolist())) == ["ann", "bob", "cem", "dee"]
    assert any("8 of 8 transcripts normalized" in n for n in source.notes)


def test_tsv_manifest_loads_paths_relative_to_it_with_its_speaker_column(tmp_path):
    _tone(tmp_path / "clips" / "a.wav", 0.4, rate=8000)  # resampled to 16 kHz
    _tone(tmp_path / "clips" / "b.wav", 0.2)
    (tmp_path / "train.tsv").write_text("client_id\tpath\tsentence\nx1\tclips/a.wav\tIt's 7 o'clock.\n"
                                        "x2\tclips/b.wav\tcafé — déjà vu\n")
    source = transcripts.load_tsv(str(tmp_path / "train.tsv"))
    assert source.texts == ["it's seven o'clock", "cafe deja vu"]
    assert source.speakers.tolist() == ["x1", "x2"]
    assert len(source.waves[0]) == int(0.4 * RATE)


def test_ctc_decoding_of_a_known_alignment():
    from workbench.models.ctc import decode
    from workbench.models.transcriber import Transcriber

    frames = "hh-e-ll-ll-oo"
    ids = [0 if c == "-" else transcripts.ALPHABET.index(c) + 1 for c in frames]
    logits = np.full((1, len(ids), len(transcripts.ALPHABET) + 1), -5.0, np.float32)
    logits[0, np.arange(len(ids)), ids] = 5.0
    served = Transcriber(None, {"alphabet": transcripts.ALPHABET, "decoding": "greedy", "beam_width": 4})
    assert served.texts(logits) == ["hello"]
    assert served.texts(np.repeat(logits, 2, axis=0)) == ["hello", "hello"]
    assert "".join(transcripts.ALPHABET[k - 1] for k in decode(logits, "beam", 8)[0] if k > 0) == "hello"


def _frames(text: str, other: str | None = None, other_gap: float = 0.7) -> np.ndarray:
    """Per-frame logits spelling `text` (two frames a letter, a blank after each); with `other`, the
    letters of another text of the same length almost as likely in the same frames."""
    width = len(transcripts.ALPHABET) + 1
    rows = []
    for k, char in enumerate(text):
        for _ in range(2):
            row = np.full(width, -6.0)
            row[transcripts.ALPHABET.index(char) + 1] = 3.0
            if other:
                row[transcripts.ALPHABET.index(other[k]) + 1] = 3.0 - other_gap
            rows.append(row)
        rows.append(np.where(np.arange(width) == 0, 3.0, -6.0))
    return np.array(rows)[None]


def test_word_model_search_prefers_the_training_words_and_still_spells_new_ones():
    from workbench.models import word_lm_decoding as lm_decoding

    lm = lm_decoding.WordLanguageModel(["turn on the lights", "seven three two", "turn off the kitchen lights"])
    heard = _frames("turn on the lihgts", other="turn on the lights")  # the acoustics lean to a misspelling
    alphabet = transcripts.ALPHABET
    assert lm_decoding.transcribe(heard, alphabet, lm, 0.0, 0.0) == ["turn on the lihgts"]  # no model: as heard
    assert lm_decoding.transcribe(heard, alphabet, lm, 1.0, 1.5) == ["turn on the lights"]
    # a word the transcripts never had, heard clearly, is still written out
    assert lm_decoding.transcribe(_frames("open the door"), alphabet, lm, 1.0, 1.5) == ["open the door"]
    # the weights are chosen by the error rate they give on the clips handed in
    weight, bonus, rates = lm_decoding.choose_weights(heard, ["turn on the lights"], alphabet, lm, beam_width=8)
    assert rates[(weight, bonus)] == 0.0 and len(rates) == len(lm_decoding.WEIGHTS)


def test_labels_fit_the_networks_frames():
    import keras

    from workbench.models.ctc import output_frames

    config = make_config(task="transcribe", max_seconds=1.0)
    model = get_task("transcribe").build_model(config, type("D", (), {"extras": {"max_samples": RATE},
                                                                       "num_classes": 29})())
    assert model.output_shape == (None, output_frames(RATE), 29)
    assert isinstance(model, keras.Model)
    assert transcripts.encode(["ab", "c"], 3).tolist() == [[2, 3, 0], [4, 0, 0]]


@needs_espeak
def test_synthesized_voices_never_cross_splits(home):
    config = make_config(task="transcribe", speakers=8, utterances=3, seed=3)
    data = get_task("transcribe").load_data(config)
    groups = data.extras["speakers"]
    assert groups["test"] and groups["validation"]
    assert not set(groups["train"]) & (set(groups["test"]) | set(groups["validation"]))
    (root,) = (home / "data").glob("spoken-sentences-*")
    voice_splits = {}
    for line in (root / "speakers.txt").read_text().splitlines():
        _, engine, voice, split = line.split()
        voice_splits.setdefault((engine, voice), set()).add(split)
    assert all(len(s) == 1 for s in voice_splits.values())  # a voice's speakers share one split
    assert data.x_train.shape[1:] == (4 * RATE,) and data.y_train.dtype == np.int32


@needs_espeak
def test_tiny_run_logs_error_rates_baseline_and_a_pyfunc_that_returns_text(home):
    import mlflow

    import workbench
    from conftest import client

    result = workbench.train(task="transcribe", speakers=6, utterances=3, epochs=1, batch_size=8,
                             baseline_clips=2, max_seconds=3.0, decoding="lm", verbose=0)
    metrics = client(home).get_run(result.run_id).data.metrics
    assert {"test_wer", "test_cer", "test_wer_digits", "baseline_wer", "baseline_wer_default_lm",
            "baseline_missing_words", "lm_weight", "word_bonus"} <= set(metrics)
    tried = result.tables["lm_weights_on_validation"]
    assert (metrics["lm_weight"], metrics["word_bonus"]) in zip(tried["lm_weight"], tried["word_bonus"])
    assert metrics["baseline_clips"] == 2
    assert set(result.tables["worst_transcriptions"]) == {"reference", "hypothesis", "wer", "voice", "kind"}
    assert "ctc_alignment" in result.figures
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    run = mlflow.get_run(result.run_id)
    reloaded = mlflow.pyfunc.load_model(f"models:/{run.outputs.model_outputs[0].model_id}")
    said = list(reloaded.predict(np.zeros((3, 3 * RATE), np.float32)))  # the signature: clips padded to 3 s
    assert len(said) == 3 and all(isinstance(s, str) for s in said)
    served = get_task("transcribe").transcriber(result.model, SimpleNamespace(extras={"max_samples": 3 * RATE}))
    assert len(served.predict([np.zeros(RATE, np.float32)])) == 1  # a shorter clip is padded with silence
    with pytest.raises(ValueError, match="limit of 48000 samples"):
        served.predict([np.zeros(4 * RATE, np.float32)])


# ---- bad input -------------------------------------------------------------------------------

def test_wav_without_transcript_is_named(tmp_path):
    root = _folder(tmp_path / "corpus")
    (root / "bob" / "1.txt").unlink()
    with pytest.raises(DataError, match=r"without a \.txt transcript.*bob/1\.wav"):
        transcripts.load_folder(str(root))


def test_empty_corpus_names_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"no .wav files under {tmp_path / 'empty'}"):
        transcripts.load_folder(str(tmp_path / "empty"))
    (tmp_path / "m.tsv").write_text("path\tsentence\n")
    with pytest.raises(DataError, match="m.tsv"):
        transcripts.load_tsv(str(tmp_path / "m.tsv"))


def test_audio_longer_than_the_limit_is_named_with_the_limit(tmp_path):
    root = _folder(tmp_path / "corpus")
    _tone(root / "cem" / "0.wav", 2.5)
    config = make_config(task="transcribe", dataset=f"folder:{root}", max_seconds=2.0)
    with pytest.raises(DataError, match=r"longer than the limit of 2 s.*cem/0\.wav \(2\.5 s\)"):
        get_task("transcribe").load_data(config)


def test_transcript_without_letters_is_named(tmp_path):
    root = _folder(tmp_path / "corpus")
    (root / "ann" / "0.txt").write_text("?!\n")
    with pytest.raises(DataError, match=r"no letters.*ann/0\.wav"):
        transcripts.load_folder(str(root))


def test_bad_corpus_through_the_cli_exits_2_and_leaves_no_run(home, tmp_path):
    root = _folder(tmp_path / "corpus")
    (root / "dee" / "0.txt").unlink()
    result = run_cli("train", "--in-process", "--task", "transcribe", "--dataset", f"folder:{root}", "--epochs", "1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "dee/0.wav" in result.stderr and "Traceback" not in result.stderr
    assert all_runs(home) == []


def test_alignment_figure_frames_match_the_networks_frame_rate():
    from workbench.models import ctc
    from workbench.tasks.transcribe_figures import FRAME_SECONDS

    assert FRAME_SECONDS == 0.010 * ctc.TIME_STRIDE
