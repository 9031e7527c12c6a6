"""Baseline model files of format 4 (the format before LeNet weights got their canonical
names) load and score as when they were saved.

The files are written here: each baseline is fitted and saved, and its model.json is
stamped as format 4 (the baselines' files of format 4 and 5 differ in nothing else).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import deepsad
from deepsad import persistence
from deepsad.baselines import CAE, OCSVM, SSAD, SSDGM, DevNet, Hybrid, IsolationForestDetector, KDEDetector, SupervisedClassifier

#: the kernel, density and tree methods compute in float64 from stored float64 values
SHALLOW = {"ocsvm", "iforest", "kde", "ssad"}
_NET = dict(epochs=2, batch_size=20, device="cpu", random_state=0)
MAKERS = {
    "ocsvm": lambda: OCSVM(standardize=True, contamination=0.1),
    "iforest": lambda: IsolationForestDetector(n_estimators=5, max_samples=16, standardize=True, random_state=0),
    "kde": lambda: KDEDetector(cv=3, standardize=True, random_state=0),
    "ssad": lambda: SSAD(standardize=True),
    "cae": lambda: CAE(standardize=True, **_NET),
    "supervised": lambda: SupervisedClassifier(standardize=True, **_NET),
    "ssdgm": lambda: SSDGM(variant="m1+m2", standardize=True, **_NET),
    "devnet": lambda: DevNet(standardize=True, **_NET),
    "hybrid": lambda: Hybrid(shallow="kde", shallow_params={"cv": 3},
                             cae_params=dict(epochs=2, batch_size=20, standardize=True), device="cpu", random_state=0),
}


def _training_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(23)
    X = (rng.normal(size=(60, 4)) * 2 + 1).astype(np.float32)
    y = np.zeros(60, dtype=np.int64)
    y[:3] = -1
    y[3:6] = 1
    return X, y


def stamp_format(directory: Path, version: int) -> None:
    """Rewrite a saved model's model.json as format ``version`` (its checksum renewed)."""
    config_path = directory / persistence.CONFIG_FILE
    content = json.loads(config_path.read_text())
    content.pop("content_sha256")
    content["format_version"] = version
    content["content_sha256"] = persistence._sha256(persistence._canonical(content).encode())
    config_path.write_text(persistence._canonical(content))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_a_format_4_baseline_file_loads_and_scores_as_saved(tmp_path: Path, name: str) -> None:
    X, y = _training_data()
    fitted = MAKERS[name]().fit(X, y)
    expected = fitted.anomaly_score(X)
    deepsad.save(fitted, tmp_path / name)
    stamp_format(tmp_path / name, 4)
    model = deepsad.load(tmp_path / name)
    assert persistence.read_config(tmp_path / name)["format_version"] == 4
    assert type(model) is type(fitted)
    assert model.scaler_mean_ is not None  # every file exercises the saved standardizer
    scores = model.anomaly_score(X)
    if name in SHALLOW:
        np.testing.assert_array_equal(scores, expected)
    else:
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
