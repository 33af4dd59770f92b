"""Speech task: the synthesized Speech Commands tree, the folder loader, speaker splits, models."""

import io
import wave

import numpy as np
import pytest

from workbench.config import RunConfig
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
    assert speech_synthesis.generate(tiny_tree, 8, 1, 3) == tiny_tree  # cached: not generated again


@needs_espeak
def test_split_by_voice_never_shares_a_speaker(tiny_tree):
    config = RunConfig.from_dict(task="speech", dataset=f"folder:{tiny_tree}")
    data = get_task("speech").load_data(config)
    groups = data.extras["speakers"]
    assert not set(groups["train"]) & set(groups["test"])
    assert not set(groups["train"]) & set(groups["validation"])
    assert len(data.class_names) == 12 and "_background_noise_" not in data.class_names
    assert data.x_train.shape[1:] == (16_000,)
    assert len(data.extras["noises"]) == 4  # used for augmentation


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
    with pytest.raises(DataError, match="no has no .wav files"):
        speech.load_speech_folder(str(tmp_path))


def test_augmentation_shifts_without_wrapping():
    import tensorflow as tf

    from workbench.data.splits import Splits

    wave_in = np.zeros(16_000, np.float32)
    wave_in[:100] = 1.0  # a click at the very start
    data = Splits(*(np.zeros((1, 16_000), np.float32), np.zeros(1, np.int64)) * 3, class_names=["a", "b"],
                  name="t", source="t", extras={"noises": []})
    augment = get_task("speech").train_augmentation(data, RunConfig.from_dict(task="speech"))
    tf.random.set_seed(0)
    for _ in range(20):
        out, _ = augment(tf.constant(wave_in), tf.constant(0))
        out = out.numpy()
        assert np.abs(out[-1000:]).max() == 0.0 or np.abs(out[:1000]).max() == 0.0  # never on both ends


@needs_espeak
@pytest.mark.parametrize("model_name", ["cnn", "ds-cnn", "crnn"])
def test_every_speech_model_trains_on_raw_waveforms(model_name, tiny_tree, tmp_path):
    from workbench.training import compile_model, fit, predict

    config = RunConfig.from_dict(task="speech", dataset=f"folder:{tiny_tree}", model=model_name, epochs=1,
                                 batch_size=16)
    task = get_task("speech")
    data = task.load_data(config)
    model = task.build_model(config, data)
    compile_model(model, config, task, data)
    history = fit(model, config, task, data, tmp_path / "backup", verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert predict(model, data.x_test[:3]).shape == (3, 12)
