"""Bad input through the real commands: one clear error naming the field or file and what is allowed,
exit code 2, and no MLflow run. Nothing here trains: every case fails before training starts (the
notebook-path cases start a kernel, so they are marked slow)."""

import pytest

from conftest import all_runs, run_cli
from workbench.config import MAX_SEED

DIGITS_MLP = ["--dataset", "digits", "--model", "mlp", "--epochs", "1"]


def _refused(result, *wanted: str, kernel: bool = False) -> None:
    """Exit 2 with one last line holding `wanted`; no traceback (a kernel's own output aside)."""
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    for text in wanted:
        assert text in last, last
    assert "Traceback" not in (last if kernel else result.stderr)


@pytest.mark.slow
def test_a_missing_folder_on_the_notebook_path_exits_2_without_a_run(home):
    result = run_cli("train", "--task", "images", "--dataset", "folder:/nonexistent", "--epochs", "1")
    _refused(result, "/nonexistent", "is not a directory", kernel=True)
    assert all_runs(home) == []


@pytest.mark.slow
def test_a_validation_split_leaving_too_few_examples_on_the_notebook_path_exits_2_without_a_run(home):
    result = run_cli("train", *DIGITS_MLP, "--validation-split", "0.999")
    _refused(result, "invalid value for 'validation_split'", "one per class", kernel=True)
    assert all_runs(home) == []


@pytest.mark.parametrize("command", [
    ["train", *DIGITS_MLP, "--experiment", "x" * 600],
    ["tune", *DIGITS_MLP, "--trials", "1", "--study", "s" * 600],
    ["tune", *DIGITS_MLP, "--trials", "1", "--study", "it's"],
], ids=["experiment", "study", "study-quote"])
def test_names_past_mlflow_limits_are_refused_naming_the_field(home, command):
    field = "experiment" if "--experiment" in command else "study"
    _refused(run_cli(*command), f"invalid value for '{field}'", "a printable name")
    assert all_runs(home) == []


@pytest.mark.parametrize("document, field", [
    ("name: {}\nsteps:\n  now:\n    notebook: tests/fixtures/pipelines/emit.ipynb\n".format("p" * 600), "name: 'ppp"),
    ("name: long\nexperiment: {}\nsteps:\n  now:\n    notebook: tests/fixtures/pipelines/emit.ipynb\n"
     .format("e" * 600), "experiment: 'eee"),
    ("name: long\nsteps:\n  {}:\n    notebook: tests/fixtures/pipelines/emit.ipynb\n".format("s" * 600), "steps.'sss"),
], ids=["name", "experiment", "step"])
def test_pipeline_names_past_mlflow_limits_are_refused_at_validation(home, tmp_path, document, field):
    pipeline = tmp_path / "long.yaml"
    pipeline.write_text(document)
    for action in ("validate", "run"):
        result = run_cli("pipeline", action, str(pipeline))
        _refused(result, str(pipeline.name), field, "at most")
        assert len(result.stderr) < 1000  # the 600 characters are not echoed back whole
    assert all_runs(home) == []


@pytest.mark.parametrize("task", ["text", "generate"])
def test_a_csv_that_is_not_utf8_exits_2_naming_the_file_and_the_byte(home, tmp_path, task):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\u00e9 au lait,food\n".encode("latin-1"))
    result = run_cli("train", "--in-process", "--task", task, "--dataset", f"csv:{path}", "--epochs", "1")
    _refused(result, str(path), "is not UTF-8 text: byte 14", "save it as UTF-8")
    assert all_runs(home) == []


@pytest.mark.parametrize("command", [
    ["train", "--in-process", *DIGITS_MLP],
    ["train", *DIGITS_MLP],
    ["tune", *DIGITS_MLP, "--trials", "1"],
], ids=["train-in-process", "train-notebook", "tune"])
def test_seeds_running_past_the_largest_seed_are_refused(home, command):
    result = run_cli(*command, "--seeds", "3", "--seed", str(MAX_SEED))
    _refused(result, "invalid value for 'seeds'", f"at most 1 with seed {MAX_SEED}")
    assert all_runs(home) == []


def test_the_tuning_sampler_seed_wraps_around_within_numpy_range():
    import numpy as np

    from workbench.tuning.workers import sampler_seed

    seed = sampler_seed(MAX_SEED, 3, 1_000_000)
    assert 0 <= seed <= MAX_SEED
    np.random.RandomState(seed)  # what Optuna's samplers seed: no "Seed must be between 0 and 2**32 - 1"
    assert sampler_seed(42, 1, 2) == 42 + 1 + 2000  # below the top nothing moves


def test_a_pipeline_file_over_one_megabyte_is_refused_at_validation(home, tmp_path):
    pipeline = tmp_path / "huge.yaml"
    pipeline.write_text("name: huge\nsteps:\n  a:\n    notebook: train.ipynb\n" + "# padding\n" * 110_000)
    _refused(run_cli("pipeline", "validate", str(pipeline)), "huge.yaml", "a pipeline file is at most 1000000")
    assert all_runs(home) == []
