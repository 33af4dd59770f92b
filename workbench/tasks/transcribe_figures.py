"""What a transcription run shows: a clip's spectrogram with the CTC best path over its frames,
and the table of the worst transcriptions (reference, hypothesis, WER, voice)."""

from __future__ import annotations

import numpy as np

FRAME_SECONDS = 0.04  # one output frame of workbench.models.ctc: 10 ms mel hop x TIME_STRIDE 4


def spectrogram_with_path(wave: np.ndarray, reference: str, logits: np.ndarray | None = None,
                          hypothesis: str = "", alphabet: str = ""):
    """The clip's spectrogram up to its last sound; with `logits`, the best path's characters
    (blank-free, first frame of each run) marked at their frames below it."""
    from matplotlib.figure import Figure

    voiced = np.flatnonzero(np.abs(wave) > 1e-3)
    end = min(len(wave), (voiced[-1] if len(voiced) else len(wave)) + 1600)
    fig = Figure(figsize=(max(6.0, 2.2 * end / 16_000), 4.2 if logits is not None else 3.0), layout="constrained")
    axes = fig.subplots(2 if logits is not None else 1, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [3, 1]} if logits is not None else None)[:, 0]
    with np.errstate(divide="ignore"):  # the silence after a clip has no power at all
        axes[0].specgram(wave[:end], NFFT=400, Fs=16_000, noverlap=240, cmap="magma")
    axes[0].set(ylabel="Hz", title=f"reference: {reference}" + (f"\nhypothesis: {hypothesis}" if logits is not None else ""))
    if logits is not None:
        path = np.argmax(logits, axis=-1)
        ax = axes[1]
        blank = path == 0
        times = np.arange(len(path)) * FRAME_SECONDS
        ax.plot(times, np.where(blank, np.nan, 1.0), "|", color="tab:blue", markersize=12)
        for frame, k in enumerate(path):
            if k and (frame == 0 or path[frame - 1] != k) and frame * FRAME_SECONDS * 16_000 < end:
                ax.text(frame * FRAME_SECONDS, 0.5, "␣" if alphabet[k - 1] == " " else alphabet[k - 1],
                        ha="center", fontsize=9)
        ax.set(xlim=(0, end / 16_000), ylim=(0, 1.5), yticks=[], xlabel="seconds",
               title="CTC best path (non-blank frames)")
    else:
        axes[0].set_xlabel("seconds")
    return fig


def worst_table(references: list[str], hypotheses: list[str], speakers, kinds, shown: int) -> dict[str, list]:
    """The `shown` clips with the highest WER, worst first."""
    import jiwer

    rates = [float(jiwer.wer(r, h)) for r, h in zip(references, hypotheses)]
    order = sorted(range(len(rates)), key=lambda i: (-rates[i], i))[:shown]
    return {"reference": [references[i] for i in order], "hypothesis": [hypotheses[i] for i in order],
            "wer": [rates[i] for i in order], "voice": [str(speakers[i]) for i in order],
            "kind": [str(kinds[i]) for i in order]}
