"""Errors that end a command with a message instead of a traceback (the map to exit codes is in
workbench.cli): bad input, exit 2; a resource another process holds, exit 1; a diverged run; a stop
by SIGTERM, exit 143."""

from __future__ import annotations

from typing import Any


class BadInput(ValueError):
    """Input the user can fix (a flag, a file, a dataset): one message naming it, exit code 2."""


class Busy(RuntimeError):
    """Another process holds what this command needs (e.g. the same pipeline running): exit code 1."""


class ConfigError(BadInput):
    """A config value that is not allowed. The message names field, value and what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str):
        self.field = field_name
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid value for '{field_name}': {value!r} (allowed: {allowed})")


class DataError(BadInput):
    """A dataset that cannot be used; the message names the file or folder and what is wrong."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run ends FAILED with this message."""


class Stopped(KeyboardInterrupt):
    """SIGTERM (`timeout`, systemd, Kubernetes, the launcher's Stop), raised where the program is, so
    every `except KeyboardInterrupt` ends its runs KILLED; `interruption` tells it from Ctrl-C."""


def interruption(exc: BaseException) -> str:
    """The reason a run ends KILLED with when `exc` (a KeyboardInterrupt) stopped it."""
    return "stopped by SIGTERM" if isinstance(exc, Stopped) else "interrupted by the user"
