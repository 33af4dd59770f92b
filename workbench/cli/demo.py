"""`workbench demo`: the quickstart pipeline on embedded defaults, then where to look."""

from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="run the quickstart pipeline on embedded defaults and show where to look",
                                 description="Run pipelines/quickstart.yaml: a short training run of every task "
                                             "through the notebooks, then a comparison with the baselines.")
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench import tracking
    from workbench.cli.pipelines import run_file
    from workbench.home import PROJECT_ROOT

    code = run_file(str(PROJECT_ROOT / "pipelines" / "quickstart.yaml"))
    print_results("quickstart")
    print(f"\nlook at the runs: workbench ui   (the MLflow UI over {tracking.tracking_uri()}; it prints a link to "
          "each experiment's training runs)")
    return code


def print_results(pipeline: str) -> None:
    """Every model the pipeline's latest run trained, against the classical baseline beside it, each
    by its task's main metric (test accuracy, word error rate, perplexity, ...) and that metric's direction."""
    from workbench.pipelines.runs import latest_pipeline_run, main_metric, training_runs

    run_id = latest_pipeline_run(pipeline)
    rows = training_runs(run_id) if run_id else []
    if not rows:
        return
    table = [("task", "dataset", "model", "metric", "better", "score", "baseline", "gain")]
    for _, run in rows:
        metric = main_metric(run)
        score, baseline = run.data.metrics[metric.name], run.data.metrics.get(f"baseline_{metric.name}")
        table.append((run.data.tags.get("task", "?"), run.data.tags.get("dataset", "?"), run.data.tags.get("model", "?"),
                      metric.name, metric.better, f"{score:.4f}", "-" if baseline is None else f"{baseline:.4f}",
                      "-" if baseline is None else f"{metric.gain(score, baseline):+.4f}"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    print(f"\npipeline run {run_id}: each model against its classical baseline on the same test split, by its "
          "task's main metric (gain: how much better than the baseline, whichever way is better)")
    for row in table:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
