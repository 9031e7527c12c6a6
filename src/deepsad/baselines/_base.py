"""What the shallow baselines share: input handling, persistence plumbing, fit_predict.

Every baseline is ``class X(BaseShallowDetector)`` with ``BaseShallowDetector`` =
``(AnomalyScoreMixin, OutlierMixin, BaseEstimator)``, the same bases as the deep
detectors, so that ``score_samples`` / ``decision_function`` / ``predict`` come from
:class:`~deepsad.detectors.scoring.AnomalyScoreMixin` (higher anomaly score = more
anomalous) and the threshold from ``contamination``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin

from deepsad.detectors.scoring import AnomalyScoreMixin
from deepsad.data.preprocessing import feature_mean_and_scale
from deepsad.errors import InvalidInputError
from deepsad.validation import check_semi_labels, check_X

logger = logging.getLogger(__name__)


def check_bool(name: str, value: Any) -> bool:
    """A real ``bool`` (not a truthy string or number) or an :class:`InvalidInputError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_positive_number(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0) as float, or an :class:`InvalidInputError` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


class BaseShallowDetector(AnomalyScoreMixin, OutlierMixin, BaseEstimator):
    """Shared plumbing of the shallow baselines (not for direct use)."""

    contamination: Any

    # ------------------------------------------------------------------ input
    def _validate_fit_input(self, X: Any, y: Any, *, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """Validate ``X`` and the semi-labels; return float64 samples and int8 labels.

        The shared validator casts to float32 (the deep detectors' precision); the kernel
        and density computations then run in float64 on those values, both at fit and at
        scoring time, so a restored model scores identically.
        """
        standardize = check_bool("standardize", getattr(self, "standardize", False))
        X32 = check_X(self, X, reset=True, allow_nd=False, min_samples=min_samples)
        semi_labels = check_semi_labels(y, X32.shape[0])
        self.n_labeled_normal_ = int(np.sum(semi_labels == 1))
        self.n_labeled_anomaly_ = int(np.sum(semi_labels == -1))
        X64 = X32.astype(np.float64)
        self.scaler_mean_ = self.scaler_scale_ = None
        if standardize:
            # training statistics only; constant features get scale 1 so they map to 0
            self.scaler_mean_, self.scaler_scale_ = feature_mean_and_scale(X64)
        return self._standardized(X64), semi_labels

    def _validate_score_input(self, X: Any) -> np.ndarray:
        return self._standardized(check_X(self, X, reset=False, allow_nd=False).astype(np.float64))

    def _standardized(self, X: np.ndarray) -> np.ndarray:
        if getattr(self, "scaler_mean_", None) is None:
            return X
        return (X - self.scaler_mean_) / self.scaler_scale_

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

    # ------------------------------------------------------------------ sklearn API
    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` (with semi-labels ``y``) and predict +1 / -1 for ``X``.

        scikit-learn's :meth:`OutlierMixin.fit_predict` would drop ``y``; the
        semi-supervised detectors need it passed on.
        """
        return self.fit(X, y, **kwargs).predict(X)

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> Any:
        """Save the fitted detector to the directory ``path`` (safetensors + JSON).

        See :func:`deepsad.persistence.save`.
        """
        from deepsad.persistence import save

        return save(self, path)

    def _params_to_json(self) -> dict[str, Any]:
        """``get_params()`` with tuples as lists and non-integer random states dropped."""
        params = self.get_params(deep=False)
        for key, value in params.items():
            if isinstance(value, tuple):
                params[key] = list(value)
            elif isinstance(value, np.generic):
                params[key] = value.item()
        if "random_state" in params and not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # generator objects cannot be rebuilt from JSON
        return params

    def _common_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "n_features_in": int(self.n_features_in_),
            "input_shape": [int(s) for s in self.input_shape_],
            "threshold": float(self.threshold_),
            "offset": float(self.offset_),
            "n_labeled_normal": int(self.n_labeled_normal_),
            "n_labeled_anomaly": int(self.n_labeled_anomaly_),
        }
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in"] = [str(name) for name in self.feature_names_in_]
        if getattr(self, "scaler_mean_", None) is not None:
            # JSON floats round-trip float64 exactly (shortest repr), so scores are unchanged
            meta["scaler_mean"] = [float(v) for v in self.scaler_mean_]
            meta["scaler_scale"] = [float(v) for v in self.scaler_scale_]
        return meta

    def _restore_common(self, meta: dict[str, Any]) -> None:
        self.n_features_in_ = int(meta["n_features_in"])
        self.input_shape_ = tuple(int(s) for s in meta["input_shape"])
        self.threshold_ = float(meta["threshold"])
        self.offset_ = float(meta["offset"])
        self.n_labeled_normal_ = int(meta["n_labeled_normal"])
        self.n_labeled_anomaly_ = int(meta["n_labeled_anomaly"])
        if "feature_names_in" in meta:
            self.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        self.scaler_mean_ = self.scaler_scale_ = None
        if "scaler_mean" in meta:
            self.scaler_mean_ = np.asarray(meta["scaler_mean"], dtype=np.float64)
            self.scaler_scale_ = np.asarray(meta["scaler_scale"], dtype=np.float64)
