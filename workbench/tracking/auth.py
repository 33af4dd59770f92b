"""The users of MLflow's basic-auth app (`workbench server --auth`), kept in a SQLite file in the home."""

from __future__ import annotations

from pathlib import Path


def has_other_password(database: Path, user: str, password: str) -> bool:
    """Whether the user exists in the auth database with a password other than `password`."""
    # Imported here: it needs MLflow's auth extra, which the server checks for first.
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(f"sqlite:///{database}")
    try:
        return store.has_user(user) and not store.authenticate_user(user, password)
    finally:
        store.engine.dispose()
