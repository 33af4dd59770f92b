"""Test accuracy and wall-clock minutes of the models, trained as a user would, beside the baseline.

    .venv/bin/python bench/quality.py                 # all cases
    .venv/bin/python bench/quality.py digits-cnn      # one case
    .venv/bin/python bench/quality.py 'rotten-*'      # cases matching a pattern

Each case runs `workbench train --in-process` in a fresh process with its own workbench home
and reads the test accuracy back from MLflow. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import fnmatch
import sys
import tempfile
from pathlib import Path

from fresh_run import train_in_fresh_home

# A goal is a test accuracy (0.92), or ("baseline", margin): at least the baseline's test accuracy plus margin.
BEAT = ("baseline", 0.0)
CASES = {  # name: (flags, goal)
    "mnist-cnn": (["--task", "images", "--dataset", "mnist", "--model", "cnn", "--epochs", "5"], 0.993),
    "fashion-cnn": (["--task", "images", "--dataset", "fashion-mnist", "--model", "cnn", "--epochs", "5"], 0.92),
    "fashion-resnet": (["--task", "images", "--dataset", "fashion-mnist", "--model", "resnet", "--epochs", "5"],
                       0.93),
    "fashion-resnet-augmented": (["--task", "images", "--dataset", "fashion-mnist", "--model", "resnet",
                                  "--epochs", "10", "--augment", "true"], 0.93),
    "fashion-resnet-regularized": (["--task", "images", "--dataset", "fashion-mnist", "--model", "resnet",
                                    "--epochs", "10", "--dropout", "0.3", "--l2", "0.0005"], 0.93),
    "digits-cnn": (["--task", "images", "--dataset", "digits", "--model", "cnn", "--epochs", "10"], 0.98),
    "speech-ds-cnn": (["--task", "speech", "--model", "ds-cnn", "--epochs", "30"], 0.90),
    "voices-ds-cnn": (["--task", "speech", "--dataset", "voices", "--model", "ds-cnn"], ("baseline", 0.10)),
    "voices-cnn": (["--task", "speech", "--dataset", "voices", "--model", "cnn"], ("baseline", 0.10)),
    "voices-crnn": (["--task", "speech", "--dataset", "voices", "--model", "crnn"], ("baseline", 0.10)),
    # Real voices in the shape of a user's own corpus: 10 phrases at 8 kHz, packs held out by list files.
    "voices-10-phrases-8khz-ds-cnn": (["--task", "speech", "--dataset", "folder:{speech_tree}",
                                       "--model", "ds-cnn"], 0.95),
    "rotten-tomatoes-bow": (["--task", "text", "--dataset", "rotten-tomatoes", "--model", "bow"], BEAT),
    "rotten-tomatoes-cnn1d": (["--task", "text", "--dataset", "rotten-tomatoes", "--model", "cnn1d"], BEAT),
    "rotten-tomatoes-rnn": (["--task", "text", "--dataset", "rotten-tomatoes", "--model", "rnn"], BEAT),
    "rotten-tomatoes-lstm": (["--task", "text", "--dataset", "rotten-tomatoes", "--model", "lstm"], BEAT),
    "rotten-tomatoes-transformer": (["--task", "text", "--dataset", "rotten-tomatoes", "--model", "transformer"],
                                    BEAT),
    "rotten-tomatoes-cnn1d-glove": (["--task", "text", "--dataset", "rotten-tomatoes", "--model", "cnn1d",
                                     "--embeddings", "glove"], ("baseline", 0.02)),
    "rotten-tomatoes-lstm-glove": (["--task", "text", "--dataset", "rotten-tomatoes", "--model", "lstm",
                                    "--embeddings", "glove"], ("baseline", 0.02)),
    "rotten-tomatoes-minilm": (["--task", "text", "--dataset", "rotten-tomatoes", "--model", "minilm"], 0.85),
    "fortunes-bow": (["--task", "text", "--model", "bow"], BEAT),
    "fortunes-cnn1d-glove": (["--task", "text", "--model", "cnn1d", "--embeddings", "glove"], BEAT),
    "fortunes-minilm": (["--task", "text", "--model", "minilm"], BEAT),
}


def run_case(flags: list[str]) -> tuple[dict[str, float], float, str]:
    home = Path(tempfile.mkdtemp(prefix="wb-quality-"))
    if any("{speech_tree}" in flag for flag in flags):
        from speech_tree import build

        tree = build(home / "speech-tree", words=10, rate=8000, seed=0)
        flags = [flag.replace("{speech_tree}", str(tree)) for flag in flags]
    home, client, run, minutes = train_in_fresh_home(flags, "wb-quality-", home)
    epochs = len(client.get_metric_history(run.info.run_id, "epoch_seconds"))
    return run.data.metrics, minutes, f"{epochs} of {run.data.params['epochs']}"


def goal_met(goal, metrics: dict[str, float]) -> tuple[str, bool]:
    if isinstance(goal, tuple):
        needed = metrics["baseline_test_accuracy"] + goal[1]
        text = f"≥ baseline + {goal[1]:.2f} ({needed:.4f})" if goal[1] else f"≥ baseline ({needed:.4f})"
    else:
        needed, text = goal, f"≥ {goal}"
    return text, metrics["test_accuracy"] >= needed


def main(patterns: list[str]) -> None:
    names = [n for n in CASES if not patterns or any(fnmatch.fnmatch(n, p) for p in patterns)]
    print("| case | command flags | test accuracy | test macro-F1 | classical baseline accuracy | goal | met | "
          "epochs run | minutes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        flags, goal = CASES[name]
        metrics, minutes, epochs = run_case(flags)
        goal_text, met = goal_met(goal, metrics)
        print(f"| {name} | `{' '.join(flags)}` | {metrics['test_accuracy']:.4f} | {metrics['test_macro_f1']:.4f} | "
              f"{metrics['baseline_test_accuracy']:.4f} | {goal_text} | {'yes' if met else '**no**'} | {epochs} | "
              f"{minutes:.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
