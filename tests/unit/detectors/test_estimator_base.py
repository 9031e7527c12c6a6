"""The estimator base every detector shares: standardizer, parameters as JSON, capabilities."""

from __future__ import annotations

import numpy as np

from deepsad.baselines import CAE, DevNet, Hybrid, IsolationForestDetector, KDEDetector, OCSVM, SSAD, SSDGM
from deepsad.baselines import SupervisedClassifier
from deepsad.detectors import DeepSAD, DeepSVDD
from deepsad.data.preprocessing import Standardizer, feature_mean_and_scale, standardize_features
from deepsad.detectors.estimator_base import BaseDetector


def test_every_baseline_derives_from_the_one_base():
    for cls in (OCSVM, IsolationForestDetector, KDEDetector, SSAD, CAE, SupervisedClassifier, SSDGM, DevNet, Hybrid):
        assert issubclass(cls, BaseDetector), cls


def test_the_deep_detectors_derive_from_it_too():
    for cls in (DeepSAD, DeepSVDD):
        assert issubclass(cls, BaseDetector) and cls.fitted_attribute == "network_", cls
        # one copy of each: scoring, standardizer and saved state come from the base
        for name in ("anomaly_score", "_fit_standardizer", "_standardized", "save", "_export_state", "_import_state"):
            assert getattr(cls, name) is getattr(BaseDetector, name), (cls, name)
    assert DeepSAD.uses_semi_labels and not DeepSVDD.uses_semi_labels


def test_a_deep_detector_saves_the_common_state_and_its_own():
    X = np.random.default_rng(2).normal(size=(40, 3)).astype(np.float32)
    svdd = DeepSVDD(epochs=1, n_networks=1, standardize=True, device="cpu", random_state=0).fit(X)
    assert svdd.scaler_mean_.dtype == np.float32
    arrays, meta = svdd._export_state()
    assert {"scaler_mean", "scaler_scale", "center"} <= set(arrays) and any(k.startswith("network.") for k in arrays)
    assert {"input_shape", "threshold", "n_labeled_anomaly", "spec", "loss_history", "radius"} <= set(meta)
    fresh = DeepSVDD(**svdd.get_params())
    fresh._import_state(arrays, meta)
    np.testing.assert_array_equal(fresh.anomaly_score(X), svdd.anomaly_score(X))


def test_one_standardizing_step_in_both_precisions():
    X = np.random.default_rng(0).normal(size=(30, 3)) * [1.0, 5.0, 0.0] + 2.0
    mean, scale = feature_mean_and_scale(X)
    np.testing.assert_array_equal(standardize_features(X, mean, scale), Standardizer().fit_transform(X))
    X32 = X.astype(np.float32)
    Z32 = standardize_features(X32, mean.astype(np.float32), scale.astype(np.float32), dtype=np.float32)
    assert Z32.dtype == np.float32
    np.testing.assert_array_equal(Z32, (X32 - mean.astype(np.float32)) / scale.astype(np.float32))


def test_a_shallow_detector_keeps_float64_statistics_and_a_deep_one_float32():
    X = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    kde = KDEDetector(bandwidth=1.0, standardize=True).fit(X)
    assert kde.scaler_mean_.dtype == np.float64
    _, meta = kde._export_state()
    assert "scaler_mean" in meta  # JSON floats: exact for float64
    cae = CAE(epochs=1, standardize=True, device="cpu", random_state=0).fit(X)
    assert cae.scaler_mean_.dtype == np.float32
    arrays, meta = cae._export_state()
    assert "scaler_mean" in arrays and "scaler_mean" not in meta


def test_parameters_as_json():
    params = IsolationForestDetector(n_estimators=np.int64(7), random_state=np.random.RandomState(0))._params_to_json()
    assert params["n_estimators"] == 7 and type(params["n_estimators"]) is int
    assert params["random_state"] is None  # a generator object cannot be rebuilt from JSON
    params = DevNet(hidden_sizes=(4, np.int64(2)), device="cpu")._params_to_json()
    assert params["hidden_sizes"] == [4, 2] and params["device"] == "cpu"
