"""RunConfig validation and the CLI's answer to bad input: one message, exit code 2, no run."""

import json

import pytest

from conftest import ROOT, all_runs, run_cli
from workbench.tasks.configure import make_config
from workbench.config import ConfigError, RunConfig


def test_defaults_are_completed_from_the_task():
    config = make_config(task="images")
    assert (config.dataset, config.model, config.loss) == ("fashion-mnist", "cnn", "sparse_categorical_crossentropy")
    assert config.experiment == "workbench-images"


def test_cli_strings_are_coerced():
    config = make_config(task="images", epochs="3", learning_rate="0.01", dropout="0.25", batch_size="32.0")
    assert (config.epochs, config.learning_rate, config.dropout, config.batch_size) == (3, 0.01, 0.25, 32)


@pytest.mark.parametrize("values, field, allowed", [
    ({"task": "poetry"}, "task", "images"),
    ({"model": "vgg99"}, "model", "mlp, cnn, resnet"),
    ({"dataset": "imagenet"}, "dataset", "fashion-mnist, mnist, digits, folder:PATH"),
    ({"epochs": -1}, "epochs", ">= 1"),
    ({"epochs": "three"}, "epochs", "an integer"),
    ({"epochs": 2.5}, "epochs", "an integer"),
    ({"epochs": True}, "epochs", "not a boolean"),
    ({"learning_rate": -1}, "learning_rate", "> 0"),
    ({"dropout": 1.0}, "dropout", "[0, 1)"),
    ({"optimizer": "adagrad"}, "optimizer", "adam, sgd, rmsprop"),
    ({"activation": "swish"}, "activation", "relu, sigmoid, tanh, gelu"),
    ({"loss": "hinge"}, "loss", "sparse_categorical_crossentropy"),
    ({"dataset": "digits", "loss": "binary_crossentropy"}, "loss", "only for 2-class datasets"),
    ({"epoch": 3}, "epoch", "a RunConfig field"),
    ({"learning_rate": "inf"}, "learning_rate", "a finite number"),
    ({"dropout": float("nan")}, "dropout", "a finite number"),
    ({"seed": 2**40}, "seed", "0..4294967295"),
    ({"experiment": "x" * 600}, "experiment", "at most 250 characters"),
])
def test_bad_values_name_field_value_and_what_is_allowed(values, field, allowed):
    with pytest.raises(ConfigError) as error:
        make_config(values)
    assert error.value.field == field
    message = str(error.value)
    assert f"'{field}'" in message and repr(values[field]) in message and allowed in message


@pytest.mark.parametrize("flags, field", [
    (["--task", "poetry"], "task"),
    (["--model", "vgg99"], "model"),
    (["--dataset", "imagenet"], "dataset"),
    (["--epochs", "-3"], "epochs"),
    (["--batch-size", "big"], "batch_size"),
    (["--dataset", "digits", "--loss", "binary_crossentropy"], "loss"),
    (["--learning-rate", "inf"], "learning_rate"),
    (["--seed", "1099511627776"], "seed"),
])
def test_cli_rejects_bad_config_before_any_run(home, flags, field):
    result = run_cli("train", *flags)
    assert result.returncode == 2, result.stderr
    assert f"invalid value for '{field}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert all_runs(home) == []


def test_notebook_parameters_match_runconfig():
    notebook = json.loads((ROOT / "notebooks" / "train.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    names = [line.split("=")[0].strip() for line in "".join(cell["source"]).splitlines() if "=" in line]
    assert names == RunConfig.field_names() + ["run_id"]


def test_every_field_and_option_reaches_the_config_on_the_notebook_path():
    """What the train notebook does with papermill's parameters: its parameters cell, the cell
    papermill injects (options included), then its config cell."""
    notebook = json.loads((ROOT / "notebooks" / "train.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    given = {"task": "driving", "model": "cnn-lstm", "epochs": 3, "dropout": 0.25, "seed": 7, "frame_stack": 3,
             "closed_loop_steps": -1, "tracks": 3, "steering_correction": 0.1, "jit_compile": True}
    namespace: dict = {}
    exec(cells[0], namespace)  # the parameters cell
    exec("\n".join(f"{k} = {v!r}" for k, v in given.items()), namespace)  # papermill's injected cell
    exec(cells[1].replace("%matplotlib inline", ""), namespace)
    assert {k: namespace["config"].to_dict()[k] for k in given} == given


def test_every_command_has_help():
    for command in ([], ["train"], ["ui"], ["lab"], ["demo"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0 and "usage: workbench" in result.stdout, command
    assert "--learning-rate" in run_cli("train", "--help").stdout


def test_servers_refuse_non_loopback_without_flag(home):
    for command in ("ui", "lab"):
        result = run_cli(command, "--host", "0.0.0.0")
        assert result.returncode == 2
        assert "--allow-remote" in result.stderr and "loopback" in result.stderr
