"""The Gaussian (RBF) kernel the kernel baselines share, computed block-wise in float64.

``k(x, z) = exp(-gamma * ||x - z||^2)`` — scikit-learn's parameterisation, which is also
the one of the paper's grid ``gamma in {2^-7, ..., 2^2}``.

Scoring is done from plain arrays (expansion points and coefficients) rather than from
a fitted scikit-learn object, so that a model restored from safetensors + JSON scores
exactly like the one that was fitted. Rows are processed in blocks to keep the
``(n_rows, n_points)`` kernel block under :data:`BLOCK_ELEMENTS` numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError

#: Kernel entries held at once while scoring (2^22 doubles = 32 MiB).
BLOCK_ELEMENTS = 2**22


def check_gamma(gamma: Any) -> float | str:
    """Validate an RBF ``gamma``: a positive finite number or ``"scale"``.

    Raises
    ------
    InvalidInputError
        Naming the parameter and the offending value.
    """
    if isinstance(gamma, str):
        if gamma != "scale":
            raise InvalidInputError(f"gamma must be a positive number or 'scale', got {gamma!r}")
        return gamma
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"gamma must be a positive number or 'scale', got {gamma!r}")
    if not (np.isfinite(gamma) and gamma > 0):
        raise InvalidInputError(f"gamma must be a positive finite number, got {gamma!r}")
    return float(gamma)


def resolve_gamma(gamma: float | str, X: np.ndarray) -> float:
    """The numeric ``gamma``: ``"scale"`` is scikit-learn's ``1 / (n_features * X.var())``.

    A constant ``X`` (zero variance) gives ``gamma = 1.0``, as in scikit-learn.
    """
    gamma = check_gamma(gamma)
    if gamma != "scale":
        return float(gamma)
    variance = float(np.var(X))
    return 1.0 / (X.shape[1] * variance) if variance > 0 else 1.0


def squared_distances(X: np.ndarray, Z: np.ndarray, Z_sq_norms: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances ``(len(X), len(Z))``, clipped at 0 against round-off."""
    X_sq = np.einsum("ij,ij->i", X, X)
    Z_sq = np.einsum("ij,ij->i", Z, Z) if Z_sq_norms is None else Z_sq_norms
    distances = X_sq[:, None] + Z_sq[None, :] - 2.0 * (X @ Z.T)
    np.maximum(distances, 0.0, out=distances)
    return distances


def rbf_kernel(X: np.ndarray, Z: np.ndarray, gamma: float) -> np.ndarray:
    """Dense RBF kernel matrix ``(len(X), len(Z))`` in float64 (no blocking: mind the size)."""
    X = np.asarray(X, dtype=np.float64)
    Z = np.asarray(Z, dtype=np.float64)
    K = squared_distances(X, Z)
    K *= -gamma
    np.exp(K, out=K)
    return K


def rbf_gram(X: np.ndarray, gamma: float) -> np.ndarray:
    """The symmetric training Gram matrix ``K(X, X)`` (one new n x n array)."""
    n = np.asarray(X).shape[0]
    return fill_rbf_gram(X, gamma, np.empty((n, n), dtype=np.float64))


def row_blocks(n_rows: int, n_cols: int, block_elements: int = BLOCK_ELEMENTS) -> Iterator[slice]:
    """Slices over ``range(n_rows)`` such that a block times ``n_cols`` stays under the budget."""
    step = max(1, block_elements // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def fill_rbf_gram(X: np.ndarray, gamma: float, out: np.ndarray) -> np.ndarray:
    """``out[i, j] = exp(-gamma ||x_i - x_j||^2)``, row block by row block.

    The same formula as libsvm's (``|x|^2 + |z|^2 - 2 x.z``), clipped at 0 against
    round-off, with exact ones on the diagonal. Blocks keep each pass in cache, unlike
    whole-matrix passes at this size.
    """
    X = np.asarray(X, dtype=np.float64)
    squared_norms = np.einsum("ij,ij->i", X, X)
    n = X.shape[0]
    for block in row_blocks(n, n):
        part = out[block]
        np.matmul(X[block], X.T, out=part)
        part *= -2.0
        part += squared_norms[block, None]
        part += squared_norms[None, :]
        np.maximum(part, 0.0, out=part)
        rows = np.arange(block.start, block.stop)
        part[rows - block.start, rows] = 0.0
        part *= -gamma
        np.exp(part, out=part)
    return out


def map_kernel_blocks(
    X: np.ndarray, Z: np.ndarray, gamma: float, reduce: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Apply ``reduce`` to each row block of ``rbf_kernel(X, Z)`` and stack the results."""
    X = np.asarray(X, dtype=np.float64)
    Z = np.asarray(Z, dtype=np.float64)
    Z_sq = np.einsum("ij,ij->i", Z, Z)
    parts = []
    for block in row_blocks(X.shape[0], Z.shape[0]):
        K = squared_distances(X[block], Z, Z_sq)
        K *= -gamma
        np.exp(K, out=K)
        parts.append(reduce(K))
    if not parts:
        return np.zeros((0,) + reduce(np.zeros((0, Z.shape[0]))).shape[1:])
    return np.concatenate(parts, axis=0)


def kernel_expansion(X: np.ndarray, points: np.ndarray, coef: np.ndarray, gamma: float) -> np.ndarray:
    """``f(x) = sum_j coef_j * k(x, points_j)`` for every row of ``X``, block-wise.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
    points : numpy.ndarray of shape (n_points, n_features)
    coef : numpy.ndarray of shape (n_points,)
    gamma : float

    Returns
    -------
    numpy.ndarray of shape (n_samples,), dtype float64
    """
    coef = np.asarray(coef, dtype=np.float64)
    return map_kernel_blocks(X, points, gamma, lambda K: K @ coef)
