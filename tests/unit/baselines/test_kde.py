"""KDE: the exact Gaussian density, bandwidth by cross-validated likelihood."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KernelDensity

from deepsad.baselines import KDEDetector
from deepsad.baselines.kde import PAPER_KDE_BANDWIDTHS, select_bandwidth
from deepsad.errors import InvalidInputError


def test_paper_grid():
    np.testing.assert_allclose(PAPER_KDE_BANDWIDTHS, 2.0 ** np.arange(0.5, 5.01, 0.5))


def test_log_density_equals_sklearn(cardio):
    model = KDEDetector(bandwidth=2.0).fit(cardio.X_train)
    reference = KernelDensity(kernel="gaussian", bandwidth=2.0).fit(cardio.X_train.astype(np.float32).astype(np.float64))
    expected = reference.score_samples(cardio.X_test.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(model.log_density(cardio.X_test), expected, rtol=1e-7)
    np.testing.assert_allclose(model.anomaly_score(cardio.X_test), -expected, rtol=1e-7)
    assert model.cv_log_likelihood_ is None


def test_cv_bandwidth_is_the_best_of_the_grid(blobs):
    X, _ = blobs
    model = KDEDetector(bandwidth="cv", random_state=0).fit(X)
    assert model.bandwidth_ in PAPER_KDE_BANDWIDTHS
    assert set(model.cv_log_likelihood_) == set(PAPER_KDE_BANDWIDTHS)
    assert model.cv_log_likelihood_[model.bandwidth_] == max(model.cv_log_likelihood_.values())
    best, scores = select_bandwidth(X, PAPER_KDE_BANDWIDTHS, cv=5, random_state=0)
    assert best == model.bandwidth_ and scores == model.cv_log_likelihood_


def test_narrow_data_prefers_the_smallest_bandwidth():
    rng = np.random.default_rng(1)
    X = rng.normal(scale=0.3, size=(200, 2))
    assert KDEDetector(bandwidth_grid=(0.1, 0.3, 10.0), random_state=0).fit(X).bandwidth_ < 10.0


@pytest.mark.parametrize("grid", [(), (1.0, -2.0), ("a",)])
def test_bad_bandwidth_grid(blobs, grid):
    with pytest.raises(InvalidInputError, match="bandwidth_grid"):
        KDEDetector(bandwidth_grid=grid).fit(blobs[0])


def test_contamination_auto_flags_ten_percent(blobs):
    X, _ = blobs
    model = KDEDetector(bandwidth=1.0).fit(X)
    assert np.mean(model.predict(X) == -1) == pytest.approx(0.1, abs=0.01)
