"""Outputs a step notebook records for the steps after it."""

from __future__ import annotations

import json

import pytest


def test_record_does_nothing_outside_a_pipeline_and_writes_json_inside(tmp_path, monkeypatch):
    import numpy as np

    from workbench.pipelines.outputs import OUTPUTS_ENV, OutputError, record, recorded

    monkeypatch.delenv(OUTPUTS_ENV, raising=False)
    record("best", {"learning_rate": 0.01})
    assert recorded() == {}
    target = tmp_path / "outputs.json"
    monkeypatch.setenv(OUTPUTS_ENV, str(target))
    record("best", {"learning_rate": np.float32(0.5), "sizes": np.arange(2)})
    record("count", np.int64(3))
    assert json.loads(target.read_text()) == {"best": {"learning_rate": 0.5, "sizes": [0, 1]}, "count": 3}
    with pytest.raises(OutputError, match="not JSON serializable"):
        record("model", object())
    with pytest.raises(OutputError, match="letters, digits and _"):
        record("best config", 1)
