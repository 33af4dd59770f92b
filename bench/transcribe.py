"""Word and character error rates of the transcription models on voices never heard in training,
per kind of text, beside PocketSphinx measured in the same run.

    nice .venv/bin/python bench/transcribe.py                    # ctc-rnn, seed 42
    nice .venv/bin/python bench/transcribe.py ctc-transformer 1  # another model, another seed

One `workbench train --in-process --task transcribe` with the real defaults (spoken-sentences:
80 synthesized voices x 36 texts, 4 s clips, 20 epochs) in a fresh process with its own
workbench home; the error rates are read back from MLflow. PocketSphinx decodes the run's
`baseline_clips` test clips (120 by default, spread over kinds and voices) with a bigram LM of
the training transcripts and with its default LM; the model's WER on those same clips is shown
beside them. Prints Markdown rows for BENCHMARKS.md.
"""

from __future__ import annotations

import sys

from fresh_run import train_in_fresh_home

KINDS = ("digits", "commands", "sentences")
GOALS = {"digits": 0.10, "commands": 0.10, "sentences": 0.25}  # WER on the held-out voices


def run(model: str, seed: int) -> tuple[dict[str, float], float, str]:
    flags = ["--task", "transcribe", "--model", model, "--seed", str(seed)]
    home, client, found, minutes = train_in_fresh_home(flags, "wb-transcribe-")
    epochs = len(client.get_metric_history(found.info.run_id, "epoch_seconds"))
    print(f"home: {home}", file=sys.stderr)
    return found.data.metrics, minutes, f"{epochs} of {found.data.params['epochs']}"


def main(model: str = "ctc-rnn", seed: int = 42) -> None:
    metrics, minutes, epochs = run(model, seed)
    pct = lambda key: f"{100 * metrics[key]:.1f}" if key in metrics else "–"  # noqa: E731
    print("| model | seed | kind | test WER % | test CER % | goal WER % | met | PocketSphinx training-LM WER % | "
          "PocketSphinx default-LM WER % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in KINDS:
        met = metrics[f"test_wer_{kind}"] <= GOALS[kind]
        print(f"| {model} | {seed} | {kind} | {pct(f'test_wer_{kind}')} | {pct(f'test_cer_{kind}')} | "
              f"≤ {100 * GOALS[kind]:.0f} | {'yes' if met else '**no**'} | {pct(f'baseline_wer_{kind}')} | "
              f"{pct(f'baseline_wer_{kind}_default_lm')} |")
    print(f"| {model} | {seed} | all | {pct('test_wer')} | {pct('test_cer')} | below PocketSphinx | "
          f"{'yes' if metrics['test_wer_on_baseline_clips'] < metrics['baseline_wer'] else '**no**'} | "
          f"{pct('baseline_wer')} | {pct('baseline_wer_default_lm')} |")
    print(f"\nmodel WER on the {metrics['baseline_clips']:.0f} clips PocketSphinx decoded: "
          f"{pct('test_wer_on_baseline_clips')} %; training words missing from its dictionary: "
          f"{metrics['baseline_missing_words']:.0f}; test clips {metrics['test_examples']:.0f}, training clips "
          f"{metrics['train_examples']:.0f}, test voices {metrics['test_speakers']:.0f}; epochs {epochs}; "
          f"{minutes:.1f} minutes")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["ctc-rnn"]), *[int(s) for s in sys.argv[2:3]])
