"""The one base of deepsad's detectors: what every estimator does the same way.

Input validation for ``fit`` and scoring, the standardizer, the threshold from
``contamination`` (:class:`~deepsad.detectors.scoring.AnomalyScoreMixin`), parameters
as JSON and the parts of a saved model every detector writes live here once. A
detector class states what differs as class attributes (the float type it computes
in, whether it takes images, where its standardizer is saved, whether it uses the
semi-labels) and implements two persistence hooks for its own fitted state.

This module imports neither torch nor a detector, so that every estimator family can
derive from it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from deepsad.data.preprocessing import feature_mean_and_scale, standardize_features
from deepsad.detectors.scoring import AnomalyScoreMixin
from deepsad.errors import InvalidInputError
from deepsad.validation import check_semi_labels, check_X

#: Where a saved model keeps the standardizer's statistics (see ``BaseDetector.scaler_storage``).
SCALER_STORAGES = ("arrays", "metadata")


def check_bool(name: str, value: Any) -> bool:
    """A real ``bool`` (not a truthy string or number) or an :class:`InvalidInputError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def json_param(value: Any) -> Any:
    """A constructor parameter in a form JSON holds: tuples as lists, NumPy scalars as Python ones."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


class BaseDetector(AnomalyScoreMixin, OutlierMixin, BaseEstimator):
    """What every deepsad detector shares (a base class, not an estimator by itself).

    Subclasses define ``__init__`` (parameters only), ``fit`` (which calls
    :meth:`_validate_training_data`, optionally :meth:`_fit_standardizer`, and
    :meth:`_set_threshold`), :meth:`_raw_scores` (the anomaly score of validated,
    standardized samples, behind :meth:`anomaly_score`), :attr:`fitted_attribute` and
    the persistence hooks :meth:`_fitted_state` / :meth:`_restore_fitted_state`.
    """

    #: A fitted attribute: ``anomaly_score`` refuses to run before it exists.
    fitted_attribute: ClassVar[str]

    #: Whether ``fit`` learns from labeled samples. ``False``: the semi-labels are
    #: validated and every sample counts as unlabeled (a method may still leave the
    #: labeled anomalies out of its training set). Read by :mod:`deepsad.methods`.
    uses_semi_labels: ClassVar[bool] = False

    #: Whether ``fit`` and scoring accept images ``(n, c, h, w)`` besides vectors.
    accepts_images: ClassVar[bool] = True

    #: The float type validated samples are computed in, and that of the standardizer's
    #: statistics: float32 for networks, float64 for the kernel and density methods.
    compute_dtype: ClassVar[type[np.floating[Any]]] = np.float32

    #: Where a saved model keeps the standardizer's statistics: ``"arrays"`` (the
    #: safetensors file) or ``"metadata"`` (JSON floats, which round-trip float64 exactly).
    #: Part of the file format: a class keeps the place its saved models use.
    scaler_storage: ClassVar[str] = "arrays"

    contamination: Any
    standardize: Any

    # ------------------------------------------------------------------ scoring
    def anomaly_score(self, X: Any) -> np.ndarray:
        """The method's anomaly score (see the class description): higher = more anomalous.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, ...)
            Samples shaped like the training data (standardized internally if the
            detector standardized its training data).

        Returns
        -------
        numpy.ndarray of shape (n_samples,), dtype float64
        """
        check_is_fitted(self, self.fitted_attribute)
        return self._raw_scores(self._validate_scoring_data(X))

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Anomaly scores of samples validated and standardized by :meth:`_validate_scoring_data`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ input
    def _validate_training_data(self, X: Any, y: Any, *, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """Validate ``X`` and the semi-labels; record the input shape and label counts.

        Returns
        -------
        X : numpy.ndarray in :attr:`compute_dtype` (not standardized)
        semi_labels : numpy.ndarray of int8
        """
        X_np = check_X(self, X, reset=True, allow_nd=self.accepts_images, min_samples=min_samples)
        semi_labels = self._semi_labels(y, X_np.shape[0])
        self.n_labeled_normal_ = int(np.sum(semi_labels == 1))
        self.n_labeled_anomaly_ = int(np.sum(semi_labels == -1))
        return X_np.astype(self.compute_dtype, copy=False), semi_labels

    def _semi_labels(self, y: Any, n_samples: int) -> np.ndarray:
        """The validated semi-labels as int8 (a hook: a method may check more, or warn)."""
        return check_semi_labels(y, n_samples)

    def _validate_scoring_data(self, X: Any) -> np.ndarray:
        """Validate ``X`` against the training shape; return it standardized as in ``fit``."""
        X_np = check_X(self, X, reset=False, allow_nd=self.accepts_images)
        return self._standardized(X_np.astype(self.compute_dtype, copy=False))

    def _require_labeled_anomalies(self, n_samples: int, *, none_message: str, all_message: str) -> None:
        """Refuse a training set without labeled anomalies, or with nothing else (after validation)."""
        if self.n_labeled_anomaly_ == 0:
            raise InvalidInputError(none_message)
        if self.n_labeled_anomaly_ == n_samples:
            raise InvalidInputError(all_message)

    # ------------------------------------------------------------------ standardizer
    def _wants_standardization(self, X: np.ndarray) -> bool:
        """Whether to standardize this training data (the ``standardize`` parameter, a bool)."""
        return check_bool("standardize", getattr(self, "standardize", False))

    def _fit_standardizer(self, X: np.ndarray) -> np.ndarray:
        """Learn per-feature mean and scale from ``X`` when asked to; return ``X`` standardized.

        Constant features get scale 1 (see
        :func:`~deepsad.data.preprocessing.feature_mean_and_scale`); the statistics are
        kept in :attr:`compute_dtype` as ``scaler_mean_`` / ``scaler_scale_`` (``None``
        without standardization).
        """
        self.scaler_mean_ = self.scaler_scale_ = None
        if not self._wants_standardization(X):
            return X
        if X.ndim != 2:
            raise InvalidInputError("standardize=True applies to tabular (n, d) data only; scale images yourself")
        mean, scale = feature_mean_and_scale(X)
        self.scaler_mean_, self.scaler_scale_ = mean.astype(self.compute_dtype), scale.astype(self.compute_dtype)
        return self._standardized(X)

    def _standardized(self, X: np.ndarray) -> np.ndarray:
        if getattr(self, "scaler_mean_", None) is None:
            return X
        return standardize_features(X, self.scaler_mean_, self.scaler_scale_, dtype=self.compute_dtype)

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> Any:
        """Save the fitted detector to the directory ``path`` (safetensors + JSON).

        See :func:`deepsad.save`.
        """
        from deepsad.persistence import save  # persistence loads detector classes: import on use

        return save(self, path)

    def _params_to_json(self) -> dict[str, Any]:
        """``get_params()`` as JSON: tuples as lists, NumPy scalars as Python ones, devices
        as strings, and a random state that is not an integer as ``None`` (generator
        objects cannot be rebuilt from JSON)."""
        params = {key: json_param(value) for key, value in self.get_params(deep=False).items()}
        if "random_state" in params and not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None
        if "device" in params:
            params["device"] = str(params["device"])
        return params

    def _export_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and metadata of the fitted detector: the common part and the class's own."""
        arrays, meta = self._common_state()
        own_arrays, own_meta = self._fitted_state()
        return {**arrays, **own_arrays}, {**meta, **own_meta}

    def _import_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore what :meth:`_export_state` wrote."""
        self._restore_common(arrays, meta)
        self._restore_fitted_state(arrays, meta)

    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:  # pragma: no cover - abstract
        """The class's own fitted arrays and metadata (hook of :meth:`_export_state`)."""
        raise NotImplementedError

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:  # pragma: no cover
        """Restore :meth:`_fitted_state`'s part, after the common one (hook of :meth:`_import_state`)."""
        raise NotImplementedError

    def _common_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Shape, threshold, label counts, feature names and the standardizer."""
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {
            "input_shape": [int(s) for s in self.input_shape_],
            "n_features_in": int(self.n_features_in_),
            "threshold": float(self.threshold_),
            "offset": float(self.offset_),
            "n_labeled_normal": int(self.n_labeled_normal_),
            "n_labeled_anomaly": int(self.n_labeled_anomaly_),
        }
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in"] = [str(name) for name in self.feature_names_in_]
        if getattr(self, "scaler_mean_", None) is not None:
            if self.scaler_storage == "metadata":
                meta["scaler_mean"] = [float(v) for v in self.scaler_mean_]
                meta["scaler_scale"] = [float(v) for v in self.scaler_scale_]
            else:
                arrays["scaler_mean"], arrays["scaler_scale"] = self.scaler_mean_, self.scaler_scale_
        return arrays, meta

    def _restore_common(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.input_shape_ = tuple(int(s) for s in meta["input_shape"])
        self.n_features_in_ = int(meta["n_features_in"])
        self.threshold_ = float(meta["threshold"])
        self.offset_ = float(meta["offset"])
        self.n_labeled_normal_ = int(meta["n_labeled_normal"])
        self.n_labeled_anomaly_ = int(meta["n_labeled_anomaly"])
        if "feature_names_in" in meta:
            self.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        source = meta if self.scaler_storage == "metadata" else arrays
        self.scaler_mean_ = self.scaler_scale_ = None
        if "scaler_mean" in source:
            self.scaler_mean_ = np.asarray(source["scaler_mean"], dtype=self.compute_dtype)
            self.scaler_scale_ = np.asarray(source["scaler_scale"], dtype=self.compute_dtype)
