"""Reading a user's text file as UTF-8, or saying which file and which byte is not."""

from __future__ import annotations

import codecs
from pathlib import Path

from workbench.errors import DataError


def read_utf8(file: Path, what: str) -> str:
    """The text of `file` decoded as UTF-8 (a leading byte-order mark dropped); otherwise a
    DataError that starts with `what` (e.g. "csv dataset") and names the file and the offset of the
    first byte that is not UTF-8, counted from the start of the file."""
    data = file.read_bytes()
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        raise DataError(f"{what}: {file} is not UTF-8 text: byte {offset} ({data[offset:offset + 1]!r}) cannot be "
                        f"decoded ({exc.reason}); save it as UTF-8") from None
