"""`workbench rerun`: a finished run trained again from its record reproduces, and says what changed."""

import pytest

from conftest import all_runs, client, run_cli, use_home

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """One finished digits run of 3 epochs in a home this module's tests share (training it once
    per test cost a training each); each test reruns or forks it and looks only at the runs it made."""
    with pytest.MonkeyPatch.context() as patch:
        home = use_home(patch, tmp_path_factory.mktemp("reruns") / "home")
        first = run_cli("train", "--in-process", "--dataset", "digits", "--model", "mlp", "--epochs", "3")
        assert first.returncode == 0, first.stderr[-2000:]
        [run] = all_runs(home)
        yield home, run


def new_runs(home, before: set[str]) -> list:
    return [r for r in all_runs(home) if r.info.run_id not in before]


def test_a_rerun_reproduces_its_record_and_links_both_ways(origin):
    home, original = origin
    before = {r.info.run_id for r in all_runs(home)}
    result = run_cli("rerun", original.info.run_id, "--in-process")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "REPRODUCED: every test and baseline metric matches" in result.stdout
    assert "exact        test_accuracy" in result.stdout
    [again] = new_runs(home, before)
    assert again.data.tags["workbench.rerun_of"] == original.info.run_id
    assert client(home).get_run(original.info.run_id).data.tags["workbench.reruns"] == again.info.run_id
    assert again.data.metrics["test_accuracy"] == original.data.metrics["test_accuracy"]

    variant = run_cli("rerun", original.info.run_id, "--in-process", "--set", "epochs=4")
    assert variant.returncode == 0 and "set          epochs: 3 -> 4" in variant.stdout
    assert "a variant (--set)" in variant.stdout


def test_a_changed_data_file_is_named_by_its_digest(home, image_folder):
    first = run_cli("train", "--in-process", "--dataset", f"folder:{image_folder}", "--model", "mlp", "--epochs", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    [original] = all_runs(home)
    image = sorted((image_folder / "dark").iterdir())[0]
    from PIL import Image

    Image.new("RGB", (24, 24), (250, 250, 250)).save(image)  # one training picture changed on disk
    result = run_cli("rerun", original.info.run_id, "--in-process")
    assert result.returncode == 0, result.stderr[-2000:]
    data_lines = [line for line in result.stdout.splitlines() if line.strip().startswith("data ")]
    assert data_lines and "digest recorded" in data_lines[0]


def test_bad_reruns_are_clear_errors_and_train_nothing(origin):
    home, original = origin
    before = {r.info.run_id for r in all_runs(home)}
    result = run_cli("rerun", "0123456789abcdef")
    assert result.returncode == 2 and "invalid value for 'run'" in result.stderr
    for flags, field in ((["--set", "widht=3"], "widht"), (["--set", "epochs"], "set"), (["--tolerance", "-1"], "tolerance")):
        result = run_cli("rerun", original.info.run_id, "--in-process", *flags)
        assert result.returncode == 2 and f"invalid value for '{field}'" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    # A real run id, but of another home's store: named as not in this store, and nothing trained there.
    other = home.parent / "other-home"
    elsewhere = run_cli("rerun", original.info.run_id, "--in-process", env={"WORKBENCH_HOME": str(other)})
    assert elsewhere.returncode == 2 and "invalid value for 'run'" in elsewhere.stderr, elsewhere.stderr
    assert str(other) in elsewhere.stderr and "Traceback" not in elsewhere.stderr
    assert all_runs(other) == []
    assert new_runs(home, before) == []


def test_a_fork_starts_from_the_epoch_it_names_and_links_to_its_origin(origin):
    home, origin = origin
    before = {r.info.run_id for r in all_runs(home)}
    for bad in ("3", "7", "0"):  # the last epoch has nothing left to train; 7 and 0 were never saved
        refused = run_cli("rerun", origin.info.run_id, "--from-epoch", bad)
        assert refused.returncode == 2 and "invalid value for 'from_epoch'" in refused.stderr
        assert "1, 2" in refused.stderr
    assert new_runs(home, before) == []

    result = run_cli("rerun", origin.info.run_id, "--from-epoch", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    [fork] = new_runs(home, before)
    assert fork.data.tags["workbench.forked_from"] == origin.info.run_id
    assert fork.data.tags["workbench.forked_at_epoch"] == "1"
    assert client(home).get_run(origin.info.run_id).data.tags["workbench.forks"] == fork.info.run_id
    steps = sorted(m.step for m in client(home).get_metric_history(fork.info.run_id, "loss"))
    assert steps == [1, 2]  # epochs 2 and 3 (0-based steps), none before: it started at epoch 2
    assert fork.info.status == "FINISHED" and "test_accuracy" in fork.data.metrics
