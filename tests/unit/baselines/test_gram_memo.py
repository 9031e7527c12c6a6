"""The shared Gram matrix of a kernel search: same solutions, fewer kernel evaluations."""

from __future__ import annotations

import numpy as np
import pytest

from deepsad.baselines import OCSVM, Hybrid
from deepsad.baselines.gram_memo import GramMemo
from deepsad.baselines.kernels import fill_rbf_gram, rbf_kernel
from deepsad.baselines.selection import PROTOCOL_PAPER, paper_test_subset, select_hyperparameters
from deepsad.detectors.scoring import AnomalyScoreMixin
from deepsad.errors import InvalidInputError

FAST_CAE = {"epochs": 3, "lr": 1e-3, "batch_size": 100, "device": "cpu", "standardize": True}


def test_the_gram_matrix_is_the_rbf_kernel_block_by_block():
    X = np.random.default_rng(0).normal(size=(700, 5))  # several row blocks of the scoring budget
    out = np.empty((700, 700))
    fill_rbf_gram(X, 0.3, out)
    np.testing.assert_allclose(out, rbf_kernel(X, X, 0.3), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.diag(out), 1.0)


def test_the_memo_reuses_squares_and_recomputes_as_it_should():
    X = np.random.default_rng(1).normal(size=(300, 4))
    memo = GramMemo()
    first = memo.gram(X, 0.125)
    assert memo.gram(X.copy(), 0.125) is first and memo.reused == 1  # keyed by content, not identity
    with pytest.raises(ValueError):
        first[0, 0] = 0.0  # read-only: one fit cannot spoil the next
    squared = memo.gram(X, 0.5)  # 4x gamma: two squarings in place
    assert memo.squared == 1 and memo.computed == 1
    np.testing.assert_allclose(squared, rbf_kernel(X, X, 0.5), rtol=1e-13, atol=1e-300)
    memo.gram(X, 0.3)  # not a power-of-two step: computed anew
    memo.gram(X[:200], 0.3)  # other data: computed anew
    assert memo.computed == 3
    memo.clear()
    assert memo.gram(X, 0.3) is not None and memo.computed == 4


def test_the_memo_declines_a_matrix_over_its_budget():
    X = np.zeros((100, 2))
    assert GramMemo(max_bytes=100 * 100 * 8 - 1).gram(X, 1.0) is None
    assert GramMemo(max_bytes=100 * 100 * 8).gram(X, 1.0) is not None
    for bad in (-1, 1.5, True, "1GB"):
        with pytest.raises(InvalidInputError, match="max_bytes"):
            GramMemo(max_bytes=bad)
    with pytest.raises(InvalidInputError, match="gram_memo"):
        OCSVM().fit(np.random.default_rng(0).normal(size=(20, 2)), gram_memo={})


@pytest.mark.slow
def test_ocsvm_with_the_memo_is_the_plain_fit(thyroid):
    X, y = thyroid.X_train, thyroid.semi_labels
    memo = GramMemo()
    for gamma in (2.0**-3, 2.0**-1, 2.0):  # the second and third come by squaring
        for nu in (0.05, 0.5):
            plain = OCSVM(gamma=gamma, nu=nu).fit(X, y)
            shared = OCSVM(gamma=gamma, nu=nu).fit(X, y, gram_memo=memo)
            np.testing.assert_array_equal(shared.support_vectors_, plain.support_vectors_)
            np.testing.assert_allclose(shared.dual_coef_, plain.dual_coef_, rtol=1e-9, atol=1e-12)
            assert shared.intercept_ == pytest.approx(plain.intercept_, rel=1e-9)
            np.testing.assert_allclose(
                shared.anomaly_score(thyroid.X_test), plain.anomaly_score(thyroid.X_test), rtol=1e-9, atol=1e-9
            )
            assert shared.threshold_ == plain.threshold_ == 0.0
    assert (memo.computed, memo.squared, memo.reused) == (1, 2, 3)


def test_ocsvm_dropping_labeled_anomalies_keys_the_memo_by_its_own_training_rows(thyroid):
    X, y = thyroid.X_train, thyroid.semi_labels
    memo = GramMemo()
    OCSVM(gamma=0.5, nu=0.1).fit(X, y, gram_memo=memo)
    plain = OCSVM(gamma=0.5, nu=0.1, drop_labeled_anomalies=True).fit(X, y)
    shared = OCSVM(gamma=0.5, nu=0.1, drop_labeled_anomalies=True).fit(X, y, gram_memo=memo)
    assert memo.computed == 2 and shared.n_train_ == plain.n_train_ < X.shape[0]
    np.testing.assert_array_equal(shared.support_vectors_, plain.support_vectors_)


def test_hybrid_hands_the_memo_to_its_ocsvm_only(data):
    X, y = data
    memo = GramMemo()
    plain = Hybrid(shallow="ocsvm", shallow_params={"gamma": 0.5}, cae_params=FAST_CAE, random_state=0).fit(X, y)
    shared = Hybrid(shallow="ocsvm", shallow_params={"gamma": 0.5}, cae_params=FAST_CAE, random_state=0)
    shared.fit(X, y, gram_memo=memo)
    assert memo.computed == 1
    np.testing.assert_allclose(shared.anomaly_score(X), plain.anomaly_score(X), rtol=1e-9, atol=1e-9)
    Hybrid(shallow="kde", cae_params=FAST_CAE, random_state=0).fit(X, y, gram_memo=memo)  # KDE takes none
    assert memo.computed == 1


def test_a_search_sharing_the_gram_matrix_selects_and_scores_like_one_without(cardio):
    split = paper_test_subset(cardio.y_test, fraction=0.1, random_state=0)
    X_select, y_select = cardio.X_test[split.select_indices], cardio.y_test[split.select_indices]
    grid = {"gamma": [2.0**-7, 2.0**-5, 2.0**-3, 2.0**-1], "nu": [0.01, 0.1, 0.5]}
    runs = [
        select_hyperparameters(OCSVM, grid, cardio.X_train, cardio.semi_labels, X_select, y_select,
                               protocol=PROTOCOL_PAPER, share_gram=share)
        for share in (False, True)
    ]
    plain, shared = runs
    assert shared.best_params == plain.best_params
    for a, b in zip(plain.scores_per_candidate, shared.scores_per_candidate):
        assert a["params"] == b["params"] and a["auc"] == pytest.approx(b["auc"], abs=1e-12)
    np.testing.assert_allclose(
        shared.best_estimator.anomaly_score(cardio.X_test), plain.best_estimator.anomaly_score(cardio.X_test),
        rtol=1e-9, atol=1e-9,
    )
    with pytest.raises(InvalidInputError, match="share_gram"):
        select_hyperparameters(OCSVM, grid, cardio.X_train, None, X_select, y_select,
                               protocol=PROTOCOL_PAPER, share_gram="yes")


class _Boundary(AnomalyScoreMixin):
    def __init__(self, contamination):
        self.contamination = contamination


def test_training_scores_are_computed_only_when_the_threshold_needs_them():
    calls = []

    def scores():
        calls.append(1)
        return np.arange(100.0)

    detector = _Boundary("auto")
    detector._set_threshold(scores, natural_threshold=0.0)
    assert detector.threshold_ == 0.0 and not calls
    detector = _Boundary(0.1)
    detector._set_threshold(scores, natural_threshold=0.0)
    assert detector.threshold_ == pytest.approx(np.percentile(np.arange(100.0), 90.0)) and calls == [1]
    detector._set_threshold(np.arange(100.0))  # an array still works
    assert detector.threshold_ == pytest.approx(89.1)
