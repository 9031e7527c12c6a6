"""The base class of the deep baselines (CAE, the supervised classifier, SS-DGM).

What these estimators share with Deep SAD: parameter validation, standardization, the
optimizer settings, scoring on the detector's device, and the parts of a saved model that
every one of them writes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin
from torch import nn

from deepsad.detectors.deep_base import BaseDeepDetector, DeviceTensorsMixin
from deepsad.detectors.scoring import AnomalyScoreMixin, check_contamination
from deepsad.errors import InvalidInputError
from deepsad.models import LeNetSpec, MLPSpec, default_spec, spec_from_dict, spec_to_dict
from deepsad.models.specs import as_network_param
from deepsad.training import make_generator, seed_from_random_state
from deepsad.validation import check_fraction, check_milestones, check_positive_int, check_semi_labels, check_X


class NetworkBaseline(DeviceTensorsMixin, AnomalyScoreMixin, OutlierMixin, BaseEstimator):
    """What the deep baselines share with Deep SAD: a base class, not an estimator by itself.

    The device, tensor-layout, standardization and scoring-batch helpers are Deep SAD's
    very functions (borrowed from :class:`BaseDeepDetector`, not copied), so that the
    baselines preprocess data exactly as Deep SAD does. Networks are built from specs
    only (``"auto"``, :class:`MLPSpec`, :class:`LeNetSpec` or their dict form).
    """

    network: Any
    epochs: int
    lr: float
    lr_milestones: Any
    weight_decay: float
    batch_size: int
    standardize: bool
    contamination: Any
    device: Any
    random_state: Any
    verbose: bool

    _fit_standardizer = BaseDeepDetector._fit_standardizer
    _standardized = BaseDeepDetector._standardized
    _resolve_output_activation = BaseDeepDetector._resolve_output_activation

    # ------------------------------------------------------------------ validation
    def _check_common_params(self) -> None:
        check_positive_int("epochs", self.epochs, allow_zero=True)
        check_positive_int("batch_size", self.batch_size)
        check_fraction("lr", self.lr, low=0.0, high=float("inf"), low_inclusive=False, high_inclusive=False)
        check_fraction(
            "weight_decay", self.weight_decay, low=0.0, high=float("inf"), low_inclusive=True, high_inclusive=False
        )
        check_milestones("lr_milestones", self.lr_milestones)
        check_contamination(self.contamination)
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise InvalidInputError(f"standardize must be True or False, got {self.standardize!r}")
        network = as_network_param(self.network)
        if isinstance(network, nn.Module) or not (network == "auto" or isinstance(network, (MLPSpec, LeNetSpec))):
            raise InvalidInputError(
                f"network must be 'auto' or an MLPSpec / LeNetSpec (or its dict) for {type(self).__name__}, "
                f"got {self.network!r}"
            )

    # the same epochs / lr / lr_milestones / weight_decay / batch_size parameters as the detectors,
    # and the same meaning of lr_milestones="auto"
    _optimizer_config = BaseDeepDetector._train_config
    tabular_recipe = BaseDeepDetector.tabular_recipe

    def _prepare_fit(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, torch.Generator]:
        """Validate and standardize; set ``spec_``; return samples, semi-labels and the generator."""
        X_np = check_X(self, X, reset=True, min_samples=2)
        semi_labels = check_semi_labels(y, X_np.shape[0])
        network = as_network_param(self.network)
        self.spec_ = default_spec(self.input_shape_) if network == "auto" else network
        X_np = self._fit_standardizer(X_np)
        self.n_labeled_normal_ = int((semi_labels == 1).sum())
        self.n_labeled_anomaly_ = int((semi_labels == -1).sum())
        return X_np, semi_labels, make_generator(seed_from_random_state(self.random_state))

    def _score_input(self, X: Any) -> np.ndarray:
        return self._standardized(check_X(self, X, reset=False))

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> Any:
        """Save the fitted detector to the directory ``path`` (safetensors weights + JSON).

        See :func:`deepsad.save`.
        """
        from deepsad.persistence import save

        return save(self, path)

    def _params_to_json(self) -> dict[str, Any]:
        params = self.get_params(deep=False)
        network = as_network_param(params["network"])
        if isinstance(network, (MLPSpec, LeNetSpec)):
            params["network"] = spec_to_dict(network)
        params["lr_milestones"] = list(check_milestones("lr_milestones", params["lr_milestones"]))
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # generator objects are not reproducible from JSON
        params["device"] = str(params["device"])
        return params

    def _common_arrays_meta(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {}
        if self.scaler_mean_ is not None:
            arrays["scaler_mean"], arrays["scaler_scale"] = self.scaler_mean_, self.scaler_scale_
        meta: dict[str, Any] = {
            "input_shape": list(self.input_shape_),
            "n_features_in": self.n_features_in_,
            "spec": spec_to_dict(self.spec_),
            "threshold": self.threshold_,
            "offset": self.offset_,
            "loss_history": self.loss_history_,
            "n_labeled_normal": self.n_labeled_normal_,
            "n_labeled_anomaly": self.n_labeled_anomaly_,
        }
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in"] = [str(name) for name in self.feature_names_in_]
        return arrays, meta

    def _import_common(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.input_shape_ = tuple(meta["input_shape"])
        self.n_features_in_ = int(meta["n_features_in"])
        self.spec_ = spec_from_dict(meta["spec"])
        self.scaler_mean_ = np.asarray(arrays["scaler_mean"]) if "scaler_mean" in arrays else None
        self.scaler_scale_ = np.asarray(arrays["scaler_scale"]) if "scaler_scale" in arrays else None
        self.threshold_ = float(meta["threshold"])
        self.offset_ = float(meta["offset"])
        self.loss_history_ = list(meta["loss_history"])
        self.n_labeled_normal_ = int(meta["n_labeled_normal"])
        self.n_labeled_anomaly_ = int(meta["n_labeled_anomaly"])
        if "feature_names_in" in meta:
            self.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
