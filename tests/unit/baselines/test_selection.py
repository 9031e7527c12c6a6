"""Hyperparameter selection: the two protocols, recorded; fallback; failures."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest

from deepsad.baselines import OCSVM, SSAD
from deepsad.baselines.selection import (
    FALLBACK_PARAMS,
    PAPER_GAMMAS,
    PAPER_OCSVM_GRID,
    PAPER_SSAD_GRID,
    PROTOCOL_PAPER,
    PROTOCOL_VALIDATION,
    paper_test_subset,
    select_hyperparameters,
    validation_split,
)
from deepsad.errors import InvalidInputError


class _FixedScorer:
    """A stand-in detector whose quality is set by its parameter ``quality``."""

    def __init__(self, *, quality: float) -> None:
        self.quality = quality

    def fit(self, X, y=None):
        return self

    def anomaly_score(self, X):
        truth = X[:, 0]
        noise = np.random.default_rng(0).normal(size=truth.size)
        return self.quality * truth + noise


def _toy_selection_set():
    truth = np.array([0] * 40 + [1] * 10)
    return truth[:, None].astype(float), truth


def test_paper_grids():
    assert PAPER_GAMMAS == tuple(2.0**k for k in range(-7, 3))
    assert PAPER_OCSVM_GRID["nu"] == (0.01, 0.05, 0.1, 0.2, 0.5)
    assert set(PAPER_SSAD_GRID) == {"gamma"}


def test_paper_test_subset_is_stratified_and_evaluates_on_the_full_test_set():
    truth = np.array([0] * 662 + [1] * 70)
    split = paper_test_subset(truth, fraction=0.1, random_state=0)
    assert split.protocol == PROTOCOL_PAPER
    assert truth[split.select_indices].sum() == 7 and split.select_indices.size == 73
    np.testing.assert_array_equal(split.evaluation_indices, np.arange(truth.size))
    excluded = paper_test_subset(truth, fraction=0.1, exclude_from_evaluation=True, random_state=0)
    assert np.intersect1d(excluded.select_indices, excluded.evaluation_indices).size == 0
    assert excluded.select_indices.size + excluded.evaluation_indices.size == truth.size
    # a rare class still contributes one sample, so the subset's AUC is defined
    assert paper_test_subset(np.array([0] * 30 + [1] * 2), random_state=0).select_indices.size == 4


def test_validation_split_is_disjoint_and_stratified_by_label():
    semi = np.array([0] * 90 + [-1] * 10)
    split = validation_split(semi, validation_fraction=0.2, random_state=0)
    assert split.protocol == PROTOCOL_VALIDATION
    assert np.intersect1d(split.fit_indices, split.validation_indices).size == 0
    assert split.fit_indices.size + split.validation_indices.size == semi.size
    assert split.validation_truth.sum() == 2 and split.validation_indices.size == 20
    np.testing.assert_array_equal(split.validation_truth, (semi[split.validation_indices] == -1).astype(np.int8))
    only_labeled = validation_split(np.array([0] * 50 + [1] * 10 + [-1] * 10), unlabeled="exclude", random_state=0)
    assert only_labeled.validation_indices.size == 4
    assert np.all(np.isin(only_labeled.validation_indices, np.arange(50, 70)))


def test_selection_keeps_the_best_candidate_and_records_everything():
    X, truth = _toy_selection_set()
    result = select_hyperparameters(
        _FixedScorer, {"quality": [0.0, 5.0, 1.0]}, X, None, X, truth, protocol=PROTOCOL_PAPER
    )
    assert result.best_params == {"quality": 5.0}
    assert result.protocol == PROTOCOL_PAPER and result.selected_on_test_data
    assert result.n_select == 50 and result.n_select_anomalies == 10
    assert [c["params"]["quality"] for c in result.scores_per_candidate] == [0.0, 5.0, 1.0]
    assert result.best_score == max(c["auc"] for c in result.scores_per_candidate)
    assert isinstance(result.best_estimator, _FixedScorer)
    record = json.loads(json.dumps(result.to_dict()))
    assert record["protocol"] == "paper-test-subset" and record["selected_on_test_data"] is True


def test_ties_go_to_the_first_candidate():
    X, truth = _toy_selection_set()
    result = select_hyperparameters(_FixedScorer, {"quality": [50.0, 60.0]}, X, None, X, truth, protocol=PROTOCOL_VALIDATION)
    assert result.best_params == {"quality": 50.0}
    assert not result.selected_on_test_data


def test_a_one_class_selection_set_falls_back_to_stated_defaults(cardio):
    X = cardio.X_train[:200]
    result = select_hyperparameters(
        OCSVM, PAPER_OCSVM_GRID, X, None, X, np.zeros(200, dtype=int),
        protocol=PROTOCOL_VALIDATION, fallback_params=FALLBACK_PARAMS["ocsvm"],
    )
    assert result.best_params == {"gamma": "scale", "nu": 0.1}
    assert "0 are anomalies" in result.fallback_reason and result.scores_per_candidate == ()
    assert result.to_dict()["fallback_reason"] == result.fallback_reason
    with pytest.raises(InvalidInputError, match="fallback_params"):
        select_hyperparameters(OCSVM, PAPER_OCSVM_GRID, X, None, X, np.zeros(200, dtype=int), protocol=PROTOCOL_VALIDATION)


@pytest.mark.slow
def test_failed_candidates_are_recorded_or_raised(blobs):
    X, y = blobs
    truth = (y == -1).astype(int)
    grid = {"max_iter": [1, 100], "gamma": [0.2]}
    result = select_hyperparameters(SSAD, grid, X, y, X, truth, protocol=PROTOCOL_VALIDATION, on_error="record")
    assert result.best_params["max_iter"] == 100
    failed = result.scores_per_candidate[0]
    assert failed["auc"] is None and "QPSolverError" in failed["error"]
    with pytest.raises(Exception, match="did not converge"):
        select_hyperparameters(SSAD, grid, X, y, X, truth, protocol=PROTOCOL_VALIDATION)


def test_bad_arguments(blobs):
    X, y = blobs
    truth = (y == -1).astype(int)
    with pytest.raises(InvalidInputError, match="protocol"):
        select_hyperparameters(OCSVM, {"nu": [0.1]}, X, None, X, truth, protocol="test")
    with pytest.raises(InvalidInputError, match="y_select"):
        select_hyperparameters(OCSVM, {"nu": [0.1]}, X, None, X, truth * 2, protocol=PROTOCOL_PAPER)
    with pytest.raises(InvalidInputError, match="fraction"):
        paper_test_subset(truth, fraction=1.5)


@pytest.mark.slow
def test_paper_protocol_end_to_end_on_cardio(cardio):
    split = paper_test_subset(cardio.y_test, fraction=0.1, random_state=0)
    X_select, y_select = cardio.X_test[split.select_indices], cardio.y_test[split.select_indices]
    grid = {"gamma": [2.0**-7, 2.0**-3, 2.0**1], "nu": [0.05, 0.2]}
    result = select_hyperparameters(
        partial(OCSVM, tol=1e-3), grid, cardio.X_train, cardio.semi_labels, X_select, y_select, protocol=split.protocol
    )
    assert result.protocol == "paper-test-subset" and result.n_select == split.select_indices.size
    assert len(result.scores_per_candidate) == 6
    scores = result.best_estimator.anomaly_score(cardio.X_test[split.evaluation_indices])
    assert scores.shape == (cardio.y_test.size,)


@pytest.mark.slow
def test_validation_protocol_end_to_end_on_cardio(odds_split):
    data = odds_split("cardio", gamma_l=0.05, seed=0)
    split = validation_split(data.semi_labels, validation_fraction=0.2, random_state=0)
    fit, val = split.fit_indices, split.validation_indices
    result = select_hyperparameters(
        SSAD, {"gamma": [2.0**-5, 2.0**-1]}, data.X_train[fit], data.semi_labels[fit],
        data.X_train[val], split.validation_truth, protocol=split.protocol,
        fallback_params=FALLBACK_PARAMS["ssad"],
    )
    assert result.fallback_reason is None and result.n_select_anomalies > 0
    assert result.to_dict()["selected_on_test_data"] is False
