"""Speech task: the synthesized Speech Commands tree, the folder loader, speaker splits, models."""

import io
import wave

import numpy as np
import pytest

from workbench.tasks.configure import make_config
from workbench.data import speech, speech_synthesis
from workbench.data.splits import DataError
from workbench.tasks import get_task

needs_espeak = pytest.mark.skipif(not __import__("shutil").which("espeak-ng"), reason="espeak-ng not installed")


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech") / "spoken"
    return speech_synthesis.generate(root, speaker_count=8, utterances=1, seed=3, split=(0.25, 0.25))


def _wav(path, samples, rate, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())


@needs_espeak
def test_synthesized_tree_has_the_speech_commands_layout(tiny_tree):
    folders = {p.name for p in tiny_tree.iterdir() if p.is_dir()}
    assert folders == set(speech_synthesis.KEYWORDS) | {"_unknown_", "_silence_", "_background_noise_"}
    rate, frames = wave.open(str(next((tiny_tree / "yes").glob("*.wav")))).getframerate(), None
    assert rate == 16_000
    validation = (tiny_tree / "validation_list.txt").read_text().split()
    testing = (tiny_tree / "testing_list.txt").read_text().split()
    speakers = lambda names: {n.split("/")[1].split("_nohash_")[0] for n in names}  # noqa: E731
    assert len(speakers(validation)) == 2 and len(speakers(testing)) == 2
    assert not speakers(validation) & speakers(testing)
    # speakers.txt: "s000 engine voice split"; a voice of an engine lies in one split only
    rows = [line.split() for line in (tiny_tree / "speakers.txt").read_text().splitlines()]
    splits_of_voice = {}
    for speaker, engine, voice, split in rows:
        splits_of_voice.setdefault((engine, voice), set()).add(split)
        assert (split == "test") == (speaker in speakers(testing))
    assert all(len(s) == 1 for s in splits_of_voice.values())
    engines = {engine for _, engine, _, _ in rows}
    assert engines == set(speech_synthesis.engines())
    assert all("train" in {s for (e, _), ss in splits_of_voice.items() if e == engine for s in ss}
               for engine in engines)
    assert speech_synthesis.generate(tiny_tree, 8, 1, 3) == tiny_tree  # cached: not generated again


@needs_espeak
def test_split_by_voice_never_shares_a_speaker(tiny_tree):
    from workbench.data import spoken_labels

    recorded = get_task("speech").load_data(make_config(task="speech", dataset=f"folder:{tiny_tree}"))
    config = make_config(task="speech", dataset=f"folder:{tiny_tree}", synthetic_voices=2)
    data = get_task("speech").load_data(config)
    groups = data.extras["speakers"]
    assert not set(groups["train"]) & set(groups["test"])
    assert not set(groups["train"]) & set(groups["validation"])
    assert len(data.class_names) == 12 and "_background_noise_" not in data.class_names
    assert data.x_train.shape[1:] == (16_000,)
    assert len(data.extras["noises"]) == 4  # used for augmentation
    # synthesized voices say the 10 keywords (not _unknown_ or _silence_), in training only
    added = len(data.x_train) - len(recorded.x_train)
    assert added == 2 * 10 * spoken_labels.TAKES
    assert len(data.x_val) == len(recorded.x_val) and len(data.x_test) == len(recorded.x_test)
    assert (data.x_val == recorded.x_val).all() and (data.x_test == recorded.x_test).all()
    extra_labels = data.y_train[len(recorded.x_train):]
    assert sorted({data.class_names[i] for i in extra_labels}) == sorted(speech_synthesis.KEYWORDS)
    assert np.bincount(extra_labels, minlength=12).max() == 2 * spoken_labels.TAKES
    assert sum(s.startswith("synthetic-") for s in groups["train"]) == 2
    assert not any(s.startswith("synthetic-") for s in groups["validation"] + groups["test"])
    note = next(n for n in data.notes if "synthesized voices" in n)
    assert "40 clips of 2 synthesized voices" in note and "not spoken: _silence_, _unknown_" in note
    # peak-normalized and centred like the recordings
    extra = data.x_train[len(recorded.x_train):]
    assert np.allclose(np.abs(extra).max(axis=1), speech.PEAK, atol=1e-3)


def test_synthetic_voices_for_an_all_synthesized_dataset_is_a_config_error():
    from workbench.config import ConfigError

    with pytest.raises(ConfigError, match="'synthetic_voices'.*spoken-commands"):
        make_config(task="speech", synthetic_voices=3)
    assert make_config(task="speech", dataset="voices", synthetic_voices=3).synthetic_voices == 3


def test_class_names_are_read_as_the_words_a_synthesizer_says():
    from workbench.data.spoken_labels import spoken_text

    assert spoken_text("TakeCover") == "Take Cover"
    assert spoken_text("take_cover") == spoken_text("take-cover") == "take cover"
    assert spoken_text("yes") == "yes" and spoken_text("7") == "7"
    assert spoken_text("_unknown_") is None and spoken_text("_silence_") is None


def test_folder_loader_resamples_and_skips_bad_files(tmp_path):
    t = np.arange(8000) / 8000
    _wav(tmp_path / "yes" / "a_nohash_0.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 8000)       # 8 kHz, 1 s
    _wav(tmp_path / "yes" / "b_nohash_0.wav", 0.5 * np.sin(2 * np.pi * 440 * t[:4000]), 16000)  # short
    _wav(tmp_path / "no" / "c_nohash_0.wav", np.tile(0.3 * np.sin(2 * np.pi * 220 * t), (2, 1)).T.ravel(),
         16000, channels=2)
    (tmp_path / "no" / "notes_nohash_0.wav").write_text("this is not audio")
    good = io.BytesIO()
    speech_synthesis.write_wav(good, np.ones(16000, np.float32) * 0.1)
    (tmp_path / "no" / "cut_nohash_0.wav").write_bytes(good.getvalue()[:2000])  # truncated
    _wav(tmp_path / "_background_noise_" / "hum.wav", 0.1 * np.ones(32000), 16000)
    with pytest.warns(UserWarning) as caught:
        source = speech.load_speech_folder(str(tmp_path))
    messages = " ".join(str(w.message) for w in caught)
    assert "notes_nohash_0.wav" in messages and "cut_nohash_0.wav" in messages
    assert source.class_names == ["no", "yes"]
    assert source.waves.shape == (3, 16_000)
    resampled = source.waves[source.speakers.tolist().index("a")]
    assert np.abs(resampled).max() > 0.4 and np.abs(resampled[-100:]).max() > 0.1  # 1 s of 8 kHz -> 16,000
    assert len(source.noises) == 1
    assert any("skipped 2" in n for n in source.notes)


def test_class_folder_without_wavs_is_an_error(tmp_path):
    _wav(tmp_path / "yes" / "a_nohash_0.wav", np.zeros(100), 16000)
    (tmp_path / "no").mkdir()
    with pytest.raises(DataError, match="no has no audio files"):
        speech.load_speech_folder(str(tmp_path))


def test_augmentation_shifts_without_wrapping():
    import tensorflow as tf

    from workbench.data.splits import Splits

    wave_in = np.zeros(16_000, np.float32)
    wave_in[:100] = 1.0  # a click at the very start
    data = Splits(*(np.zeros((1, 16_000), np.float32), np.zeros(1, np.int64)) * 3, class_names=["a", "b"],
                  name="t", source="t", extras={"noises": []})
    augment = get_task("speech").train_augmentation(data, make_config(task="speech"))
    tf.random.set_seed(0)
    seen = 0
    for _ in range(20):
        out, _ = augment(tf.constant(wave_in), tf.constant(0))
        out = out.numpy()
        # noise comes at a random SNR and speed or shift may push the click out; it never wraps around
        click = np.abs(out) > 0.3
        assert not (click[:1000].any() and click[-1000:].any())
        seen += click[:1000].any()
    assert seen  # the click stays in at least some of the time


def test_augmentation_perturbs_speed_and_adds_noise_at_a_bounded_snr():
    import tensorflow as tf

    from workbench.data.splits import Splits

    t = np.arange(16_000) / 16_000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t) * (np.abs(t - 0.5) < 0.15)).astype(np.float32)  # centred 0.3 s
    data = Splits(*(np.zeros((1, 16_000), np.float32), np.zeros(1, np.int64)) * 3, class_names=["a", "b"],
                  name="t", source="t", extras={"noises": []})
    augment = get_task("speech").train_augmentation(data, make_config(task="speech"))
    tf.random.set_seed(1)
    peaks, snrs = [], []
    for _ in range(30):
        out = augment(tf.constant(tone), tf.constant(0))[0].numpy()
        spectrum = np.abs(np.fft.rfft(out))
        peaks.append(np.argmax(spectrum))  # bin k = k Hz for a 1 s clip
        # after speed and shift the tone still covers the middle 60 ms and never reaches 0.3 s out
        signal, residual = out[np.abs(t - 0.5) < 0.03], out[np.abs(t - 0.5) >= 0.3]
        if np.abs(residual).max() > 0:
            snrs.append(10 * np.log10(np.mean(signal ** 2) / np.mean(residual ** 2)))
    assert min(peaks) < 950 and max(peaks) > 1050 and 830 <= min(peaks) and max(peaks) <= 1170  # speed 0.85-1.15
    assert snrs and 0 < min(snrs) and max(snrs) < 45  # noise was added, below the speech


@needs_espeak
@pytest.mark.parametrize("model_name", ["cnn", "ds-cnn", "crnn"])
def test_every_speech_model_trains_on_raw_waveforms(model_name, tiny_tree, tmp_path):
    from workbench.training import compile_model, fit, predict

    config = make_config(task="speech", dataset=f"folder:{tiny_tree}", model=model_name, epochs=1,
                         batch_size=16)
    task = get_task("speech")
    data = task.load_data(config)
    model = task.build_model(config, data)
    compile_model(model, config, task, data)
    history = fit(model, config, task, data, tmp_path / "backup", verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert predict(model, data.x_test[:3]).shape == (3, 12)


def test_spec_augment_masks_contiguous_blocks_only_in_training():
    import keras

    from workbench.models.audio import log_mel_front_end, spec_augment

    inputs = keras.Input(shape=(16_000,))
    model = keras.Model(inputs, spec_augment(log_mel_front_end(inputs)))
    x = np.random.default_rng(0).normal(0, 0.1, (8, 16_000)).astype(np.float32)
    assert (model(x, training=False).numpy() != 0).all()
    masked = model(x, training=True).numpy()[..., 0] == 0
    frames = masked.all(axis=2)  # (clips, frames) fully blanked
    assert frames.any()
    for row in frames:  # blanked frames come in runs of 10 (or the clip's last, shorter run)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        assert all(end - start >= 10 or end == row.size for start, end in zip(edges[::2], edges[1::2]))
