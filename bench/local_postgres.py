"""A throw-away PostgreSQL server for benches and tests (Debian `postgresql`, installed by `make setup`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


@contextmanager
def local_postgres(durable: bool = True) -> Iterator[Callable[[str], str]]:
    """Start a server on 127.0.0.1 for the block; yields create(name) -> the URL of a new database.
    `durable=False` turns fsync off: faster, and fine for data thrown away after the block."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not binaries:
        raise SystemExit("PostgreSQL is not installed: run `make setup` first")
    bin_dir = binaries[-1].parent
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    if as_postgres:
        shutil.chown(root, "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def create(name: str) -> str:
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", name],
                       check=True, capture_output=True)
        return f"postgresql://postgres@127.0.0.1:{port}/{name}"

    data = root / "data"
    try:
        sync = [] if durable else ["--no-sync"]
        subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", *sync],
                       check=True, capture_output=True)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c max_connections=200"
        options += "" if durable else " -c fsync=off"
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                        str(root / "log"), "start"], check=True, capture_output=True)
        yield create
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
