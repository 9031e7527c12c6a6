"""ODDS .mat reader: MATLAB v5 and v7.3 (HDF5, transposed) files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from deepsad.data.odds import read_mat
from deepsad.errors import DataFileError


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 100, (10, 3)).astype(np.uint8)
    y = (rng.random((10, 1)) < 0.3).astype(np.uint8)
    return X, y


def test_v5(tmp_path, arrays):
    X, y = arrays
    scipy.io.savemat(tmp_path / "a.mat", {"X": X, "y": y})
    Xr, yr = read_mat(tmp_path / "a.mat")
    assert Xr.dtype == np.float64 and yr.dtype == np.int64
    assert np.array_equal(Xr, X) and np.array_equal(yr, y.ravel())


def test_v73_hdf5_is_transposed_back(tmp_path, arrays):
    X, y = arrays
    path = tmp_path / "b.mat"
    # MATLAB v7.3: 512-byte user block with a text header, column-major datasets
    with h5py.File(path, "w", userblock_size=512) as handle:
        handle["X"] = X.T.astype(np.float64)
        handle["y"] = y.T.astype(np.float64)
    with open(path, "r+b") as raw:
        raw.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")
    Xr, yr = read_mat(path)
    assert Xr.shape == (10, 3) and np.array_equal(Xr, X) and np.array_equal(yr, y.ravel())


def test_errors(tmp_path, arrays):
    X, y = arrays
    scipy.io.savemat(tmp_path / "noy.mat", {"X": X})
    with pytest.raises(DataFileError, match="lacks the variable"):
        read_mat(tmp_path / "noy.mat")
    scipy.io.savemat(tmp_path / "bady.mat", {"X": X, "y": y * 3})
    with pytest.raises(DataFileError, match="y must hold 0 .* and 1"):
        read_mat(tmp_path / "bady.mat")
    scipy.io.savemat(tmp_path / "short.mat", {"X": X, "y": y[:5]})
    with pytest.raises(DataFileError, match="X has 10 rows"):
        read_mat(tmp_path / "short.mat")
    with pytest.raises(DataFileError, match="not found"):
        read_mat(tmp_path / "absent.mat")
    blob = (tmp_path / "bady.mat").read_bytes()
    (tmp_path / "trunc.mat").write_bytes(blob[:150])
    with pytest.raises(DataFileError, match="truncated or corrupt|lacks"):
        read_mat(tmp_path / "trunc.mat")
