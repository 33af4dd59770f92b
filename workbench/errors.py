"""The two kinds of bad input. The command line turns either into one message and exit code 2."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value that is not allowed. The message names field, value and what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str):
        self.field = field_name
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid value for '{field_name}': {value!r} (allowed: {allowed})")


class DataError(ValueError):
    """A dataset that cannot be used; the message names the file or folder and what is wrong."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run ends FAILED with this message."""
