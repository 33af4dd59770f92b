"""The decoders side by side on one trained transcription network: greedy, plain beam search, and
the beam search guided by the word model of the training transcripts at several beam widths.

    nice .venv/bin/python bench/transcribe_decoding.py HOME     # HOME: a workbench home whose one
                                                                # run is a finished transcribe run

The run's logged model is reloaded and its data rebuilt from the run's own configuration (the
synthesized corpus is cached in HOME), so every row decodes the same test logits. The word model's
weights are chosen on the validation clips at each width, as the task does. Prints Markdown rows for BENCHMARKS.md with the seconds each decoding took.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main(home: str) -> None:
    os.environ["WORKBENCH_HOME"] = str(Path(home).expanduser())
    import mlflow

    from workbench.models import word_lm_decoding as lm_decoding
    from workbench.tasks import get_task
    from workbench.tasks.configure import make_config
    from workbench.tasks.transcribe import baseline_indices, error_rates, lm_choice_clips

    mlflow.set_tracking_uri(f"sqlite:///{os.environ['WORKBENCH_HOME']}/mlflow.db")
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    model_id = run.outputs.model_outputs[0].model_id
    served = mlflow.pyfunc.load_model(f"models:/{model_id}").unwrap_python_model().served
    params = run.data.params
    config = make_config(task="transcribe", model=params["model"], seed=int(params["seed"]),
                         speakers=int(params["speakers"]), utterances=int(params["utterances"]),
                         max_seconds=float(params["max_seconds"]))
    task = get_task("transcribe")
    data = task.load_data(config)
    alphabet = served.settings["alphabet"]
    test_logits = served.logits(data.x_test)
    references, kinds = data.extras["test_texts"], data.extras["test_kinds"]
    picked = baseline_indices(data, config)
    lm = lm_decoding.WordLanguageModel(data.extras["train_texts"])
    chosen = lm_choice_clips(len(data.x_val))
    val_logits, val_texts = served.logits(data.x_val[chosen]), [data.extras["val_texts"][i] for i in chosen]

    def keras_decoding(decoding: str):
        def decode():
            served.settings.update(decoding=decoding, beam_width=32)
            return served.texts(test_logits), ""
        return decode

    def word_model(beams: int):
        def decode():  # as the task does: the weights chosen on validation at the same width
            started = time.perf_counter()
            weight, bonus, _ = lm_decoding.choose_weights(val_logits, val_texts, alphabet, lm, beams)
            choice = f"({weight:g}, {bonus:g}) in {time.perf_counter() - started:.0f} s"
            return lm_decoding.transcribe(test_logits, alphabet, lm, weight, bonus, beams), choice
        return decode

    cases = [("greedy", keras_decoding("greedy")), ("beam search, 32 beams", keras_decoding("beam"))]
    cases += [(f"word model, {beams} beams", word_model(beams)) for beams in (16, 32, 64)]
    print(f"run {run.info.run_id}: {len(references)} test clips, {len(data.x_val)} validation clips "
          f"({len(chosen)} used to choose the weights), {len(lm.ids)} training words\n")
    print("| decoding | weights chosen on validation | test WER % | digits | commands | sentences | test CER % | "
          "WER % on PocketSphinx's clips | seconds (choosing and decoding) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, decode in cases:
        started = time.perf_counter()
        hypotheses, choice = decode()
        seconds = time.perf_counter() - started
        m = error_rates(references, hypotheses, kinds, "t")
        on_picked = error_rates([references[i] for i in picked], [hypotheses[i] for i in picked], None, "x")
        per_kind = " | ".join(f"{100 * m.get(f't_wer_{k}', float('nan')):.1f}"
                              for k in ("digits", "commands", "sentences"))
        print(f"| {name} | {choice or '–'} | {100 * m['t_wer']:.1f} | {per_kind} | {100 * m['t_cer']:.1f} | "
              f"{100 * on_picked['x_wer']:.1f} | {seconds:.0f} |")
    metrics = run.data.metrics
    if "baseline_wer" in metrics:
        print(f"\nPocketSphinx on its {metrics['baseline_clips']:.0f} clips, training-transcript LM: WER "
              f"{100 * metrics['baseline_wer']:.1f} % (digits {100 * metrics.get('baseline_wer_digits', 0):.1f}, "
              f"commands {100 * metrics.get('baseline_wer_commands', 0):.1f}, sentences "
              f"{100 * metrics.get('baseline_wer_sentences', 0):.1f}); default LM "
              f"{100 * metrics['baseline_wer_default_lm']:.1f} %")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
