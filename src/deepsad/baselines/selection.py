"""Hyperparameter selection for the kernel baselines, as an explicit, recorded step.

Nothing here runs inside an estimator's ``fit``: an experiment first builds a selection
set, then calls :func:`select_hyperparameters`, then fits (or takes) the chosen model.
Every :class:`SelectionResult` records the protocol it was obtained with, so a result
selected on test data can never pass for an honest one.

Two protocols
-------------
``"paper-test-subset"`` (:func:`paper_test_subset`)
    The paper's (Appendix E): candidates are trained on the training set and the one
    with the highest AUC on a stratified 10% subset of the *test* set is kept — a
    deliberate advantage granted to OC-SVM and SSAD "to establish a strong baseline".
    The paper then reports AUC on the full test set, subset included; that is the
    default here (``exclude_from_evaluation=False``), so numbers are comparable with
    its Tables 3-6. ``exclude_from_evaluation=True`` reports AUC on the other 90% only,
    which removes the direct overlap (the choice itself still saw test data).
    For the OC-SVM the paper selects gamma on the subset separately for each nu and
    then reports "the best final result" over nu, i.e. picks nu on the full test set;
    here (gamma, nu) are selected jointly on the subset, so nu is never chosen on the
    evaluation data itself.

``"train-validation"`` (:func:`validation_split`)
    The honest alternative: a stratified part of the *training* set is held out,
    candidates are trained on the rest, and scored by AUC against the only ground truth
    a user has: labeled anomalies count as anomalies, labeled normals as normal, and
    unlabeled samples as normal (``unlabeled="normal"``, the usual "mostly normal"
    assumption) or are left out (``unlabeled="exclude"``). AUC needs both classes; when
    the validation part holds no labeled anomaly (e.g. ``gamma_l = 0``) the selection
    falls back to ``fallback_params`` (e.g. :data:`FALLBACK_PARAMS`), and the result
    says so in ``fallback_reason``. The chosen parameters are then refitted on the whole
    training set.

Ties are broken by grid order (the first best candidate wins), so results are
deterministic.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ParameterGrid
from sklearn.utils import check_random_state

from deepsad.baselines.gram_memo import GramMemo
from deepsad.errors import DeepSADError, InvalidInputError, TrainingError
from deepsad.validation import check_fraction, check_semi_labels

logger = logging.getLogger(__name__)

PROTOCOL_PAPER = "paper-test-subset"
PROTOCOL_VALIDATION = "train-validation"
PROTOCOLS = (PROTOCOL_PAPER, PROTOCOL_VALIDATION)

#: The paper's RBF grid, gamma in {2^-7, ..., 2^2}.
PAPER_GAMMAS: tuple[float, ...] = tuple(float(2.0**k) for k in range(-7, 3))
#: The paper's OC-SVM nu values.
PAPER_NUS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.5)
#: Appendix E grid of the OC-SVM: 10 gammas x 5 nus.
PAPER_OCSVM_GRID: dict[str, tuple[float, ...]] = {"gamma": PAPER_GAMMAS, "nu": PAPER_NUS}
#: Appendix E grid of SSAD (kappa = 1, Cp = Cu = Cn = 1 fixed).
PAPER_SSAD_GRID: dict[str, tuple[float, ...]] = {"gamma": PAPER_GAMMAS}
#: Stated defaults for a selection set without both classes: scikit-learn's "scale"
#: gamma (1 / (d Var X)) and, for the OC-SVM, nu = 0.1.
FALLBACK_PARAMS: dict[str, dict[str, Any]] = {"ocsvm": {"gamma": "scale", "nu": 0.1}, "ssad": {"gamma": "scale"}}


@dataclass(frozen=True)
class PaperSubsetSplit:
    """The paper's selection set: a stratified subset of the test set.

    Attributes
    ----------
    select_indices : numpy.ndarray of int64
        Test-set positions used to choose hyperparameters.
    evaluation_indices : numpy.ndarray of int64
        Test-set positions on which AUC is to be reported: all of them (the paper), or
        all but ``select_indices`` with ``exclude_from_evaluation``.
    excluded_from_evaluation : bool
    protocol : str
        Always ``"paper-test-subset"``.
    """

    select_indices: np.ndarray
    evaluation_indices: np.ndarray
    excluded_from_evaluation: bool
    protocol: str = PROTOCOL_PAPER


@dataclass(frozen=True)
class ValidationSplit:
    """The honest selection set: a stratified part of the training set.

    Attributes
    ----------
    fit_indices : numpy.ndarray of int64
        Training-set positions the candidates are fitted on.
    validation_indices : numpy.ndarray of int64
        Training-set positions they are scored on.
    validation_truth : numpy.ndarray of int8
        1 for labeled anomalies, 0 for labeled normals and (with ``unlabeled="normal"``)
        unlabeled samples; aligned with ``validation_indices``.
    unlabeled : str
        How unlabeled validation samples were treated: ``"normal"`` or ``"exclude"``.
    protocol : str
        Always ``"train-validation"``.
    """

    fit_indices: np.ndarray
    validation_indices: np.ndarray
    validation_truth: np.ndarray
    unlabeled: str
    protocol: str = PROTOCOL_VALIDATION


@dataclass(frozen=True)
class SelectionResult:
    """Outcome of :func:`select_hyperparameters`.

    Attributes
    ----------
    best_params : dict
        The chosen parameters (the fallback's when ``fallback_reason`` is set).
    scores_per_candidate : tuple of dict
        ``{"params": ..., "auc": float or None, "error": str or None}`` in grid order.
    protocol : str
        ``"paper-test-subset"`` (chosen on test data) or ``"train-validation"``.
    n_select : int
        Samples in the selection set.
    n_select_anomalies : int
        Anomalies (truth 1) among them.
    best_score : float or None
        AUC of the chosen candidate on the selection set (None on fallback).
    fallback_reason : str or None
        Why the fallback parameters were used, if they were.
    best_estimator : estimator or None
        The chosen candidate fitted on the fit data (not part of :meth:`to_dict`).
    """

    best_params: dict[str, Any]
    scores_per_candidate: tuple[dict[str, Any], ...]
    protocol: str
    n_select: int
    n_select_anomalies: int
    best_score: float | None = None
    fallback_reason: str | None = None
    best_estimator: Any = field(default=None, repr=False, compare=False)

    @property
    def selected_on_test_data(self) -> bool:
        """Whether test data influenced the choice (the paper's protocol)."""
        return self.protocol == PROTOCOL_PAPER

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record of the selection (everything but the estimator)."""
        return {
            "protocol": self.protocol,
            "selected_on_test_data": self.selected_on_test_data,
            "metric": "roc_auc",
            "best_params": _jsonable(self.best_params),
            "best_score": self.best_score,
            "n_select": self.n_select,
            "n_select_anomalies": self.n_select_anomalies,
            "fallback_reason": self.fallback_reason,
            "scores_per_candidate": [_jsonable(c) for c in self.scores_per_candidate],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _stratified_take(groups: np.ndarray, fraction: float, rng: np.random.RandomState, *, at_least_one: bool) -> np.ndarray:
    """Positions of a ``fraction`` of each group (rounded; optionally >= 1 per group)."""
    taken = []
    for value in np.unique(groups):
        members = np.flatnonzero(groups == value)
        k = int(math.floor(fraction * members.size + 0.5))
        if at_least_one:
            k = max(k, 1)
        k = min(k, members.size)
        taken.append(rng.permutation(members)[:k])
    return np.sort(np.concatenate(taken)).astype(np.int64) if taken else np.zeros(0, dtype=np.int64)


def _check_truth(y: Any, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise InvalidInputError(f"{name} must be one-dimensional, got shape {y.shape}")
    if y.size and (y.dtype.kind not in "biuf" or not np.all(np.isin(y, (0, 1)))):
        raise InvalidInputError(f"{name} must hold 0 (normal) and 1 (anomaly) only")
    return y.astype(np.int8)


def paper_test_subset(
    test_ground_truth: Any,
    *,
    fraction: float = 0.1,
    exclude_from_evaluation: bool = False,
    random_state: Any = None,
) -> PaperSubsetSplit:
    """The paper's selection set: a stratified ``fraction`` of the test set.

    Each class contributes ``round(fraction * count)`` samples, at least one, so the
    subset's AUC is defined whenever the test set has both classes.

    Parameters
    ----------
    test_ground_truth : array-like of 0/1, shape (n_test,)
        1 = anomaly.
    fraction : float in (0, 1), default=0.1
    exclude_from_evaluation : bool, default=False
        False (the paper): report AUC on the whole test set. True: report it on the
        samples not used for selection.
    random_state : int, RandomState or None

    Returns
    -------
    PaperSubsetSplit
    """
    truth = _check_truth(test_ground_truth, "test_ground_truth")
    fraction = check_fraction("fraction", fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    if not isinstance(exclude_from_evaluation, bool):
        raise InvalidInputError(f"exclude_from_evaluation must be True or False, got {exclude_from_evaluation!r}")
    rng = check_random_state(random_state)
    select = _stratified_take(truth, fraction, rng, at_least_one=True)
    everything = np.arange(truth.size, dtype=np.int64)
    evaluation = np.setdiff1d(everything, select) if exclude_from_evaluation else everything
    return PaperSubsetSplit(select_indices=select, evaluation_indices=evaluation, excluded_from_evaluation=exclude_from_evaluation)


def validation_split(
    train_semi_labels: Any,
    *,
    validation_fraction: float = 0.2,
    unlabeled: str = "normal",
    random_state: Any = None,
) -> ValidationSplit:
    """Hold out a stratified part of the training set for honest selection.

    Each semi-label group (unlabeled, labeled normal, labeled anomaly) contributes
    ``round(validation_fraction * count)`` samples, so a group of one (say a single
    labeled anomaly) stays in the fit part.

    Parameters
    ----------
    train_semi_labels : array-like of shape (n_train,)
        +1 labeled normal, -1 labeled anomaly, 0 unlabeled.
    validation_fraction : float in (0, 1), default=0.2
    unlabeled : {"normal", "exclude"}, default="normal"
        Ground truth of unlabeled validation samples: assumed normal, or not scored.
    random_state : int, RandomState or None

    Returns
    -------
    ValidationSplit
    """
    semi = check_semi_labels(np.asarray(train_semi_labels), int(np.asarray(train_semi_labels).shape[0]))
    fraction = check_fraction(
        "validation_fraction", validation_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    if unlabeled not in ("normal", "exclude"):
        raise InvalidInputError(f"unlabeled must be 'normal' or 'exclude', got {unlabeled!r}")
    rng = check_random_state(random_state)
    validation = _stratified_take(semi, fraction, rng, at_least_one=False)
    if unlabeled == "exclude":
        validation = validation[semi[validation] != 0]
    # with "exclude", unlabeled samples are never held out: they stay in the fit part
    fit = np.setdiff1d(np.arange(semi.size, dtype=np.int64), validation)
    truth = (semi[validation] == -1).astype(np.int8)
    return ValidationSplit(fit_indices=fit, validation_indices=validation, validation_truth=truth, unlabeled=unlabeled)


def select_hyperparameters(
    make_estimator: Callable[..., Any],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]],
    X_fit: Any,
    y_fit: Any,
    X_select: Any,
    y_select: Any,
    *,
    protocol: str,
    fallback_params: Mapping[str, Any] | None = None,
    on_error: str = "raise",
    keep_best: bool = True,
    share_gram: bool = True,
) -> SelectionResult:
    """Fit one candidate per grid point and keep the best AUC on a selection set.

    Parameters
    ----------
    make_estimator : callable
        ``make_estimator(**params)`` returns an unfitted detector, e.g. ``SSAD`` or
        ``functools.partial(OCSVM, tol=1e-4)``.
    grid : dict of lists, or list of such dicts
        Candidates, as for :class:`sklearn.model_selection.ParameterGrid`, e.g.
        :data:`PAPER_OCSVM_GRID`.
    X_fit, y_fit : training samples and their semi-labels (``y_fit`` may be None)
        What each candidate is fitted on.
    X_select : array-like of shape (n_select, n_features)
    y_select : array-like of 0/1, shape (n_select,)
        Ground truth of the selection samples, 1 = anomaly.
    protocol : {"paper-test-subset", "train-validation"}
        Where the selection samples come from; recorded in the result.
    fallback_params : dict, optional
        Used (and recorded) when the selection set lacks a class, so AUC is undefined.
        Without it that case raises :class:`InvalidInputError`.
    on_error : {"raise", "record"}, default="raise"
        What a candidate whose fit fails with a deepsad error (e.g. a QP that does not
        converge) does: stop the selection, or be recorded with its error and skipped.
    keep_best : bool, default=True
        Keep the best fitted candidate in ``best_estimator`` (saves a refit when the
        fit data are the final training data, as in the paper's protocol).
    share_gram : bool, default=True
        Candidates whose ``fit`` takes a ``gram_memo`` (``accepts_gram_memo``: the
        OC-SVM and hybrids on it) share one training Gram matrix through a
        :class:`~deepsad.baselines.gram_memo.GramMemo` while it fits half of the
        available memory: several times faster, the same solutions up to rounding.
        Candidates keep grid order, so ties are broken as without it.

    Returns
    -------
    SelectionResult
    """
    if protocol not in PROTOCOLS:
        raise InvalidInputError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if on_error not in ("raise", "record"):
        raise InvalidInputError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    if not isinstance(share_gram, bool):
        raise InvalidInputError(f"share_gram must be True or False, got {share_gram!r}")
    if not callable(make_estimator):
        raise InvalidInputError(f"make_estimator must be callable, got {make_estimator!r}")
    y_select = _check_truth(y_select, "y_select")
    candidates = list(ParameterGrid(grid))
    if not candidates:
        raise InvalidInputError("the hyperparameter grid is empty")
    n_anomalies = int(y_select.sum())
    n_select = int(y_select.size)
    if np.asarray(X_select).shape[0] != n_select:
        raise InvalidInputError(f"X_select has {np.asarray(X_select).shape[0]} samples but y_select has {n_select}")

    if n_anomalies == 0 or n_anomalies == n_select:
        reason = (
            f"the selection set ({protocol}) has {n_select} samples of which {n_anomalies} are anomalies; "
            "AUC needs both classes"
        )
        if fallback_params is None:
            raise InvalidInputError(reason + "; pass fallback_params to use stated defaults instead")
        logger.warning("%s: using fallback parameters %s", reason, dict(fallback_params))
        estimator = make_estimator(**fallback_params).fit(X_fit, y_fit) if keep_best else None
        return SelectionResult(
            best_params=dict(fallback_params),
            scores_per_candidate=(),
            protocol=protocol,
            n_select=n_select,
            n_select_anomalies=n_anomalies,
            fallback_reason=reason,
            best_estimator=estimator,
        )

    records: list[dict[str, Any]] = []
    best_auc, best_index, best_estimator = -np.inf, -1, None
    memo = GramMemo() if share_gram else None
    for index, params in enumerate(candidates):
        try:
            estimator = make_estimator(**params)
            if memo is not None and getattr(estimator, "accepts_gram_memo", False):
                estimator = estimator.fit(X_fit, y_fit, gram_memo=memo)
            else:
                estimator = estimator.fit(X_fit, y_fit)
            auc = float(roc_auc_score(y_select, estimator.anomaly_score(X_select)))
        except DeepSADError as error:
            if on_error == "raise":
                raise
            logger.warning("candidate %s failed: %s", params, error)
            records.append({"params": dict(params), "auc": None, "error": f"{type(error).__name__}: {error}"})
            continue
        records.append({"params": dict(params), "auc": auc, "error": None})
        logger.debug("candidate %s: AUC %.4f on %d selection samples", params, auc, n_select)
        if auc > best_auc:
            best_auc, best_index = auc, index
            best_estimator = estimator if keep_best else None
    if best_index < 0:
        raise TrainingError(f"every candidate of the grid failed; first error: {records[0]['error']}")
    return SelectionResult(
        best_params=dict(candidates[best_index]),
        scores_per_candidate=tuple(records),
        protocol=protocol,
        n_select=n_select,
        n_select_anomalies=n_anomalies,
        best_score=float(best_auc),
        best_estimator=best_estimator,
    )
