"""Images to [0, 1] float32 channel-first; standardization with training statistics."""

from __future__ import annotations

import numpy as np
import pytest

from deepsad.data.preprocessing import Standardizer, feature_mean_and_scale, images_to_unit_float
from deepsad.errors import InvalidInputError


def test_uint8_images():
    images = np.array([[[0, 255], [128, 1]]], dtype=np.uint8)
    out = images_to_unit_float(images)
    assert out.shape == (1, 1, 2, 2) and out.dtype == np.float32 and out.flags.c_contiguous
    assert out.max() == 1.0 and out.min() == 0.0 and out[0, 0, 1, 0] == np.float32(128) / np.float32(255)


def test_channels_last_and_float_images():
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    out = images_to_unit_float(images, channels_last=True)
    assert out.shape == (2, 3, 4, 5)
    assert np.allclose(out[1, 2], images[1, :, :, 2] / 255)
    floats = np.full((1, 1, 2, 2), 0.5)
    assert images_to_unit_float(floats).dtype == np.float32
    with pytest.raises(InvalidInputError, match=r"must hold values in \[0, 1\]"):
        images_to_unit_float(floats * 3)
    with pytest.raises(InvalidInputError, match="unsigned integers"):
        images_to_unit_float(np.zeros((1, 2, 2), dtype=np.int16))
    with pytest.raises(InvalidInputError, match="shape"):
        images_to_unit_float(np.zeros((2, 2)))


def test_standardizer_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 2, (200, 3))
    train[:, 2] = 7.0  # constant feature
    test = rng.normal(50, 10, (20, 3))
    scaler = Standardizer().fit(train)
    Z = scaler.transform(train)
    assert np.allclose(Z[:, :2].mean(0), 0) and np.allclose(Z[:, :2].std(0), 1)
    assert np.all(Z[:, 2] == 0)
    assert np.allclose(scaler.transform(test), (test - train.mean(0)) / np.where(train.std(0) > 0, train.std(0), 1))
    with pytest.raises(InvalidInputError, match="fitted on 3"):
        scaler.transform(test[:, :2])
    with pytest.raises(InvalidInputError, match="not fitted"):
        Standardizer().transform(test)
    with pytest.raises(InvalidInputError, match="NaN"):
        Standardizer().fit(np.array([[np.nan]]))


def test_standardizer_minmax_after():
    train = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    scaler = Standardizer(minmax=True)
    Z = scaler.fit_transform(train)
    assert np.allclose(Z.min(0), 0) and np.allclose(Z.max(0), 1)
    assert np.allclose(scaler.transform([[6.0, 1.0]]), [[1.5, 0.0]])


def test_a_feature_constant_up_to_rounding_counts_as_constant():
    """One repeated value has a computed std of ~1e-16, not 0 (cardio's table6 splits have such a
    feature); scaling by it would turn any other test value into ~1e16."""
    X = np.column_stack([np.full(1098, -0.49329397), np.linspace(0.0, 1.0, 1098)])
    assert 0 < X[:, 0].std() < 1e-15
    mean, scale = feature_mean_and_scale(X)
    assert scale[0] == 1.0 and scale[1] == pytest.approx(X[:, 1].std())
    standardizer = Standardizer().fit(X)
    test = standardizer.transform(np.array([[1.14001753, 0.5]]))
    assert abs(test[0, 0]) < 2 and np.all(np.isfinite(test))
    # a real, if small, spread stays a spread
    tiny = np.column_stack([np.linspace(0.0, 1e-9, 100), np.zeros(100)])
    assert feature_mean_and_scale(tiny)[1][0] == pytest.approx(tiny[:, 0].std())


@pytest.mark.parametrize("make", ["deepsad", "ocsvm"])
def test_detectors_standardize_near_constant_features_safely(make):
    from deepsad.methods import make_detector

    rng = np.random.default_rng(0)
    X = np.column_stack([np.full(300, -0.49329397), rng.normal(size=(300, 3))]).astype(np.float64)
    params = {"epochs": 1, "n_networks": 1, "device": "cpu"} if make == "deepsad" else {}
    est = make_detector(make, {**params, "standardize": True}).fit(X)
    assert est.scaler_scale_[0] == 1.0
    shifted = X[:5].copy()
    shifted[:, 0] = 1.14001753
    assert np.all(np.isfinite(est.anomaly_score(shifted)))
    if make == "deepsad":  # a ~1e16 input would give a ~1e15 distance
        assert np.all(est.anomaly_score(shifted) < 1e3)
