"""The logged speech-to-text model: raw 16 kHz waveforms in, one transcript each out.

Wraps the CTC network (without its loss) and the decoding around it; `settings` holds what
decoding needs: the alphabet, the sample rate, the longest clip the network takes, greedy or
beam-search decoding with its width, and for decoding guided by a word model the training
transcripts it is refitted from and the weights chosen on validation. Shorter clips are padded
with silence; a longer one is refused with the limit named, since cutting it would silently
drop words.
"""

from __future__ import annotations

import numpy as np

from workbench.models.served import ServedModel


class Transcriber(ServedModel):
    def logits(self, waveforms) -> np.ndarray:
        limit = int(self.settings["max_samples"])
        clips = [np.asarray(w, np.float32).ravel() for w in waveforms]
        long = [k for k, w in enumerate(clips) if len(w) > limit]
        if long:
            raise ValueError(f"waveform(s) {long} are longer than this model's limit of {limit} samples "
                             f"({limit / self.settings['sample_rate']:g} s at {self.settings['sample_rate']} Hz)")
        batch = np.zeros((len(clips), limit), np.float32)
        for row, clip in zip(batch, clips):
            row[:len(clip)] = clip
        return np.asarray(self.network.predict(batch, batch_size=32, verbose=0))

    def predict(self, inputs) -> list[str]:
        return self.texts(self.logits(inputs)) if len(inputs) else []

    def texts(self, logits: np.ndarray) -> list[str]:
        """Decoded per-frame logits: one transcript per clip, spaces collapsed."""
        from workbench.models.ctc import decode

        alphabet = self.settings["alphabet"]
        if self.settings["decoding"] == "lm":
            from workbench.models import word_lm_decoding as lm_decoding

            if getattr(self, "_lm", None) is None:  # refitted from the transcripts: a second at most
                self._lm = lm_decoding.WordLanguageModel(self.settings["lm_texts"])
            return lm_decoding.transcribe(logits, alphabet, self._lm, self.settings["lm_weight"],
                                          self.settings["word_bonus"], int(self.settings["beam_width"]))
        paths = decode(logits, self.settings["decoding"], int(self.settings["beam_width"]))
        return [" ".join("".join(alphabet[k - 1] for k in path if 0 < k <= len(alphabet)).split())
                for path in paths]
