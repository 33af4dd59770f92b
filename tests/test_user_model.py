"""The user's own model function, from a file or a module: options, training, logging, bad references."""

from __future__ import annotations

import pytest
import yaml

import workbench
from conftest import ROOT, all_runs, artifact_paths, client, run_cli

MODELS = ROOT / "tests" / "fixtures" / "models"
SMALL = f"{MODELS / 'my_models.py'}:small_mlp"


def test_keyword_parameters_become_options_with_types_and_defaults():
    config = workbench.make_config(task="images", dataset="digits", model=SMALL, hidden_units="16")
    assert (config.hidden_units, config.depth) == (16, 1)
    assert {"hidden_units": 16, "depth": 1}.items() <= config.to_dict().items()
    with pytest.raises(workbench.ConfigError, match="'hidden_units'.*an integer"):
        workbench.make_config(task="images", model=SMALL, hidden_units="wide")
    with pytest.raises(workbench.ConfigError, match="'width_multiplier'.*small_mlp.*hidden_units, depth"):
        workbench.make_config(task="images", model=SMALL, width_multiplier=2)


def test_a_relative_file_reference_is_made_absolute_for_kernels_elsewhere(monkeypatch):
    monkeypatch.chdir(MODELS)
    config = workbench.make_config(task="images", model="my_models.py:small_mlp")
    assert config.model == SMALL


def test_a_module_reference_trains_and_its_source_is_logged(home, monkeypatch):
    monkeypatch.syspath_prepend(str(MODELS))
    result = workbench.train(task="images", dataset="digits", model="my_models:small_mlp", epochs=1,
                             hidden_units=8, depth=2, verbose=0)
    assert [layer.units for layer in result.model.layers if hasattr(layer, "units")] == [8, 8, 10]
    assert 0 <= result.metrics["test_accuracy"] <= 1 and "baseline_test_accuracy" in result.metrics
    run = client(home).get_run(result.run_id)
    assert (run.data.params["model"], run.data.params["hidden_units"]) == ("my_models:small_mlp", "8")
    assert "model_source/my_models.py" in artifact_paths(home, result.run_id)


@pytest.mark.parametrize("reference, message", [
    (f"{MODELS / 'missing.py'}:small_mlp", "an existing .py file"),
    (f"{MODELS / 'broken_import.py'}:model", "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'"),
    ("no_such_package.models:small_mlp", "ModuleNotFoundError"),
    (f"{MODELS / 'my_models.py'}:absent", "has no callable 'absent'"),
    (f"{MODELS / 'my_models.py'}:not_a_model", "returns a keras.Model; it returned str"),
    (f"{MODELS / 'my_models.py'}:wrong_output", "output is (batch, 10)"),
    (f"{MODELS / 'my_models.py'}:no_default", "parameter 'width' has none"),
    (f"{MODELS / 'my_models.py'}:list_option", "parameter 'widths' is list"),
])
def test_a_bad_reference_is_one_clear_error_and_no_run(home, reference, message):
    result = run_cli("train", "--in-process", "--dataset", "digits", "--epochs", "1", "--model", reference)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "invalid value for 'model'" in result.stderr and message in result.stderr
    assert reference.rpartition(":")[2] in result.stderr  # the reference is named
    assert "Traceback" not in result.stderr
    assert all_runs(home) == []


def test_a_gan_refuses_a_user_model():
    with pytest.raises(workbench.ConfigError, match="one of task 'gan''s own models"):
        workbench.make_config(task="gan", model=SMALL)


def test_tune_searches_a_user_models_own_option(home, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"hidden_units": {"type": "categorical", "choices": [4, 12]}}))
    result = run_cli("tune", "--dataset", "digits", "--model", SMALL, "--epochs", "1", "--trials", "2",
                     "--study", "own", "--search-space", str(space), "--depth", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = [r for r in all_runs(home) if r.data.tags.get("kind") != "study"]
    assert len(trials) == 2 and {r.data.params["hidden_units"] for r in trials} <= {"4", "12"}
    assert all(r.data.params["model"] == SMALL for r in trials)


@pytest.mark.slow
def test_the_own_model_notebook_trains_tunes_and_compares(home, tmp_path):
    from workbench.notebooks import execute

    error = execute(ROOT / "notebooks" / "own_model.ipynb", {"epochs": 1, "trials": 2}, tmp_path / "own.ipynb",
                    cell_timeout=600, echo=False)
    assert error is None, error
    runs = all_runs(home)
    models = [r.data.params.get("model", "") for r in runs if r.data.tags.get("kind") != "study"]
    assert sum(m.endswith("my_models.py:small_cnn") for m in models) == 4  # own run, 2 trials, the best retrained
    assert models.count("cnn") == 1
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert {r.data.params["filters"] for r in trials} <= {"8", "16", "32"}
