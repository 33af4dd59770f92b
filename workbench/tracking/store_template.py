"""A new home's SQLite tracking store, copied from an empty one made once per MLflow version.

MLflow creates a store by running every schema migration since its first release, about a
second of CPU for each new home; copying a store that has run them takes milliseconds. The copy
holds the tables only: MLflow adds the Default experiment, with this home's artifact folder, when
it first opens the copy.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from workbench.procs import file_lock


def template_path() -> Path:
    import mlflow

    return Path(sys.prefix) / "share" / "workbench" / f"mlflow-{mlflow.__version__}-empty.db"


def seed_new_store(uri: str) -> None:
    """Copy the empty store to the SQLite file `uri` names if there is no file there yet; the
    caller holds the store's lock. Where the template cannot be made (a read-only environment),
    MLflow creates the store itself as before."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(uri)
    except Exception:  # noqa: BLE001 - not a database URL: MLflow will say what is wrong with it
        return
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    database = Path(url.database)
    if database.exists():
        return
    pending = database.with_name(f".{database.name}.{os.getpid()}.tmp")
    try:
        template = _template()
        database.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, pending)
        os.link(pending, database)  # whole, and never over a store another process made meanwhile
    except Exception:  # noqa: BLE001 - any failure here only costs the migrations' second
        pass
    finally:
        pending.unlink(missing_ok=True)


def _template() -> Path:
    path = template_path()
    if path.exists():
        return path
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    with file_lock(path.with_suffix(".lock")):
        if not path.exists():
            pending = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            pending.unlink(missing_ok=True)
            try:
                engine = sqlalchemy.create_engine(f"sqlite:///{pending}")
                try:
                    _initialize_tables(engine)
                finally:
                    engine.dispose()  # the file is closed before it is renamed
                os.replace(pending, path)
            finally:
                pending.unlink(missing_ok=True)
    return path
