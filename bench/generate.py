"""Held-out perplexity of the LSTM and the GPT on fortunes, beside the Kneser-Ney baseline of the
same run, with three samples each.

    .venv/bin/python bench/generate.py                        # both models, characters, default epochs
    .venv/bin/python bench/generate.py --epochs 3             # a CPU-sized run
    .venv/bin/python bench/generate.py gpt --level subword    # one model, WordPiece subwords

Each model runs `workbench train --in-process --task generate --dataset fortunes --level LEVEL`
in a fresh process with its own workbench home; the metrics and the final samples are read back
from MLflow. Prints a Markdown table for BENCHMARKS.md; the goal is a perplexity at most 0.8x
the baseline's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fresh_run import train_in_fresh_home

GOAL = 0.8  # model perplexity / baseline perplexity


def run_case(model: str, level: str, extra: list[str]) -> dict:
    flags = ["--task", "generate", "--dataset", "fortunes", "--level", level, "--model", model, *extra]
    home, client, run, minutes = train_in_fresh_home(flags, "wb-generate-")
    epochs = len(client.get_metric_history(run.info.run_id, "epoch_seconds"))
    table = json.loads(Path(client.download_artifacts(run.info.run_id, "tables/samples.json", str(home))).read_text())
    generated = [row[table["columns"].index("generated")] for row in table["data"]]
    return {"flags": flags, "metrics": run.data.metrics, "minutes": minutes, "epochs": epochs,
            "planned": run.data.params["epochs"], "samples": generated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["lstm", "gpt"])
    parser.add_argument("--epochs", type=int, default=0, help="0 = the task's default (from the data)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--level", choices=("char", "subword"), default="char")
    args = parser.parse_args()
    extra = ["--seed", str(args.seed)] + (["--epochs", str(args.epochs)] if args.epochs else [])
    rows, samples = [], []
    for model in args.models:
        result = run_case(model, args.level, extra)
        m = result["metrics"]
        ratio = m["test_perplexity"] / m["baseline_test_perplexity"]
        rows.append(f"| {model} | `{' '.join(result['flags'][2:])}` | {m['test_perplexity']:.3f} | "
                    f"{m['baseline_test_perplexity']:.3f} (order {int(m['baseline_order'])}) | {ratio:.2f} | "
                    f"≤ {GOAL} | {'yes' if ratio <= GOAL else '**no**'} | {result['epochs']} of "
                    f"{result['planned']} | {result['minutes']:.1f} |")
        samples += [f"{model}: {text!r}" for text in result["samples"]]
        print(rows[-1], flush=True)
    unit = "character" if args.level == "char" else "subword"
    print(f"\n| model | command flags | test perplexity per {unit} | Kneser-Ney baseline | ratio | goal | met "
          "| epochs run | minutes |\n|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nSamples (temperature 0.8, top-k 40):\n")
    print("\n".join(samples))


if __name__ == "__main__":
    main()
