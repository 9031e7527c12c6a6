"""Gaussian kernel density estimation as an anomaly detector (score = negative log-density).

Following the paper (Appendix E, after Ruff et al. 2018) the bandwidth ``h`` is chosen
from ``{2^0.5, 2^1, ..., 2^5}`` by 5-fold cross-validated log-likelihood of the training
data, with :class:`sklearn.neighbors.KernelDensity` and
:class:`sklearn.model_selection.GridSearchCV`. That choice is part of the estimator as
the paper defines it (an unsupervised density-fitting rule, like Scott's rule, using no
labels and no test data), so ``bandwidth="cv"`` runs it inside ``fit`` and records the
grid's mean held-out log-likelihoods in ``cv_log_likelihood_``; a number fixes ``h``.
The step itself is :func:`select_bandwidth`, usable on its own.

Scoring keeps the training samples and ``h`` and evaluates

    log p(x) = logsumexp_i(-||x - x_i||^2 / (2 h^2)) - log n - (d / 2) log(2 pi h^2)

block-wise in float64 — the exact Gaussian KDE, equal to ``KernelDensity.score_samples``
(checked by a unit test) and restorable from plain arrays.

Labels are not used; ``drop_labeled_anomalies=True`` removes samples labeled as
anomalies from the training set instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity

from deepsad.baselines._base import BaseShallowDetector, check_positive_number
from deepsad.baselines.kernels import row_blocks, squared_distances
from deepsad.detectors.estimator_base import check_bool
from deepsad.detectors.scoring import check_contamination
from deepsad.errors import InvalidInputError
from deepsad.validation import check_positive_int

logger = logging.getLogger(__name__)

#: The paper's bandwidth grid: 2^0.5, 2^1, ..., 2^5.
PAPER_KDE_BANDWIDTHS: tuple[float, ...] = tuple(float(2.0**e) for e in np.arange(0.5, 5.01, 0.5))


def check_bandwidth_grid(grid: Any) -> tuple[float, ...]:
    """A non-empty sequence of positive finite bandwidths."""
    try:
        values = tuple(float(h) for h in grid)
    except (TypeError, ValueError):
        raise InvalidInputError(f"bandwidth_grid must be a sequence of positive numbers, got {grid!r}") from None
    if not values or any(not np.isfinite(h) or h <= 0 for h in values):
        raise InvalidInputError(f"bandwidth_grid must be a non-empty sequence of positive numbers, got {grid!r}")
    return values


def select_bandwidth(
    X: np.ndarray, grid: Sequence[float] = PAPER_KDE_BANDWIDTHS, *, cv: int = 5, random_state: Any = None
) -> tuple[float, dict[float, float]]:
    """Choose a Gaussian KDE bandwidth by k-fold cross-validated log-likelihood.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
        Training samples (no labels are used).
    grid : sequence of float
        Candidate bandwidths.
    cv : int, default=5
        Number of folds (shuffled with ``random_state``).
    random_state : int, RandomState or None
        Seeds the fold assignment.

    Returns
    -------
    bandwidth : float
        The candidate with the highest mean held-out log-likelihood (the first one on ties).
    mean_log_likelihood : dict
        Mean held-out log-likelihood per sample for each candidate.
    """
    grid = check_bandwidth_grid(grid)
    cv = check_positive_int("cv", cv)
    if cv < 2 or cv > X.shape[0]:
        raise InvalidInputError(f"cv must be between 2 and the number of samples ({X.shape[0]}), got {cv}")
    folds = KFold(n_splits=cv, shuffle=True, random_state=random_state)
    search = GridSearchCV(KernelDensity(kernel="gaussian"), {"bandwidth": list(grid)}, cv=folds, refit=False)
    search.fit(X)
    # KernelDensity.score is the summed log-likelihood of a held-out fold; per sample is comparable across grids
    fold_size = X.shape[0] / cv
    means = {float(h): float(s) / fold_size for h, s in zip(grid, search.cv_results_["mean_test_score"])}
    best = float(grid[int(search.best_index_)])
    logger.debug("KDE bandwidth %.4g selected by %d-fold CV from %s", best, cv, grid)
    return best, means


class KDEDetector(BaseShallowDetector):
    """Gaussian kernel density estimator; anomaly score = negative log-density.

    Higher scores are more anomalous. ``fit(X, y)`` validates the semi-labels and then
    ignores them unless ``drop_labeled_anomalies``.

    Parameters
    ----------
    bandwidth : "cv" or float, default="cv"
        Kernel bandwidth ``h``. ``"cv"`` picks it from ``bandwidth_grid`` by ``cv``-fold
        cross-validated log-likelihood of the training data (the paper's rule).
    bandwidth_grid : sequence of float or None, default=None
        Candidates for ``bandwidth="cv"``; None is the paper's grid
        :data:`PAPER_KDE_BANDWIDTHS` (2^0.5, 2^1, ..., 2^5).
    cv : int, default=5
        Folds for ``bandwidth="cv"``.
    drop_labeled_anomalies : bool, default=False
        Train without the samples labeled as anomalies (``y == -1``).
    standardize : bool, default=False
        Standardize features with the training mean and standard deviation (stored
        with the model and applied at scoring time).
    contamination : "auto" or float in (0, 0.5], default="auto"
        A density has no natural boundary: ``"auto"`` flags the top 10% of training
        scores; a fraction flags that share.
    random_state : int, RandomState or None, default=None
        Seeds the cross-validation folds.

    Attributes
    ----------
    bandwidth_ : float
        The bandwidth used.
    cv_log_likelihood_ : dict or None
        Mean held-out log-likelihood per sample for each candidate bandwidth
        (``None`` when ``bandwidth`` was given).
    X_train_ : numpy.ndarray of shape (n_train, n_features)
        The samples the density is built on.
    """

    def __init__(
        self,
        *,
        bandwidth: float | str = "cv",
        bandwidth_grid: Sequence[float] | None = None,
        cv: int = 5,
        drop_labeled_anomalies: bool = False,
        standardize: bool = False,
        contamination: float | str = "auto",
        random_state: Any = None,
    ) -> None:
        self.bandwidth = bandwidth
        self.bandwidth_grid = bandwidth_grid
        self.cv = cv
        self.drop_labeled_anomalies = drop_labeled_anomalies
        self.standardize = standardize
        self.contamination = contamination
        self.random_state = random_state

    def _check_params(self) -> None:
        if isinstance(self.bandwidth, str):
            if self.bandwidth != "cv":
                raise InvalidInputError(f"bandwidth must be 'cv' or a positive number, got {self.bandwidth!r}")
        else:
            check_positive_number("bandwidth", self.bandwidth)
        self._grid()
        check_positive_int("cv", self.cv)
        check_bool("drop_labeled_anomalies", self.drop_labeled_anomalies)
        check_contamination(self.contamination)

    def _grid(self) -> tuple[float, ...]:
        return PAPER_KDE_BANDWIDTHS if self.bandwidth_grid is None else check_bandwidth_grid(self.bandwidth_grid)

    fitted_attribute = "X_train_"

    def _fit_samples(self, X: np.ndarray, semi_labels: np.ndarray, **fit_params: Any) -> None:
        """Keep the training samples and choose (or take) the bandwidth."""
        X_train = self._unsupervised_training_set(X, semi_labels, self.drop_labeled_anomalies)
        if self.bandwidth == "cv":
            self.bandwidth_, self.cv_log_likelihood_ = select_bandwidth(
                X_train, self._grid(), cv=self.cv, random_state=self.random_state
            )
        else:
            self.bandwidth_, self.cv_log_likelihood_ = float(self.bandwidth), None
        self.X_train_ = np.ascontiguousarray(X_train)

    def log_density(self, X: Any) -> np.ndarray:
        """Log of the estimated density at each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples,), dtype float64
        """
        return -self.anomaly_score(X)

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        n, d = self.X_train_.shape
        h = self.bandwidth_
        log_norm = np.log(n) + 0.5 * d * np.log(2.0 * np.pi * h * h)
        train_sq = np.einsum("ij,ij->i", self.X_train_, self.X_train_)
        out = np.empty(X.shape[0])
        for block in row_blocks(X.shape[0], n):
            exponent = squared_distances(X[block], self.X_train_, train_sq)
            exponent *= -0.5 / (h * h)
            out[block] = log_norm - logsumexp(exponent, axis=1)
        return out

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        # a bandwidth whose held-out likelihood underflowed has -inf, which JSON cannot hold
        cv = (
            None
            if self.cv_log_likelihood_ is None
            else [[h, v if np.isfinite(v) else None] for h, v in self.cv_log_likelihood_.items()]
        )
        return {"X_train": self.X_train_}, {"bandwidth": self.bandwidth_, "cv_log_likelihood": cv}

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.X_train_ = np.ascontiguousarray(arrays["X_train"], dtype=np.float64)
        self.bandwidth_ = float(meta["bandwidth"])
        cv = meta.get("cv_log_likelihood")
        self.cv_log_likelihood_ = None if cv is None else {float(h): -np.inf if v is None else float(v) for h, v in cv}
