"""A new home's SQLite store is copied from an empty store made once, instead of migrated anew."""

from mlflow.tracking import MlflowClient

from workbench.tracking.store_template import seed_new_store, template_path


def test_a_new_store_is_the_empty_template_and_an_existing_store_is_left_alone(tmp_path):
    database = tmp_path / "home" / "mlflow.db"
    seed_new_store(f"sqlite:///{database}")
    assert database.read_bytes() == template_path().read_bytes()

    c = MlflowClient(f"sqlite:///{database}")
    assert [e.name for e in c.search_experiments()] == ["Default"]  # MLflow adds it on opening
    run = c.create_run("0")
    seed_new_store(f"sqlite:///{database}")
    assert c.get_run(run.info.run_id).info.run_id == run.info.run_id
    assert not list(database.parent.glob(".*.tmp"))


def test_only_a_named_sqlite_file_is_seeded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for uri in ("sqlite://", "sqlite:///:memory:", "postgresql://user@localhost/db", "file:///tmp/mlruns"):
        seed_new_store(uri)
    seed_new_store("sqlite:///relative.db?timeout=5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["relative.db"]
