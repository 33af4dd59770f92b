"""Options declared by tasks and models: checked like fields, and every entry point derives from them."""

import pytest
import yaml

from conftest import ROOT, run_cli
from workbench.config import Option, RunConfig
from workbench.errors import ConfigError
from workbench.tasks import get_task, task_names
from workbench.tasks.configure import accepted_names, declared_options, make_config


def test_an_option_checks_type_and_range_and_says_what_is_allowed():
    width = Option("width", int, 4, "units", minimum=2, maximum=8)
    assert width.check("6") == 6
    with pytest.raises(ConfigError, match=r"'width': 9 \(allowed: an integer in \[2, 8\]\)"):
        width.check(9)
    with pytest.raises(ConfigError, match="'width': 'wide' .*an integer"):
        width.check("wide")
    assert Option("mode", str, "a", choices=("a", "b")).describe_allowed() == "a, b"
    with pytest.raises(ConfigError, match="option of type int, float, str or bool"):
        Option("widths", list, [])


def test_each_task_declares_its_options_and_a_config_holds_exactly_those():
    assert [o.name for o in declared_options("images")] == ["image_size", "augment"]
    assert [o.name for o in declared_options("text", "minilm")][-1] == "frozen_layers"
    assert "frozen_layers" not in [o.name for o in declared_options("text", "lstm")]
    for name in task_names():
        config = make_config(task=name)
        assert set(config.to_dict()) == set(accepted_names(name, config.model))
        assert config.options == {o.name: o.default for o in get_task(name).options_for(config.model)}


def test_an_option_of_another_task_is_refused_naming_what_this_one_takes():
    with pytest.raises(ConfigError) as error:
        make_config(task="images", latent_dim=8)
    assert "'latent_dim'" in str(error.value) and "option of task 'images'" in str(error.value)
    assert "image_size, augment" in str(error.value)


def test_replace_checks_options_again():
    config = make_config(task="driving", model="cnn-lstm", frame_stack=3)
    assert config.replace(frame_stack=5).frame_stack == 5 and config.frame_stack == 3
    with pytest.raises(ConfigError, match="'frame_stack': 1"):
        config.replace(frame_stack=1)
    with pytest.raises(AttributeError, match="no field or option 'latent_dim'"):
        config.latent_dim  # noqa: B018


def test_mlproject_parameters_are_fields_of_every_run():
    parameters = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]["train"]["parameters"]
    assert set(parameters) <= set(RunConfig.field_names())


def test_the_command_line_offers_every_declared_option(home):
    help_text = run_cli("train", "--help").stdout
    for flag in ("--frame-stack", "--latent-dim", "--embeddings", "--frozen-layers", "--hidden-units"):
        assert flag in help_text, flag
    assert "text/minilm" in help_text  # whose option it is
    result = run_cli("train", "--task", "images", "--latent-dim", "8")
    assert result.returncode == 2 and "invalid value for 'latent_dim'" in result.stderr
