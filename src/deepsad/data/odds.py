"""Reader for ODDS ``.mat`` files (MATLAB v5 via SciPy, v7.3/HDF5 via h5py).

ODDS files hold ``X`` (n x d features) and ``y`` (n x 1 ground truth, 1 = outlier).
Dtypes differ between files (uint8, int16, float64), so both are cast here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepsad.errors import DataFileError


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(path))
    except OSError:
        return False


def _read_v5(path: Path) -> dict[str, np.ndarray]:
    import scipy.io

    try:
        content = scipy.io.loadmat(path)
    except (ValueError, TypeError, OSError, NotImplementedError, EOFError) as error:
        raise DataFileError(f"{path} is not a readable MATLAB file (truncated or corrupt): {error}") from None
    return {k: v for k, v in content.items() if not k.startswith("__")}


def _read_v73(path: Path) -> dict[str, np.ndarray]:
    import h5py

    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as handle:
            for key, item in handle.items():
                if isinstance(item, h5py.Dataset):
                    # MATLAB writes column-major; h5py reads row-major, i.e. transposed
                    arrays[key] = np.asarray(item[()]).T
    except OSError as error:
        raise DataFileError(f"{path} is not a readable MATLAB v7.3 file: {error}") from None
    return arrays


def read_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an ODDS ``.mat`` file.

    Parameters
    ----------
    path : str or os.PathLike
        MATLAB v5 (as ODDS distributes) or v7.3 (HDF5) file with variables ``X`` and ``y``.

    Returns
    -------
    X : numpy.ndarray of shape (n, d), dtype float64
    y : numpy.ndarray of shape (n,), dtype int64
        Ground truth, 1 = outlier, 0 = inlier.

    Raises
    ------
    DataFileError
        If the file is missing or unreadable, lacks ``X`` or ``y``, their lengths differ,
        or ``y`` holds values other than 0 and 1.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"MATLAB file not found: {path}")
    arrays = _read_v73(path) if _is_hdf5(path) else _read_v5(path)
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise DataFileError(
            f"{path} lacks the variable(s) {', '.join(missing)}; ODDS files hold X and y "
            f"(found: {', '.join(sorted(arrays)) or 'nothing'})"
        )
    X, y = np.asarray(arrays["X"]), np.asarray(arrays["y"])
    if X.ndim != 2:
        raise DataFileError(f"{path}: X must be 2-D (n, d), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: X must be numeric, got dtype {X.dtype}")
    y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataFileError(f"{path}: y has shape {y.shape} but X has {X.shape[0]} rows")
    bad = np.setdiff1d(np.unique(y), [0, 1])
    if bad.size:
        raise DataFileError(f"{path}: y must hold 0 (inlier) and 1 (outlier) only, found {bad[:5].tolist()}")
    return X.astype(np.float64), y.astype(np.int64)
