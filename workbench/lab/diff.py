"""`workbench diff A B`: what differs between two runs, their executed notebooks included.

Configuration, metrics, environment and code version side by side, then the notebooks: nbdime
aligns the two executed notebooks cell by cell and says what changed in each (source, outputs);
changed cells are shown with a source diff and their outputs, images side by side. One HTML page,
logged into run B (`diffs/diff-<A>.html`, viewable in the MLflow UI) and shown inline in a
notebook. nbdime 4 renders diffs only in its web server, so the page itself is written here.
"""

from __future__ import annotations

import difflib
import html
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ENVIRONMENT_TAGS = ("git_commit", "git_dirty", "tensorflow_version", "keras_version", "mlflow_version",
                    "python_version", "devices", "host")
IMAGE = "image/png"


@dataclass
class CellChange:
    index: int            # in notebook B (A for a removed cell)
    kind: str             # "changed", "added" or "removed"
    source_diff: str = ""  # unified diff of the source, when it changed
    outputs_a: list = field(default_factory=list)
    outputs_b: list = field(default_factory=list)


@dataclass
class RunDiff:
    a: str
    b: str
    params: list[tuple[str, str | None, str | None]]
    metrics: list[tuple[str, float | None, float | None]]
    environment: list[tuple[str, str | None, str | None]]
    datasets: list[tuple[str, str | None, str | None]]
    cells: list[CellChange]
    notebooks_found: bool
    html: str = ""
    artifact: str = ""    # where in run B the page was logged

    def _repr_html_(self) -> str:
        return self.html

    def summary(self) -> str:
        lines = [f"run A {self.a}  vs  run B {self.b}"]
        for title, rows in (("config", self.params), ("environment", self.environment), ("data", self.datasets)):
            for name, a, b in rows:
                lines.append(f"  {title:<12} {name}: {a} -> {b}")
        changed = [m for m in self.metrics if m[1] != m[2]]
        lines.append(f"  metrics      {len(changed)} of {len(self.metrics)} differ"
                     + "".join(f"\n               {n}: {a} -> {b}" for n, a, b in changed[:12]))
        lines.append(f"  notebooks    {len(self.cells)} cells differ" if self.notebooks_found
                     else "  notebooks    (a run has no executed notebook: run through `workbench train`)")
        return "\n".join(lines)


def diff_runs(a: str, b: str, log: bool = True) -> RunDiff:
    """Compare runs A and B; with `log`, the HTML page goes into run B."""
    from workbench.tracking import queries, run_tree

    runs = {}
    for name, run_id in (("A", a), ("B", b)):
        queries.existing_run_params(run_id, name)  # an unknown id is bad input, named
        runs[name] = queries.get_run(run_id)
    ra, rb = runs["A"], runs["B"]
    result = RunDiff(
        a, b,
        params=_differing(ra.data.params, rb.data.params),
        metrics=[(k, ra.data.metrics.get(k), rb.data.metrics.get(k))
                 for k in sorted(set(ra.data.metrics) | set(rb.data.metrics)) if not k.startswith("system/")],
        environment=_differing({k: ra.data.tags.get(k) for k in ENVIRONMENT_TAGS},
                               {k: rb.data.tags.get(k) for k in ENVIRONMENT_TAGS}),
        datasets=_differing(queries.dataset_digests(a), queries.dataset_digests(b)),
        cells=[], notebooks_found=False)
    with tempfile.TemporaryDirectory(prefix="workbench-diff-") as folder:
        notebooks = [_executed_notebook(run_id, Path(folder) / name) for name, run_id in (("a", a), ("b", b))]
        if all(notebooks):
            result.cells, result.notebooks_found = notebook_changes(*notebooks), True
    result.html = render(result)
    if log:
        result.artifact = f"diffs/diff-{a}.html"
        run_tree.log_text(b, result.html, result.artifact)
    return result


def _differing(a: dict, b: dict) -> list[tuple[str, str | None, str | None]]:
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _executed_notebook(run_id: str, folder: Path) -> Path | None:
    from workbench.tracking import queries

    found = [p for p in queries.artifact_files(run_id, "notebook") if p.endswith(".ipynb")]
    if not found:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return Path(queries.download(run_id, found[0], str(folder)))


def notebook_changes(path_a: Path, path_b: Path) -> list[CellChange]:
    """Cells that differ, as nbdime aligns them (execution counts and metadata aside)."""
    import nbdime
    import nbformat

    nb_a, nb_b = nbformat.read(str(path_a), 4), nbformat.read(str(path_b), 4)
    changes = []
    for entry in nbdime.diff_notebooks(nb_a, nb_b):
        if entry["key"] != "cells":
            continue
        offset = 0  # B's index = A's index + cells added before it - cells removed before it
        for op in entry["diff"]:
            index = op["key"]
            if op["op"] == "addrange":
                for i, cell in enumerate(op["valuelist"]):
                    changes.append(CellChange(index + offset + i, "added", _source_diff("", cell.source),
                                              [], list(cell.get("outputs", []))))
                offset += len(op["valuelist"])
            elif op["op"] == "removerange":
                for i in range(op["length"]):
                    cell = nb_a.cells[index + i]
                    changes.append(CellChange(index + i, "removed", _source_diff(cell.source, ""),
                                              list(cell.get("outputs", [])), []))
                offset -= op["length"]
            elif op["op"] == "patch":
                keys = {sub["key"] for sub in op["diff"]}
                if not keys & {"source", "outputs"}:
                    continue
                cell_a, cell_b = nb_a.cells[index], nb_b.cells[index + offset]
                changes.append(CellChange(index + offset, "changed",
                                          _source_diff(cell_a.source, cell_b.source) if "source" in keys else "",
                                          list(cell_a.get("outputs", [])) if "outputs" in keys else [],
                                          list(cell_b.get("outputs", [])) if "outputs" in keys else []))
    return changes


def _source_diff(a: str, b: str) -> str:
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), "A", "B", lineterm=""))


# ---- the page ---------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; text-align: left; } .changed { background: #fff6d6; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; } .add { color: #116611; } .del { color: #aa1111; }
.outputs { display: flex; gap: 1em; } .outputs > div { flex: 1; min-width: 0; } img { max-width: 100%; }
"""


def render(d: RunDiff) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>diff {e(d.a)} vs {e(d.b)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>Run diff</h1><p>A <code>{e(d.a)}</code> &rarr; B <code>{e(d.b)}</code></p>"]
    for title, rows in (("Configuration", d.params), ("Environment and code version", d.environment),
                        ("Data (dataset digests)", d.datasets)):
        parts.append(f"<h2>{title}</h2>" + (_table(rows, ("name", "A", "B")) if rows else "<p>the same</p>"))
    metric_rows = [(n, _number(a), _number(b), _number(b - a) if a is not None and b is not None else "")
                   for n, a, b in d.metrics]
    parts.append("<h2>Metrics</h2>" + _table(metric_rows, ("metric", "A", "B", "B - A"),
                                             changed=[a != b for _, a, b in d.metrics]))
    parts.append("<h2>Executed notebooks</h2>")
    if not d.notebooks_found:
        parts.append("<p>A run has no executed notebook (trained with --in-process?).</p>")
    elif not d.cells:
        parts.append("<p>No cell differs in source or outputs.</p>")
    for cell in d.cells:
        parts.append(f"<h3>cell {cell.index + 1}: {cell.kind}</h3>")
        if cell.source_diff:
            parts.append("<pre>" + "\n".join(_diff_line(line) for line in cell.source_diff.splitlines()) + "</pre>")
        if cell.outputs_a or cell.outputs_b:
            parts.append("<div class='outputs'>" + "".join(
                f"<div><b>{side}</b>{''.join(_output(o) for o in outputs) or '<p>(no output)</p>'}</div>"
                for side, outputs in (("A", cell.outputs_a), ("B", cell.outputs_b))) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(rows, header, changed=None) -> str:
    e = html.escape
    body = "".join(
        f"<tr class='{'changed' if (changed[i] if changed else True) else ''}'>"
        + "".join(f"<td>{e(str(v)) if v is not None else '<i>absent</i>'}</td>" for v in row) + "</tr>"
        for i, row in enumerate(rows))
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + f"</tr>{body}</table>"


def _number(value) -> str:
    return "" if value is None else f"{value:.6g}"


def _diff_line(line: str) -> str:
    kind = "add" if line.startswith("+") and not line.startswith("+++") else \
        "del" if line.startswith("-") and not line.startswith("---") else ""
    return f"<span class='{kind}'>{html.escape(line)}</span>"


def _output(output) -> str:
    data = output.get("data", {})
    if IMAGE in data:
        return f"<img alt='output image' src='data:{IMAGE};base64,{data[IMAGE].strip()}'/>"
    text = output.get("text") or data.get("text/plain") or output.get("evalue") or ""
    text = "".join(text) if isinstance(text, list) else text
    return f"<pre>{html.escape(text[:4000])}</pre>" if text else ""
