"""Baseline model files saved by an earlier deepsad load and score as when they were saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import deepsad

MODELS = Path(__file__).parent / "data" / "saved_models"
EXPECTED = json.loads((MODELS / "expected_scores.json").read_text())
#: the class each file holds
CLASSES = {
    "ocsvm": "OCSVM",
    "iforest": "IsolationForestDetector",
    "kde": "KDEDetector",
    "ssad": "SSAD",
    "cae": "CAE",
    "supervised": "SupervisedClassifier",
    "ssdgm": "SSDGM",
    "devnet": "DevNet",
    "hybrid": "Hybrid",
}
#: the kernel, density and tree methods compute in float64 from stored float64 values
SHALLOW = {"ocsvm", "iforest", "kde", "ssad"}


def _training_data() -> np.ndarray:
    """The data the models were fitted on (see the README next to the files)."""
    rng = np.random.default_rng(23)
    return (rng.normal(size=(60, 4)) * 2 + 1).astype(np.float32)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_a_saved_baseline_loads_and_scores_as_saved(name: str) -> None:
    model = deepsad.load(MODELS / name)
    assert type(model).__name__ == CLASSES[name]
    assert model.scaler_mean_ is not None  # every file exercises the saved standardizer
    scores = model.anomaly_score(_training_data())
    if name in SHALLOW:
        np.testing.assert_array_equal(scores, EXPECTED[name])
    else:
        # the same computation; only a different CPU's kernels could round differently
        np.testing.assert_allclose(scores, EXPECTED[name], rtol=1e-5, atol=1e-6)
