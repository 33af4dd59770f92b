"""Damaged state files are named, kept aside and reported; never silently reset or deleted."""

from __future__ import annotations

import sqlite3

from conftest import run_cli


def test_damaged_pipeline_state_is_kept_aside_and_reported(home, capsys):
    from workbench.pipelines.state import StepState

    state = StepState()
    state.put("p", "s", {"digest": "abc"})
    state.path.write_text('{"p": {"s": {"digest": ')  # torn by a crash
    assert state.get("p", "s") is None
    err = capsys.readouterr().err
    assert f"pipeline state {state.path} is damaged" in err and "every step runs again" in err
    (kept,) = state.path.parent.glob("state.json.corrupt-*")
    assert kept.read_text() == '{"p": {"s": {"digest": '
    state.put("p", "s", {"digest": "def"})  # and the state works again
    assert state.get("p", "s") == {"digest": "def"}


def test_a_damaged_scheduler_database_is_one_error_naming_it(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "scheduler.db").write_bytes(b"this is not an sqlite database" * 100)
    listed = run_cli("schedule", "list")
    assert listed.returncode == 2, listed.stderr
    assert f"the scheduler database {home / 'scheduler.db'} is damaged" in listed.stderr
    assert "Traceback" not in listed.stderr
    assert list(home.glob("scheduler.db.corrupt-*"))
    assert run_cli("schedule", "list").returncode == 0  # a new database from here on


def test_an_unreadable_schedule_is_named_and_never_deleted_by_list(home, tmp_path):
    pipeline = tmp_path / "night.yaml"
    pipeline.write_text("name: night\nschedule: '0 3 * * *'\nsteps:\n  only:\n"
                        "    notebook: tests/fixtures/pipelines/emit.ipynb\n")
    assert run_cli("schedule", "add", str(pipeline)).returncode == 0
    with sqlite3.connect(home / "scheduler.db") as db:
        db.execute("UPDATE apscheduler_jobs SET job_state = ? WHERE id = 'night'", (b"garbage",))
    listed = run_cli("schedule", "list")
    assert "schedule 'night'" in listed.stderr and "cannot be read" in listed.stderr
    with sqlite3.connect(home / "scheduler.db") as db:
        assert db.execute("SELECT count(*) FROM apscheduler_jobs").fetchone() == (1,)


def test_a_server_record_of_the_wrong_shape_names_the_file(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "server.json").write_text('["http://127.0.0.1:5000"]')
    result = run_cli("ui", "--port", "5999")
    assert result.returncode == 2 and str(home / "server.json") in result.stderr
    assert "workbench server --forget" in result.stderr and "Traceback" not in result.stderr


def test_a_damaged_tracking_store_names_its_file(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "mlflow.db").write_bytes(b"not a database at all" * 200)
    result = run_cli("ui", "--port", "5999")
    assert result.returncode == 2, result.stderr
    assert f"the tracking store {home / 'mlflow.db'} cannot be opened" in result.stderr
    assert "Traceback" not in result.stderr
