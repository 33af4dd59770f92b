"""Runs that go wrong end FAILED with a reason, never RUNNING, and say so with a non-zero exit."""

import json

import pytest

from conftest import all_runs, artifact_paths, client, run_cli

pytestmark = pytest.mark.slow


def test_bad_dataset_on_the_notebook_path_exits_2_without_a_run(home, image_folder):
    (image_folder / "dark" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    result = run_cli("train", "--dataset", f"folder:{image_folder}", "--epochs", "1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "broken.png" in result.stderr and "the executed notebook" in result.stderr
    assert "Traceback" not in result.stderr.split("workbench train:")[-1]
    assert all_runs(home) == []


def test_a_cell_failing_after_the_run_exists_fails_it_and_attaches_the_notebook(home):
    result = run_cli("train", "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--optimizer", "sgd",
                     "--learning-rate", "1e12")
    assert result.returncode == 1
    (run,) = all_runs(home)
    assert run.info.status == "FAILED"
    assert "training diverged" in run.data.tags["error"]
    run_id = run.info.run_id
    assert {f"notebook/train-{run_id}.ipynb", f"notebook/train-{run_id}.html"} <= artifact_paths(home, run_id)
    local = client(home).download_artifacts(run_id, f"notebook/train-{run_id}.ipynb", str(home / "dl"))
    errors = [o for c in json.loads(open(local).read())["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "TrainingDiverged"


def test_validation_split_leaving_too_few_examples_exits_2_without_a_run(home):
    result = run_cli("train", "--in-process", "--dataset", "digits", "--model", "mlp", "--validation-split", "0.999")
    assert result.returncode == 2
    assert "invalid value for 'validation_split'" in result.stderr and "Traceback" not in result.stderr
    assert all_runs(home) == []


@pytest.mark.parametrize("prepare, message", [
    (lambda root: (root / "dark" / "broken.png").write_bytes(b"garbage"), "cannot read image"),
    (lambda root: [p.unlink() for p in (root / "bright").iterdir()], "has no images"),
    (lambda root: [p.unlink() for p in (root / "bright").iterdir()] and (root / "bright").rmdir(),
     "need at least 2"),
])
def test_bad_folder_dataset_in_process_exits_2_without_a_run(home, image_folder, prepare, message):
    prepare(image_folder)
    result = run_cli("train", "--in-process", "--dataset", f"folder:{image_folder}", "--epochs", "1")
    assert result.returncode == 2
    assert message in result.stderr and str(image_folder) in result.stderr
    assert "Traceback" not in result.stderr
    assert all_runs(home) == []


def test_diverging_loss_ends_the_run_failed_with_the_reason(home):
    import workbench
    from workbench.training import TrainingDiverged

    with pytest.raises(TrainingDiverged):
        workbench.train("images", dataset="digits", model="mlp", epochs=2, optimizer="sgd",
                        learning_rate=1e12, verbose=0)
    (run,) = all_runs(home)
    assert run.info.status == "FAILED"
    assert "training diverged" in run.data.tags["error"]
