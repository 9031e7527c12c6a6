"""Isolation Forest scored from flat tree arrays equals scikit-learn's score_samples."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from deepsad.baselines import IsolationForestDetector
from deepsad.baselines.iforest import average_path_length


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_scores_equal_sklearn_score_samples(cardio, max_features):
    ours = IsolationForestDetector(max_features=max_features, random_state=3).fit(cardio.X_train)
    theirs = IsolationForest(n_estimators=100, max_samples=256, max_features=max_features, random_state=3)
    theirs.fit(cardio.X_train.astype(np.float32))
    expected = -theirs.score_samples(cardio.X_test.astype(np.float32))
    np.testing.assert_allclose(ours.anomaly_score(cardio.X_test), expected, rtol=0, atol=1e-10)
    assert ours.tree_offsets_.size == 101 and ours.max_samples_ == 256


def test_paper_settings_are_the_defaults():
    model = IsolationForestDetector()
    assert model.n_estimators == 100 and model.max_samples == 256


def test_small_training_set_caps_the_subsample(blobs):
    X, _ = blobs
    model = IsolationForestDetector(random_state=0).fit(X[:50])
    assert model.max_samples_ == 50


def test_average_path_length_matches_the_original_definition():
    # c(n) = 2 H(n-1) - 2 (n-1) / n with H(i) = ln(i) + Euler's constant
    np.testing.assert_allclose(average_path_length(np.array([1, 2, 256])), [0.0, 1.0, 2 * (np.log(255) + np.euler_gamma) - 2 * 255 / 256])


def test_auto_threshold_is_one_half_and_scores_lie_in_unit_interval(blobs):
    X, y = blobs
    model = IsolationForestDetector(random_state=0).fit(X, y)
    scores = model.anomaly_score(X)
    assert model.threshold_ == 0.5
    assert np.all((scores > 0) & (scores <= 1))
    assert scores[:6].min() > np.median(scores[6:])  # the far-away points isolate early
