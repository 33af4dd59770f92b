"""The record of the tracking server a home logs to (`server.json`), written by `workbench server`.

Read by every MLflow client of the home, so it lives with tracking; starting and stopping the
server is `workbench.server`'s business.
"""

from __future__ import annotations

import functools
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from workbench.errors import ConfigError
from workbench.home import home

RECORD_FILE = "server.json"
PASSWORD_FILE = "server-password"
ADMIN_USER = "admin"


def record_path() -> Path:
    return home() / RECORD_FILE


def recorded() -> dict | None:
    path = record_path()
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        problem = None if isinstance(record, dict) and isinstance(record.get("url"), str) else "no server url"
    except (OSError, ValueError) as exc:
        problem = type(exc).__name__
    if problem:
        raise ConfigError(str(path), problem, "a server record written by `workbench server`; delete the file "
                          "or run `workbench server --forget`") from None
    return record


def recorded_uri() -> str | None:
    """The recorded server's URL (checked to answer, once per process), or None.

    Sets MLFLOW_TRACKING_USERNAME/PASSWORD from the home's password file when the server has
    auth on and they are not set already, so MLflow's client (and child processes) log in."""
    record = recorded()
    if record is None:
        return None
    url = record["url"]
    _check_reachable(url)
    if record.get("auth") and not os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        os.environ["MLFLOW_TRACKING_USERNAME"] = record.get("username", ADMIN_USER)
        os.environ["MLFLOW_TRACKING_PASSWORD"] = read_password(home() / PASSWORD_FILE)
    return url


@functools.lru_cache(maxsize=None)  # only successes are cached: a failed check raises
def _check_reachable(url: str) -> None:
    if not answers(url, timeout=5):
        raise ConfigError("tracking server", url,
                          f"a running server: this home logs to the server recorded in {record_path()}; "
                          "start it again with `workbench server --backend ...`, or run "
                          "`workbench server --forget` to log to the embedded store again")


def answers(url: str, timeout: float) -> bool:
    try:
        urllib.request.urlopen(f"{url}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means a server is there
    except OSError:
        return False
    return True


def forget() -> int:
    path = record_path()
    if path.exists():
        try:
            url = json.loads(path.read_text()).get("url", "?")
        except (ValueError, AttributeError):
            url = "(unreadable record)"
        path.unlink()
        print(f"forgot the tracking server {url}: this home logs to sqlite:///{home() / 'mlflow.db'} again")
    else:
        print("no tracking server recorded for this home")
    return 0


def read_password(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        raise ConfigError("tracking server password", str(path),
                          "the admin password file `workbench server --auth` writes; start the server "
                          "again with WORKBENCH_SERVER_PASSWORD set, or set MLFLOW_TRACKING_PASSWORD") from None
