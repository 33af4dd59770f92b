"""`make demo` ends with each model against its baseline, read back from the pipeline's runs."""

import pytest

from pipeline_testing import workbench, write

pytestmark = pytest.mark.slow


def test_the_demo_table_lists_each_model_against_its_baseline(home, tmp_path, capsys):
    from workbench.cli.demo import print_results

    pipeline = write(tmp_path, """
        name: tiny
        steps:
          images:
            notebook: train.ipynb
            parameters: {task: images, dataset: digits, model: mlp, epochs: 1}
    """)
    result = workbench("pipeline", "run", str(pipeline))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    capsys.readouterr()
    print_results("tiny")
    lines = capsys.readouterr().out.strip().splitlines()
    assert "each model against its classical baseline" in lines[0]
    assert lines[1].split() == ["task", "dataset", "model", "metric", "better", "score", "baseline", "gain"]
    task, dataset, model, metric, better, accuracy, baseline, gain = lines[2].split()
    assert (task, dataset, model, metric, better) == ("images", "digits", "mlp", "test_accuracy", "higher")
    assert float(gain) == pytest.approx(float(accuracy) - float(baseline), abs=2e-4)


def test_a_pipeline_step_trains_a_seed_group(home, tmp_path):
    from conftest import all_runs
    from workbench.pipelines.runs import STEP_TAG

    pipeline = write(tmp_path, """
        name: seeded
        steps:
          group:
            notebook: seeds.ipynb
            parameters: {config: {task: images, dataset: digits, model: mlp, epochs: 1}, seeds: 3}
    """)
    result = workbench("pipeline", "run", str(pipeline))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [parent] = [r for r in all_runs(home) if r.data.tags.get("kind") == "seed_group"]
    assert "test_accuracy_ci95_low" in parent.data.metrics
    children = [r for r in all_runs(home) if r.data.tags.get("workbench.seed_group") == parent.info.run_id
                and r.info.run_id != parent.info.run_id]
    assert len(children) == 3
    step = next(r for r in all_runs(home) if r.data.tags.get(STEP_TAG) == "group"
                and r.data.tags.get("kind") == "pipeline-step")
    assert parent.data.tags["mlflow.parentRunId"] == step.info.run_id  # the group nests under its step
