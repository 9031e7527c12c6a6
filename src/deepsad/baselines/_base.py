"""What the shallow baselines share: float64 samples, one ``fit`` and ``anomaly_score``.

Every shallow baseline is ``class X(BaseShallowDetector)``, a
:class:`~deepsad.detectors.estimator_base.BaseDetector` (validation, standardizer,
threshold, persistence) that computes in float64 on vectors and saves its
standardizer as JSON floats. A method supplies ``_check_params``, ``_fit_samples``
(its own training), ``_raw_scores`` (the anomaly score of validated samples) and the
persistence hooks; the class attributes ``fitted_attribute`` and ``natural_threshold``
say what marks it fitted and where its own boundary lies.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from deepsad.detectors.estimator_base import BaseDetector, check_bool
from deepsad.detectors.fit_time import timed_fit
from deepsad.errors import InvalidInputError

logger = logging.getLogger(__name__)


def check_positive_number(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0) as float, or an :class:`InvalidInputError` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


class BaseShallowDetector(BaseDetector):
    """Shared plumbing of the shallow baselines (not for direct use)."""

    # The shared validator casts to float32 (the deep detectors' precision); the kernel
    # and density computations then run in float64 on those values, both at fit and at
    # scoring time, so a restored model scores identically.
    compute_dtype = np.float64
    accepts_images = False
    scaler_storage = "metadata"

    #: The method's own boundary on the anomaly-score scale, used by ``contamination="auto"``;
    #: ``None``: the method has none and ``"auto"`` flags the top 10% of training scores.
    natural_threshold: ClassVar[float | None] = None

    # ------------------------------------------------------------------ hooks
    def _check_params(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_samples(self, X: np.ndarray, semi_labels: np.ndarray, **fit_params: Any) -> None:  # pragma: no cover
        """Train on validated (and standardized) float64 samples; set the fitted state."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fit and score
    @timed_fit
    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> BaseShallowDetector:
        """Fit the detector.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples (NaN/inf rejected).
        y : array-like of shape (n_samples,) or None
            Semi-labels: +1 labeled normal, -1 labeled anomaly, 0 unlabeled; ``None``
            means all unlabeled. A method whose ``uses_semi_labels`` is ``False``
            validates them and then ignores them, unless ``drop_labeled_anomalies``
            leaves the labeled anomalies out of its training set.
        **fit_params
            Method-specific (the OC-SVM's ``gram_memo``).

        Returns
        -------
        self
            The fitted detector.
        """
        self._check_params()
        X_np, semi_labels = self._validate_fit_input(X, y)
        self._fit_samples(X_np, semi_labels, **fit_params)
        self._set_threshold(lambda: self._raw_scores(X_np), natural_threshold=self.natural_threshold)
        return self

    # ------------------------------------------------------------------ input
    def _validate_fit_input(self, X: Any, y: Any, *, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """Validate ``X`` and the semi-labels; return standardized float64 samples and int8 labels."""
        check_bool("standardize", getattr(self, "standardize", False))
        X_np, semi_labels = self._validate_training_data(X, y, min_samples=min_samples)
        return self._fit_standardizer(X_np), semi_labels

    def _unsupervised_training_set(
        self, X: np.ndarray, semi_labels: np.ndarray, drop_labeled_anomalies: bool, *, min_samples: int = 2
    ) -> np.ndarray:
        """The rows an unsupervised method trains on: all of them, or all but labeled anomalies."""
        if not drop_labeled_anomalies:
            return X
        keep = semi_labels != -1
        if int(keep.sum()) < min_samples:
            raise InvalidInputError(
                f"drop_labeled_anomalies=True leaves {int(keep.sum())} training samples; "
                f"{type(self).__name__} needs at least {min_samples}"
            )
        logger.debug("%s: dropping %d labeled anomalies from training", type(self).__name__, int((~keep).sum()))
        return X[keep]
