"""A ServedModel subclass importable by the pyfunc loader, as a plugin's would be."""

import numpy as np

from workbench.models.served import ServedModel


class LetterPicker(ServedModel):
    def predict(self, inputs) -> list[str]:
        scores = np.asarray(self.network(np.asarray(inputs, dtype="float32")))
        return [self.settings["alphabet"][i] for i in scores.argmax(axis=-1)]
