"""Images to [0, 1] float32 channel-first; standardization with training statistics."""

from __future__ import annotations

import numpy as np
import pytest

from deepsad.data.preprocessing import Standardizer, images_to_unit_float
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
