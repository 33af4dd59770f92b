"""The pipeline file format: a bad file fails whole, with one clear error, before anything runs."""

from __future__ import annotations

import pytest

from conftest import ROOT, all_runs
from pipeline_testing import workbench, write


INVALID = {
    "cycle": ("""\
        name: loop
        steps:
          first: {notebook: FIXTURES/emit.ipynb}
          a: {notebook: FIXTURES/emit.ipynb, needs: [c]}
          b: {notebook: FIXTURES/emit.ipynb, needs: [a]}
          c: {notebook: FIXTURES/emit.ipynb, needs: [b]}
        """, (), ["steps: needs form a cycle: a -> c -> b -> a"]),
    "unknown notebook": ("""\
        name: typo
        steps:
          first: {notebook: FIXTURES/emit.ipynb}
          train: {notebook: trian.ipynb}
        """, (), ["step 'train'", "notebook: 'trian.ipynb' not found", "train.ipynb"]),
    "unknown step parameter": ("""\
        name: typo
        steps:
          first: {notebook: FIXTURES/emit.ipynb, parameters: {numbr: 3}}
        """, (), ["step 'first'", "parameters.numbr: unknown parameter", "defines: number, pause"]),
    "bad type": ("""\
        name: typo
        steps:
          first: {notebook: FIXTURES/emit.ipynb, parameters: {number: three}}
        """, (), ["step 'first'", "parameters.number: 'three' is not an integer"]),
    "bad run config": ("""\
        name: typo
        steps:
          train: {notebook: train.ipynb, parameters: {task: images, dataset: digits, model: cnnn}}
        """, (), ["step 'train'", "parameters.model", "'cnnn'", "mlp, cnn, resnet"]),
    "unknown -p key": ("""\
        name: typo
        parameters: {start: 1}
        steps:
          first: {notebook: FIXTURES/emit.ipynb, parameters: {number: "${params.start}"}}
        """, ("-p", "stat=2"), ["-p stat: unknown pipeline parameter", "declares: start"]),
    "output of a step not needed": ("""\
        name: typo
        steps:
          first: {notebook: FIXTURES/emit.ipynb}
          second: {notebook: FIXTURES/double.ipynb, parameters: {value: "${steps.first.outputs.number}"}}
        """, (), ["step 'second'", "parameters.value", "'first' is not in this step's needs"]),
    "aliases that expand to a billion values": ("""\
        name: laughs
        parameters:
          a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
          b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
          c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
          d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
          e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
          f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
          g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
          h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
          i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
        steps:
          first: {notebook: FIXTURES/emit.ipynb}
        """, (), ["its aliases expand to more than 100000 values"]),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_pipeline_files_fail_with_one_clear_error_before_anything_runs(home, tmp_path, case):
    text, extra, expected = INVALID[case]
    path = write(tmp_path, text)
    result = workbench("pipeline", "run", str(path), *extra)
    assert result.returncode == 2
    assert result.stderr.startswith(f"workbench pipeline: error: {path}: ")
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert all_runs(home) == [] and not (home / "notebooks").exists()


def test_shipped_pipelines_are_valid():
    from workbench.pipelines.spec import load_pipeline

    quickstart = load_pipeline(ROOT / "pipelines" / "quickstart.yaml")
    assert list(quickstart.steps)[-1] == "compare" and quickstart.steps["compare"].needs == ["images", "text", "speech"]
    nightly = load_pipeline(ROOT / "pipelines" / "nightly.yaml")
    assert nightly.schedule and list(nightly.steps) == ["tune", "train", "evaluate"]
