"""Notebook kernels talk over Unix sockets in a folder of their own, so kernels started at the
same moment by parallel pipeline steps cannot take each other's TCP ports."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat

SHOW_CONNECTION = "from ipykernel import get_connection_info\nprint(get_connection_info())"

EXECUTE = """
import sys
from pathlib import Path
from workbench.notebooks import execute
error = execute(sys.argv[1], {}, Path(sys.argv[2]), echo=False)
sys.exit(error or 0)
"""


def test_parallel_kernels_each_bind_their_own_sockets_and_leave_none_behind(tmp_path):
    notebook = tmp_path / "connection.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SHOW_CONNECTION)]), notebook)
    outputs = [tmp_path / f"executed-{i}.ipynb" for i in range(4)]
    started = [subprocess.Popen([sys.executable, "-c", EXECUTE, str(notebook), str(out)], stderr=subprocess.PIPE,
                                text=True) for out in outputs]
    for process in started:
        assert process.wait(timeout=300) == 0, process.stderr.read()

    connections = [json.loads(nbformat.read(out, as_version=4).cells[0].outputs[0]["text"]) for out in outputs]
    assert {c["transport"] for c in connections} == {"ipc"}
    folders = {Path(c["ip"]).parent for c in connections}
    assert len(folders) == 4, "each kernel has a socket folder of its own"
    assert all(folder.is_absolute() and not folder.exists() for folder in folders), "removed after the run"
