"""SSAD: reduction to the OC-SVM, use of labels, KKT recovery, the Nyström path, solver failures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from sklearn.svm import OneClassSVM

from deepsad.baselines import SSAD, QPSolverError
from deepsad.baselines.kernels import rbf_kernel
from deepsad.errors import InvalidInputError, TrainingError


@pytest.mark.slow
def test_without_labels_ssad_ranks_like_sklearn_ocsvm(cardio):
    # no labels: the dual is the OC-SVM's with Cu = 1 / (nu n)
    X, n, nu, gamma = cardio.X_train, cardio.X_train.shape[0], 0.1, 2.0**-5
    ssad = SSAD(gamma=gamma, Cu=1.0 / (nu * n)).fit(X)
    ocsvm = OneClassSVM(kernel="rbf", gamma=gamma, nu=nu, tol=1e-6).fit(X.astype(np.float32).astype(np.float64))
    rho = spearmanr(ssad.anomaly_score(cardio.X_test), -ocsvm.decision_function(cardio.X_test)).statistic
    assert rho >= 0.99
    # libsvm's solution is ours scaled by nu n: the offsets agree after rescaling
    assert ssad.rho_ * nu * n == pytest.approx(-float(ocsvm.intercept_[0]), rel=1e-3)
    assert ssad.margin_ == 0.0


@pytest.mark.slow
def test_labels_improve_auc_on_cardio(odds_split):
    split = odds_split("cardio", gamma_l=0.05, seed=0)
    assert (split.semi_labels == -1).sum() > 0
    gamma = 2.0**-5
    labeled = SSAD(gamma=gamma).fit(split.X_train, split.semi_labels)
    unlabeled = SSAD(gamma=gamma).fit(split.X_train)
    auc_labeled = roc_auc_score(split.y_test, labeled.anomaly_score(split.X_test))
    auc_unlabeled = roc_auc_score(split.y_test, unlabeled.anomaly_score(split.X_test))
    assert auc_labeled > auc_unlabeled + 0.02, (auc_labeled, auc_unlabeled)


def test_kkt_conditions_hold_on_free_support_vectors(blobs):
    X, y = blobs
    n = X.shape[0]
    model = SSAD(gamma=0.2, Cu=1.0 / (0.2 * n), Cn=0.05, kappa=0.05).fit(X, y)
    # rebuild f_w(x_i) on the training points from the stored expansion
    f = rbf_kernel(X, model.expansion_points_, model.gamma_) @ model.expansion_coef_
    # recover alpha per training point (support vectors are stored in training order)
    K = rbf_kernel(X, X, model.gamma_)
    signs = np.where(y == -1, -1.0, 1.0)
    alpha = np.zeros(n)
    rows = [int(np.flatnonzero(np.all(X == p, axis=1))[0]) for p in model.expansion_points_]
    alpha[rows] = model.expansion_coef_ * signs[rows]
    np.testing.assert_allclose(K @ (alpha * signs), f, atol=1e-8)
    upper = np.where(y == -1, 0.05, 1.0 / (0.2 * n))
    assert alpha.min() >= 0 and np.all(alpha <= upper + 1e-12)
    assert float(signs @ alpha) == pytest.approx(1.0, abs=1e-6)
    free = (alpha > 1e-2 * upper) & (alpha < (1 - 1e-2) * upper)  # clearly away from both bounds
    free_unlabeled = free & (y == 0)
    assert free_unlabeled.any()
    np.testing.assert_allclose(f[free_unlabeled], model.rho_, atol=1e-5)
    free_anomaly = free & (y == -1)
    if free_anomaly.any():
        np.testing.assert_allclose(model.rho_ - f[free_anomaly], model.margin_, atol=1e-5)
    # a sample clearly violating its margin sits at the upper bound, one clearly inside at 0
    margin = np.where(y == 0, 0.0, model.margin_)
    slack = signs * (f - model.rho_) - margin
    assert np.all(alpha[slack < -1e-4] > (1 - 1e-2) * upper[slack < -1e-4])
    assert np.all(alpha[slack > 1e-4] < 1e-2 * upper[slack > 1e-4])


def test_anomaly_score_is_the_negative_decision_function(blobs):
    X, y = blobs
    model = SSAD(gamma=0.2).fit(X, y)
    scores = model.anomaly_score(X)
    np.testing.assert_allclose(model.score_samples(X), -scores)
    assert model.threshold_ == 0.0  # contamination="auto" keeps the SVM boundary
    np.testing.assert_array_equal(model.predict(X), np.where(scores > 0, -1, 1))
    # labeled anomalies are pushed outside: they must score above every inlier
    assert scores[y == -1].min() > np.median(scores[y == 0])


@pytest.mark.slow
def test_working_set_path_is_the_exact_solution(cardio):
    X, y, gamma = cardio.X_train, cardio.semi_labels, 2.0**-5
    exact = SSAD(gamma=gamma).fit(X, y)
    chunked = SSAD(gamma=gamma, max_exact_samples=400, random_state=0).fit(X, y)
    assert exact.solver_ == "exact" and chunked.solver_ == "working-set"
    assert X.shape[0] > 400
    scores_exact, scores_chunked = exact.anomaly_score(cardio.X_test), chunked.anomaly_score(cardio.X_test)
    np.testing.assert_allclose(scores_chunked, scores_exact, atol=1e-4 * np.abs(scores_exact).max())
    assert spearmanr(scores_exact, scores_chunked).statistic > 0.999
    assert chunked.rho_ == pytest.approx(exact.rho_, rel=1e-4)


def test_working_set_refuses_more_support_vectors_than_it_can_hold(cardio):
    # a very local kernel makes most samples support vectors
    with pytest.raises(TrainingError, match="support vectors"):
        SSAD(gamma=4.0, max_exact_samples=100, random_state=0).fit(cardio.X_train, cardio.semi_labels)


@pytest.mark.slow
def test_nystroem_path_agrees_in_ranking_with_exact_solution(cardio):
    X, y, gamma = cardio.X_train, cardio.semi_labels, 2.0**-5
    exact = SSAD(gamma=gamma).fit(X, y)
    approx = SSAD(gamma=gamma, max_exact_samples=200, large_scale="nystroem", n_components=500, random_state=0).fit(X, y)
    assert approx.solver_ == "nystroem"
    assert approx.expansion_points_.shape[0] == 500
    rho = spearmanr(exact.anomaly_score(cardio.X_test), approx.anomaly_score(cardio.X_test)).statistic
    assert rho >= 0.97, rho
    auc_exact = roc_auc_score(cardio.y_test, exact.anomaly_score(cardio.X_test))
    auc_approx = roc_auc_score(cardio.y_test, approx.anomaly_score(cardio.X_test))
    assert auc_approx >= auc_exact - 0.02
    # every labeled sample is a landmark (there are fewer than n_components / 2)
    for row in X[y == -1].astype(np.float32).astype(np.float64):  # the validators keep float32 values
        assert np.any(np.all(approx.expansion_points_ == row, axis=1))


def test_nystroem_with_all_points_as_landmarks_is_the_exact_solution(blobs):
    X, y = blobs
    exact = SSAD(gamma=0.2).fit(X, y)
    full = SSAD(gamma=0.2, max_exact_samples=10, large_scale="nystroem", n_components=X.shape[0], random_state=0).fit(X, y)
    np.testing.assert_allclose(full.anomaly_score(X), exact.anomaly_score(X), atol=1e-5)


def test_non_convergence_is_reported_with_status_and_iterations(blobs):
    X, y = blobs
    with pytest.raises(QPSolverError, match=r"status 'unknown' after 1 iterations") as info:
        SSAD(gamma=0.2, max_iter=1).fit(X, y)
    assert isinstance(info.value, TrainingError)
    assert info.value.status == "unknown" and info.value.iterations == 1
    assert "primal infeasibility" in info.value.details


def test_infeasible_constraints_are_a_clear_error(blobs):
    X, y = blobs
    with pytest.raises(InvalidInputError, match="kappa=10"):
        SSAD(kappa=10.0).fit(X, y)  # 3 labeled samples with Cn = 1 cannot reach 10
    with pytest.raises(InvalidInputError, match="non-anomalous"):
        SSAD().fit(X[:3], y[:3])  # only labeled anomalies


def test_kappa_at_the_largest_labeled_mass_still_gives_a_unique_solution(blobs):
    # kappa = 1 with labeled normals only: all dual mass must sit on labeled samples and
    # (rho, gamma) would be a ray; kappa is nudged below and the result is stable
    X, _ = blobs
    y = np.zeros(X.shape[0], dtype=np.int64)
    y[6:60] = 1
    loose = SSAD(gamma=0.2, tol=1e-7).fit(X, y)
    tight = SSAD(gamma=0.2, tol=1e-9).fit(X, y)
    assert loose.kappa_ == pytest.approx(1.0 - 1e-3)
    assert loose.rho_ == pytest.approx(tight.rho_, rel=1e-3)
    np.testing.assert_allclose(loose.anomaly_score(X), tight.anomaly_score(X), atol=1e-4)
    assert SSAD(gamma=0.2, kappa=0.5).fit(X, y).kappa_ == 0.5


def test_a_single_labeled_anomaly_is_enough(blobs):
    X, _ = blobs
    y = np.zeros(X.shape[0], dtype=np.int64)
    y[0] = -1
    model = SSAD(gamma=0.2).fit(X, y)
    assert model.n_labeled_anomaly_ == 1
    assert model.anomaly_score(X[:1])[0] > 0


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": "auto"}, "gamma"),
        ({"kappa": -0.5}, "kappa"),
        ({"Cu": 0.0}, "Cu"),
        ({"Cn": float("nan")}, "Cn"),
        ({"Cp": "1"}, "Cp"),
        ({"max_iter": 0}, "max_iter"),
        ({"n_components": 2.5}, "n_components"),
        ({"max_exact_samples": -3}, "max_exact_samples"),
        ({"tol": 0}, "tol"),
        ({"large_scale": "subsample"}, "large_scale"),
        ({"contamination": 0.7}, "contamination"),
    ],
)
def test_bad_hyperparameters_name_the_parameter(blobs, params, name):
    X, y = blobs
    with pytest.raises(InvalidInputError, match=name):
        SSAD(**params).fit(X, y)
