"""The launcher of explore.ipynb: controls built from RunConfig, and real runs started and stopped through it."""

from __future__ import annotations

import dataclasses
import signal
import time

import ipywidgets as widgets
import psutil
import pytest

from conftest import all_runs, artifact_paths, client
from workbench.tasks.configure import make_config
from workbench.config import OPTIMIZERS, ConfigError, RunConfig
from workbench.lab.controls import OTHER_DATASET, control_for, field_option
from workbench.lab.launcher import Launcher
from workbench.lab.training_process import STOPPED_REASON, config_flags
from workbench.tasks import get_task, task_names


def test_every_runconfig_field_has_a_control_with_its_default_and_help(home):
    launcher = Launcher()
    for field in dataclasses.fields(RunConfig):
        if field.name not in RunConfig.field_names():
            continue  # `options` and `builder`: the options get controls of their own
        control = launcher.controls[field.name]
        assert control.description == field.name
        assert control.tooltip == field.metadata["help"]
    for option in get_task("images").options:  # the task's own options, with their help
        assert launcher.controls[option.name].tooltip == option.help
    assert launcher.config() == make_config({})  # untouched controls = the defaults
    assert launcher.controls["epochs"].value == 0 and launcher.controls["learning_rate"].value == 1e-3
    assert isinstance(launcher.controls["epochs"], widgets.IntSlider)
    assert isinstance(launcher.controls["learning_rate"], widgets.FloatLogSlider)
    assert isinstance(launcher.controls["jit_compile"], widgets.Checkbox)
    assert [value for _, value in launcher.controls["optimizer"].options] == list(OPTIMIZERS)
    assert [value for _, value in launcher.controls["task"].options] == task_names()
    assert all_runs(home) == []  # building the launcher creates nothing


def test_choosing_a_task_offers_its_datasets_models_and_losses():
    launcher = Launcher()
    with pytest.raises(ConfigError, match="'bow'"):  # the task is applied first, whatever the order
        launcher.set(model="mlp", task="text")
    text = get_task("text")
    options = lambda name: [value for _, value in launcher.controls[name].options]  # noqa: E731
    assert set(options("dataset")) == set(text.datasets) and options("dataset")[0] == text.default_dataset
    assert set(options("model")) == set(text.models)
    assert options("loss") == ["", *text.losses]
    assert launcher.controls["model"].value == text.default_model  # "mlp" is not a text model
    config = launcher.set(model="bow", epochs=2).config()
    assert (config.task, config.dataset, config.model, config.epochs) == ("text", "fortunes", "bow", 2)
    assert config_flags(config) == ["--task", "text", "--model", "bow", "--epochs", "2"]
    # a model's own defaults (minilm's learning rate and epochs, the transformer's dropout) need no flags
    assert config_flags(make_config(task="text", model="minilm")) == ["--task", "text", "--model", "minilm"]
    assert config_flags(make_config(task="text", dropout=0.1)) == ["--task", "text", "--dropout", "0.1"]
    # Options follow the task and model: the images options went, text's came, minilm's own with it.
    assert "augment" not in launcher.controls and "embeddings" in launcher.controls
    assert "frozen_layers" not in launcher.controls
    launcher.set(model="minilm", frozen_layers=2)
    assert launcher.config().frozen_layers == 2
    assert config_flags(launcher.config())[-2:] == ["--frozen-layers", "2"]


def test_the_launcher_lists_plugin_tasks_and_a_model_functions_options():
    from conftest import ROOT

    launcher = Launcher()
    assert "tabular" in [value for _, value in launcher.controls["task"].options]
    launcher.set(task="tabular")
    assert launcher.controls["hidden_units"].value == 64
    reference = f"{ROOT / 'tests' / 'fixtures' / 'models' / 'my_models.py'}:small_mlp"
    launcher.set(task="images", dataset="digits")
    launcher.controls["model"].options = [*launcher.controls["model"].options, (reference, reference)]
    launcher.set(model=reference, hidden_units=8)
    flags = config_flags(launcher.config())
    assert launcher.config().hidden_units == 8 and flags[flags.index("--hidden-units") + 1] == "8"


def test_a_new_config_field_gets_a_control_from_its_type_default_and_help():
    @dataclasses.dataclass(frozen=True)
    class Extended:
        warmup_epochs: int = dataclasses.field(default=3, metadata={"help": "epochs of linear warm-up"})
        label_smoothing: float = dataclasses.field(default=0.1, metadata={"help": "target smoothing"})
        note: str = dataclasses.field(default="", metadata={"help": "free text"})

    warmup, smoothing, note = (control_for(field_option(f)) for f in dataclasses.fields(Extended))
    assert isinstance(warmup, widgets.IntText) and warmup.value == 3 and warmup.tooltip == "epochs of linear warm-up"
    assert isinstance(smoothing, widgets.FloatText) and smoothing.value == 0.1
    assert isinstance(note, widgets.Text) and note.description == "note"


def test_a_bad_value_is_reported_by_field_and_starts_nothing(home):
    launcher = Launcher()
    launcher.set(**{OTHER_DATASET: "no-such-dataset"})
    with pytest.raises(ConfigError) as error:
        launcher.config()
    assert error.value.field == "dataset"
    launcher.start_button.click()  # what the Start button does: the message says why, nothing runs
    assert "invalid value for &#x27;dataset&#x27;" in launcher.message.value
    assert "folder:PATH" in launcher.message.value
    assert launcher.current is None and all_runs(home) == []
    with pytest.raises(ConfigError, match="a RunConfig field"):
        launcher.set(epoch=3)


def test_preview_shows_the_tasks_examples(home):
    launcher = Launcher().set(dataset="digits")
    items = launcher.preview()
    assert len(items) == 1 and items[0].data[:4] == b"\x89PNG"  # the image grid, as a PNG
    text, picture = launcher.preview_output.outputs  # on screen: the sizes, then the grid
    assert "'train': 1293" in text["text"] and "image/png" in picture["data"]
    launcher.set(**{OTHER_DATASET: "folder:/no/such/folder"}).preview()
    (error,) = launcher.preview_output.outputs
    assert error["text"].startswith("DataError: ") and "/no/such/folder" in error["text"]


@pytest.mark.slow
def test_start_trains_a_digits_run_in_the_background_to_finished(home):
    launcher = Launcher(poll_seconds=0.5).set(dataset="digits", model="mlp", epochs=1)
    process = launcher.start()
    assert process.command[-8:] == ["--task", "images", "--dataset", "digits", "--model", "mlp", "--epochs", "1"]
    assert launcher.stop_button.disabled is False and launcher.start_button.disabled is True
    assert launcher.wait(timeout=600) == "FINISHED", process.log_tail()
    assert process.process.returncode == 0
    (run,) = all_runs(home)
    assert run.info.run_id == process.run_id
    assert run.data.params["epochs"] == "1" and run.data.tags["model"] == "mlp"
    assert f"notebook/train-{process.run_id}.ipynb" in artifact_paths(home, process.run_id)  # via papermill
    assert (launcher.progress.value, launcher.progress.max) == (1, 1)
    assert launcher.curves_image.value[:4] == b"\x89PNG" and launcher.curves_image.layout.display is None
    assert "FINISHED" in launcher.message.value and process.run_id[:8] in launcher.message.value
    assert launcher.start_button.disabled is False and launcher.stop_button.disabled is True


@pytest.mark.slow
def test_stop_ends_the_run_killed_with_a_reason_and_leaves_no_process(home):
    # cnn: an epoch of about a second, so 100 of them outlast the stop even on a loaded machine (mlp ends in seconds)
    launcher = Launcher(poll_seconds=0.5).set(dataset="digits", model="cnn", epochs=100)
    # As when JupyterLab was started from a background shell: SIGINT ignored, and children inherit that.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = launcher.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 600
    while process.epochs_done() < 1:  # stop it while it trains, not while the kernel starts
        assert process.running and time.monotonic() < deadline, process.log_tail()
        time.sleep(0.5)
    family = [psutil.Process(process.process.pid), *psutil.Process(process.process.pid).children(recursive=True)]
    assert len(family) >= 2  # `workbench train` and its notebook kernel

    assert launcher.stop() == "KILLED"
    run = client(home).get_run(process.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["error"] == STOPPED_REASON
    # `workbench train` heard the interrupt (not killed after the grace): it attached the notebook
    assert f"notebook/train-{process.run_id}.ipynb" in artifact_paths(home, process.run_id)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family)
    assert process.process.returncode not in (None, -signal.SIGKILL)  # it ended by itself, within the grace
    assert 1 <= launcher.progress.value < 100 and "KILLED" in launcher.message.value
    assert launcher.start_button.disabled is False


@pytest.mark.parametrize("command", [["train"], ["tune", "--trials", "1", "--pruner", "none"]],
                         ids=["workbench-train", "tuning-trial"])
def test_the_launcher_follows_a_run_it_did_not_start(home, command):
    import subprocess
    import sys

    from conftest import ROOT

    client(home).search_experiments()  # the store exists before two processes use it
    process = subprocess.Popen([sys.executable, "-m", "workbench", *command, "--in-process", "--dataset", "digits",
                                "--model", "cnn", "--epochs", "4"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def training_runs():  # a study's parent run trains nothing: follow its trial
        return [r for r in all_runs(home) if r.data.tags.get("kind") != "study"]

    try:
        deadline = time.time() + 300
        while not training_runs():  # the run appears once its data is loaded and its model built
            assert process.poll() is None and time.time() < deadline, "the training run never appeared"
            time.sleep(0.5)
        [run] = training_runs()
        launcher = Launcher(poll_seconds=0.5)
        followed = launcher.follow(run.info.run_id)
        assert launcher.stop_button.disabled  # not started here: not stopped from here either
        assert launcher.wait(timeout=300) == "FINISHED"
    finally:
        process.wait(300)
    assert followed.config.model == "cnn" and launcher.progress.value == launcher.progress.max == 4
    assert "FINISHED" in launcher.message.value and launcher.curves_image.value  # the curves were drawn
    with pytest.raises(ConfigError, match="'run'"):
        launcher.follow("0123456789abcdef")
