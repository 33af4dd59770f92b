"""Search spaces: YAML checked against the run's fields and options before any trial starts."""

import pytest

from workbench.tasks.configure import make_config
from workbench.tuning.space import SearchSpaceError, load_space

QUICK = {"task": "images", "dataset": "digits", "model": "mlp", "epochs": 4}


@pytest.mark.parametrize("yaml_text, message", [
    ("learning_rate: {type: float, low: 0.1, high: 0.01}", "needs numbers low < high"),
    ("learning_rate: {type: float, low: 0, high: 0.1, log: true}", "log scale needs low > 0"),
    ("optimizer: {type: categorical, choices: [adam, adagrad]}", "'adagrad' is not allowed"),
    ("widht: {type: int, low: 1, high: 4}", "'widht' is not a tunable field or option of images/mlp"),
    ("dropout: {type: uniform, low: 0, high: 0.5}", "needs type: one of float, int, categorical"),
    ("dropout: {type: float, low: 0, high: 0.5, scale: 2}", "unknown keys ['scale']"),
    ("- just\n- a list", "expected a mapping"),
    ("dropout: {type: float, low: 0, high: [", "not valid YAML"),
])
def test_invalid_search_space_yaml_is_a_clear_error(tmp_path, yaml_text, message):
    path = tmp_path / "space.yaml"
    path.write_text(yaml_text)
    base = make_config(QUICK)
    with pytest.raises(SearchSpaceError) as error:
        load_space(path, {}, base)
    assert message in str(error.value) and str(path) in str(error.value)


def test_a_tasks_own_option_is_tunable_and_checked(tmp_path):
    base = make_config(task="driving", model="cnn-lstm")
    space = load_space(None, {"frame_stack": {"type": "int", "low": 2, "high": 6}}, base)
    assert space["frame_stack"]["high"] == 6
    with pytest.raises(SearchSpaceError, match="'frame_stack': 1 is not allowed .*an integer >= 2"):
        load_space(None, {"frame_stack": {"type": "int", "low": 1, "high": 6}}, base)
    with pytest.raises(SearchSpaceError, match="'frame_stack' is not a tunable field or option of images/cnn"):
        load_space(None, {"frame_stack": {"type": "int", "low": 2, "high": 6}}, make_config(task="images"))


def test_a_torn_last_journal_record_is_cut_and_kept_aside(tmp_path, capsys):
    import optuna
    import pytest

    from workbench.errors import DataError
    from workbench.tuning.storage import open_storage

    journal = tmp_path / "journal.log"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code": 5, "worker_id": "w", "trial')  # a crash mid-append

    study = optuna.load_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    assert "last record was cut short" in capsys.readouterr().err
    assert journal.read_bytes() == whole and len(study.trials) == 2
    (kept,) = tmp_path.glob("journal.log.corrupt-*")
    assert kept.read_bytes().startswith(whole) and len(kept.read_bytes()) > len(whole)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # appends on a whole line again
    assert len(optuna.load_study(study_name="s", storage=open_storage(f"journal:{journal}")).trials) == 3

    journal.write_bytes(b"not json\n" + whole)  # damage before the end: refused, naming the file
    with pytest.raises(DataError, match=r"journal.log: line 1 is not a complete record"):
        open_storage(f"journal:{journal}")
