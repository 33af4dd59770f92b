"""`workbench diff A B` of two notebook runs: one HTML page with a changed parameter and a changed figure."""

import pytest

from conftest import all_runs, artifact_paths, run_cli

pytestmark = pytest.mark.slow
TINY = ["--dataset", "digits", "--model", "mlp"]


def test_diff_of_two_notebook_runs_renders_the_changed_parameter_and_figure(home, tmp_path, browser):
    for epochs in ("1", "2"):
        result = run_cli("train", *TINY, "--epochs", epochs)
        assert result.returncode == 0, result.stderr[-2000:]
    a, b = sorted(all_runs(home), key=lambda r: r.info.start_time)
    page_file = tmp_path / "diff.html"
    result = run_cli("diff", a.info.run_id, b.info.run_id, "--output", str(page_file))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "config       epochs: 1 -> 2" in result.stdout
    assert f"diffs/diff-{a.info.run_id}.html" in artifact_paths(home, b.info.run_id)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(page_file.as_uri())
        changed_params = page.locator("h2:has-text('Configuration') + table tr.changed td:first-child")
        assert "epochs" in changed_params.all_inner_texts()
        # The learning-curves cell differs: its figure from A and from B, side by side, both decoded.
        figures = page.locator(".outputs img")
        assert figures.count() >= 2
        assert page.evaluate("() => [...document.querySelectorAll('.outputs img')]"
                             ".every(i => i.complete && i.naturalWidth > 100)")
    finally:
        page.close()


def test_diff_of_an_unknown_run_is_a_clear_error(home):
    result = run_cli("diff", "0123456789abcdef", "fedcba9876543210")
    assert result.returncode == 2 and "invalid value for 'A'" in result.stderr and "Traceback" not in result.stderr
