"""Models whose users give raw input and get text back: a Keras network plus the Python around it.
(Also the way to log a network built from a class of ours, which Keras cannot find by itself on
reload: `mean_pooled_bert`'s classifier returns probabilities through it.)

A network that emits a sequence (CTC frames, next-token probabilities) needs decoding before its
output means anything, and decoding is Python (beam search, sampling). A task's `exported_model`
returns a `ServedModel` subclass for such networks; the run logs it as an MLflow pyfunc that
reloads the network and the subclass, so `mlflow.pyfunc.load_model(...).predict(raw)` returns text.

A subclass keeps everything decoding needs in `settings` (JSON: alphabet, vocabulary, limits) and
implements `predict`. The class is named in the saved folder, so it must be importable wherever the
model is loaded (the workbench package, or the plugin that defines it).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

NETWORK_FILE = "network.keras"
SETTINGS_FILE = "served.json"


class ServedModel:
    any_size_input = False  # True: inputs are images whose height and width may differ from the example's

    def __init__(self, network, settings: dict[str, Any]):
        self.network = network
        self.settings = settings

    def predict(self, inputs) -> list[str]:
        """Raw inputs (waveforms, prompts) to one text each."""
        raise NotImplementedError

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.network.save(folder / NETWORK_FILE)
        cls = type(self)
        record = {"class": f"{cls.__module__}:{cls.__qualname__}", "settings": self.settings}
        (folder / SETTINGS_FILE).write_text(json.dumps(record, indent=1))
        return folder

    @staticmethod
    def load(folder: str | Path) -> "ServedModel":
        import keras

        folder = Path(folder)
        record = json.loads((folder / SETTINGS_FILE).read_text())
        module_name, _, class_name = record["class"].partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls(keras.models.load_model(folder / NETWORK_FILE, compile=False), record["settings"])
