"""Seed groups: `workbench train --seeds N` makes one parent with statistics, `workbench compare` tests groups."""

import pytest

from conftest import all_runs, artifact_paths, client, run_cli

pytestmark = pytest.mark.slow
TINY = ["--in-process", "--dataset", "digits", "--model", "mlp", "--epochs", "1"]


def group_of(result) -> str:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return next(line.split()[2].rstrip(":") for line in result.stdout.splitlines() if line.startswith("seed group "))


def test_seed_groups_and_their_comparison(home):
    group = group_of(run_cli("train", *TINY, "--seeds", "5"))
    c = client(home)
    parent = c.get_run(group)
    assert parent.info.status == "FINISHED" and parent.data.tags["kind"] == "seed_group"
    children = [r for r in all_runs(home) if r.data.tags.get("mlflow.parentRunId") == group]
    assert sorted(r.data.params["seed"] for r in children) == ["42", "43", "44", "45", "46"]
    metrics = parent.data.metrics
    values = [r.data.metrics["test_accuracy"] for r in children]
    assert metrics["test_accuracy_mean"] == pytest.approx(sum(values) / 5)
    assert metrics["test_accuracy_ci95_low"] < metrics["test_accuracy_mean"] < metrics["test_accuracy_ci95_high"]
    assert len(c.get_metric_history(group, "epoch_mean/val_accuracy")) == 1  # one epoch each
    assert "figures/seed_curves.png" in artifact_paths(home, group)

    crippled = group_of(run_cli("train", *TINY, "--seeds", "3", "--learning-rate", "1e-6"))
    verdict = run_cli("compare", group, crippled)
    assert verdict.returncode == 0, verdict.stderr
    assert "a real difference: B is lower" in verdict.stdout

    again = group_of(run_cli("train", *TINY, "--seeds", "3"))  # the same configuration, the first 3 seeds
    same = run_cli("compare", group, again)
    assert "no real difference at 5 and 3 seeds" in same.stdout, same.stdout

    # compare.ipynb says the same of the two groups it is given
    from workbench.home import NOTEBOOKS_DIR
    from workbench.notebooks import execute

    executed = home / "compare-groups.ipynb"
    error = execute(NOTEBOOKS_DIR / "compare.ipynb", {"experiment": "workbench-images", "group_a": group,
                                                       "group_b": crippled}, executed, echo=False)
    assert error is None, error
    assert "a real difference: B is lower" in executed.read_text()


def test_bad_seed_counts_and_unknown_runs_are_clear_errors(home):
    for count in ("0", "-2"):
        result = run_cli("train", *TINY, "--seeds", count)
        assert result.returncode == 2 and "invalid value for 'seeds'" in result.stderr
    assert all_runs(home) == []
    result = run_cli("compare", "0123456789abcdef", "fedcba9876543210")
    assert result.returncode == 2 and "invalid value for 'A'" in result.stderr and "Traceback" not in result.stderr
