"""Real ODDS splits for the baseline tests, drawn with the data layer's scenario sampler."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from deepsad.data.loaders import load_odds
from deepsad.data.preprocessing import Standardizer
from deepsad.data.scenarios import sample_odds_scenario

from helpers import require_file


@dataclass(frozen=True)
class OddsSplit:
    """A standardized, disjoint 60:40 ODDS split with semi-labels for training."""

    X_train: np.ndarray
    semi_labels: np.ndarray  # +1 / 0 / -1
    X_test: np.ndarray
    y_test: np.ndarray  # 1 = anomaly


def _odds_split(data_root: Path, name: str, *, gamma_l: float, seed: int) -> OddsSplit:
    require_file(data_root / "odds" / f"{name}.mat")
    X, y = load_odds(name, data_root)
    draw = sample_odds_scenario(y, gamma_l=gamma_l, gamma_p=0.0, rng=np.random.default_rng(seed), seed=seed)
    scaler = Standardizer().fit(X[draw.train_indices])
    return OddsSplit(
        X_train=scaler.transform(X[draw.train_indices]),
        semi_labels=np.asarray(draw.train_semi_labels, dtype=np.int64),
        X_test=scaler.transform(X[draw.test_indices]),
        y_test=np.asarray(draw.test_ground_truth, dtype=np.int64),
    )


@pytest.fixture(scope="session")
def data():
    """Synthetic ``(X, y)`` for the deep baselines' unit tests: 150 samples in 6-D, scaled
    and shifted (so standardization matters); 3 far points labeled -1, 10 labeled +1."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6)).astype(np.float32) * 2.0 + 3.0
    X[:6] += 12.0 * rng.choice([-1.0, 1.0], size=(6, 6)).astype(np.float32)
    y = np.zeros(150, dtype=np.int64)
    y[:3] = -1
    y[100:110] = 1
    X.flags.writeable = False  # shared by modules: a test must not change it
    return X, y


@pytest.fixture(scope="session")
def odds_split(data_root):
    """Factory ``odds_split(name, gamma_l=0.01, seed=0)``, cached per session."""
    cache: dict[tuple, OddsSplit] = {}

    def get(name: str, *, gamma_l: float = 0.01, seed: int = 0) -> OddsSplit:
        key = (name, gamma_l, seed)
        if key not in cache:
            cache[key] = _odds_split(Path(data_root), name, gamma_l=gamma_l, seed=seed)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def cardio(odds_split) -> OddsSplit:
    return odds_split("cardio")


@pytest.fixture(scope="session")
def thyroid(odds_split) -> OddsSplit:
    return odds_split("thyroid")


@pytest.fixture(scope="session")
def blobs():
    """Small synthetic data: a Gaussian blob of normals plus six isolated far-away anomalies."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    # six isolated anomalies, each far out along its own direction
    directions = np.concatenate([np.eye(4), -np.eye(4)])[:6]
    X[:6] = 0.3 * X[:6] + 6.0 * directions
    X = X.astype(np.float32).astype(np.float64)  # exactly what the validators keep
    y = np.zeros(150, dtype=np.int64)
    y[:3] = -1  # three of the six far points are labeled anomalies
    return X, y
