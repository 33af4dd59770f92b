"""Speech from real recordings: formats and rates, centring, silence, the hedgewars voice packs,
and the per-speaker accuracy every speech run reports. Clips are written here in the real
formats (Ogg Vorbis, FLAC, 8 kHz WAV) by libsndfile, a few KB each."""

import numpy as np
import pytest
import soundfile

from conftest import client
from workbench.data import speech, voices
from workbench.data.splits import DataError

RATE = 16_000


def word(rate: int, seconds: float, at: float, length: float = 0.25, channels: int = 1) -> np.ndarray:
    """A 'word' (a 300 Hz tone with a decaying envelope) starting at `at` s in a quiet recording."""
    t = np.arange(int(rate * seconds)) / rate
    inside = (t >= at) & (t < at + length)
    x = 0.02 * np.random.default_rng(0).normal(0, 0.01, t.size)
    x += inside * 0.3 * np.sin(2 * np.pi * 300 * t) * np.exp(-3 * np.clip(t - at, 0, None))
    return np.tile(x[:, None], (1, channels)).astype(np.float32) if channels > 1 else x.astype(np.float32)


def centre_of_energy(clip: np.ndarray) -> float:
    energy = clip ** 2
    return float((np.arange(clip.size) * energy).sum() / energy.sum()) / RATE


def test_short_8khz_wav_ogg_flac_and_stereo_load_as_centred_one_second_16khz_clips(tmp_path):
    files = {
        "a_nohash_0.wav": (word(8000, 0.6, 0.05), 8000, "PCM_16"),                 # 8 kHz, 0.6 s, early word
        "b_nohash_0.ogg": (word(44100, 0.5, 0.2), 44100, "VORBIS"),               # Ogg Vorbis, late word
        "c_nohash_0.flac": (word(22050, 2.0, 1.4), 22050, "PCM_16"),              # FLAC, longer than 1 s
        "d_nohash_0.wav": (word(48000, 0.4, 0.1, channels=2), 48000, "PCM_16"),   # stereo
    }
    for name, (samples, rate, subtype) in files.items():
        (tmp_path / "go").mkdir(exist_ok=True)
        soundfile.write(tmp_path / "go" / name, samples, rate, subtype=subtype)
    (tmp_path / "stop").mkdir()
    soundfile.write(tmp_path / "stop" / "a_nohash_1.wav", word(16000, 1.0, 0.5), 16000)
    assert (tmp_path / "go" / "b_nohash_0.ogg").stat().st_size < 10_000

    source = speech.load_speech_folder(str(tmp_path))
    assert source.waves.shape == (5, RATE) and source.waves.dtype == np.float32
    assert source.sample_rate == 8000  # the lowest native rate, for the front end's top band
    for clip, speaker in zip(source.waves, source.speakers):
        # the 0.25 s word (its energy mostly in its first ~0.15 s) sits near the middle of the second
        assert 0.35 < centre_of_energy(clip) < 0.65, speaker
        assert np.abs(clip).max() == pytest.approx(speech.PEAK, rel=1e-3)  # peak-normalized
    # 300 Hz survives resampling from every rate
    spectrum = np.abs(np.fft.rfft(source.waves[source.speakers.tolist().index("b")]))
    assert abs(int(np.argmax(spectrum)) - 300) <= 3


def test_undecodable_file_is_skipped_and_named_in_the_notes(tmp_path):
    for folder in ("yes", "no"):
        (tmp_path / folder).mkdir()
        soundfile.write(tmp_path / folder / "a_nohash_0.flac", word(16000, 1.0, 0.3), 16000)
    (tmp_path / "no" / "broken_nohash_0.ogg").write_bytes(b"OggS" + bytes(200))
    with pytest.warns(UserWarning, match="broken_nohash_0.ogg"):
        source = speech.load_speech_folder(str(tmp_path))
    assert len(source.waves) == 2
    assert any("broken_nohash_0.ogg" in note for note in source.notes)


def test_a_dataset_of_silent_clips_is_an_error_naming_the_folder(tmp_path):
    for folder in ("yes", "no"):
        (tmp_path / folder).mkdir()
        soundfile.write(tmp_path / folder / "a_nohash_0.wav", np.zeros(8000, np.float32), 8000)
    with pytest.raises(DataError, match=f"{tmp_path}.*silent"):
        speech.load_speech_folder(str(tmp_path))


def test_voices_holds_out_whole_english_human_packs_with_every_phrase():
    source = voices.load_voices(seed=7)
    split_of_pack = {}
    for pack, split in zip(source.speakers, source.split):
        split_of_pack.setdefault(pack, set()).add(split)
    assert all(len(s) == 1 for s in split_of_pack.values())  # no pack in two splits
    held = {p for p, s in split_of_pack.items() if s != {"train"}}
    assert len(held) == voices.VALIDATION_PACKS + voices.TEST_PACKS
    assert not held & set(voices.PROCESSED + voices.OTHER_LANGUAGES)
    for split in ("train", "validation", "test"):
        assert set(source.labels[source.split == split]) == set(range(len(source.class_names)))
    assert {"Hello", "Incoming", "Oops", "Ow"} <= set(source.class_names) and "Ow1" not in source.class_names
    assert voices.held_out(sorted(split_of_pack), 7) == voices.held_out(sorted(split_of_pack), 7)
    assert voices.held_out(sorted(split_of_pack), 7) != voices.held_out(sorted(split_of_pack), 8)


def test_missing_voice_packs_name_the_package(tmp_path):
    with pytest.raises(DataError, match="apt-get install hedgewars-data"):
        voices.load_voices(seed=0, root=tmp_path / "nowhere")


def test_a_speech_run_reports_accuracy_per_held_out_speaker(home, tmp_path):
    import mlflow

    import workbench

    tree = tmp_path / "tree"
    rng = np.random.default_rng(0)
    for s, speaker in enumerate(("ann", "bob", "cem", "dee")):
        for c, (folder, pitch) in enumerate((("low", 200), ("high", 900))):
            for k in range(3):
                (tree / folder).mkdir(parents=True, exist_ok=True)
                t = np.arange(int(8000 * rng.uniform(0.3, 0.8))) / 8000
                tone = 0.3 * np.sin(2 * np.pi * pitch * (1 + 0.05 * s) * t)
                soundfile.write(tree / folder / f"{speaker}_nohash_{k}.wav", tone, 8000)
    (tree / "validation_list.txt").write_text("low/cem_nohash_0.wav\nhigh/cem_nohash_0.wav\n"
                                              "low/cem_nohash_1.wav\nhigh/cem_nohash_1.wav\n")
    (tree / "testing_list.txt").write_text("".join(f"{f}/{p}_nohash_{k}.wav\n" for f in ("low", "high")
                                                   for p in ("dee", "bob") for k in range(3)))
    result = workbench.train(task="speech", dataset=f"folder:{tree}", model="ds-cnn", epochs=1, batch_size=8,
                             verbose=0)
    table = result.tables["per_speaker_accuracy"]
    assert table["speaker"] == ["bob", "dee"] and table["clips"] == [6, 6]
    assert all(0 <= a <= 1 for a in table["accuracy"])
    artifacts = {f.path for f in client(home).list_artifacts(result.run_id, "figures")}
    assert "figures/per_speaker_accuracy.png" in artifacts

    # the logged model (contiguous SpecAugment masks included) reloads without workbench code
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    run = mlflow.get_run(result.run_id)
    model = mlflow.keras.load_model(f"models:/{run.outputs.model_outputs[0].model_id}")
    assert model.predict(np.zeros((2, RATE), np.float32), verbose=0).shape == (2, 2)
