"""OC-SVM: scores from plain arrays equal scikit-learn's, labels are ignored, boundary is libsvm's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import OneClassSVM

from deepsad.baselines import OCSVM


def test_scores_equal_sklearn_decision_function(cardio):
    X = cardio.X_train.astype(np.float32).astype(np.float64)
    ours = OCSVM(gamma=2.0**-4, nu=0.05).fit(cardio.X_train)
    theirs = OneClassSVM(kernel="rbf", gamma=2.0**-4, nu=0.05).fit(X)
    X_test = cardio.X_test.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(ours.anomaly_score(cardio.X_test), -theirs.decision_function(X_test), rtol=0, atol=1e-10)
    assert ours.support_vectors_.shape[0] == theirs.support_vectors_.shape[0]


def test_labels_are_validated_then_ignored(blobs):
    X, y = blobs
    with_labels = OCSVM(gamma=0.2).fit(X, y)
    without = OCSVM(gamma=0.2).fit(X)
    np.testing.assert_array_equal(with_labels.anomaly_score(X), without.anomaly_score(X))
    assert with_labels.n_train_ == X.shape[0] and with_labels.n_labeled_anomaly_ == 3


def test_drop_labeled_anomalies_trains_without_them(blobs):
    X, y = blobs
    model = OCSVM(gamma=0.2, drop_labeled_anomalies=True).fit(X, y)
    assert model.n_train_ == X.shape[0] - 3
    np.testing.assert_array_equal(
        model.anomaly_score(X), OCSVM(gamma=0.2).fit(X[y != -1]).anomaly_score(X)
    )


def test_auto_threshold_is_the_svm_boundary(blobs):
    X, _ = blobs
    model = OCSVM(gamma=0.2, nu=0.1).fit(X)
    assert model.threshold_ == 0.0
    np.testing.assert_array_equal(model.predict(X), OneClassSVM(gamma=0.2, nu=0.1).fit(X).predict(X))


def test_gamma_scale_matches_sklearn(blobs):
    X, _ = blobs
    model = OCSVM().fit(X)
    assert model.gamma_ == pytest.approx(1.0 / (X.shape[1] * X.var()))
