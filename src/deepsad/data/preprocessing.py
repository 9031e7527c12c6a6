"""Preprocessing as the paper does it (DESIGN §4).

Images: pixels to float32 in [0, 1], channel-first. Tabular data: standardized with
statistics of the training split only (optionally min-max scaled to [0, 1] afterwards,
again with training statistics), so nothing about the test split leaks into training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError


def images_to_unit_float(images: Any, *, channels_last: bool = False) -> np.ndarray:
    """Convert images to float32 in [0, 1], shape ``(n, c, h, w)``.

    Parameters
    ----------
    images : array-like
        ``(n, h, w)`` (one channel), ``(n, c, h, w)``, or ``(n, h, w, c)`` with
        ``channels_last=True``. Unsigned integers are divided by their dtype's maximum
        (255 for uint8); floating-point images must already lie in [0, 1].
    channels_last : bool, default False
        Whether 4-D input is ``(n, h, w, c)``.

    Returns
    -------
    numpy.ndarray of shape (n, c, h, w), dtype float32, C-contiguous

    Raises
    ------
    InvalidInputError
        For a wrong number of dimensions, a signed or non-numeric dtype, or float pixels
        outside [0, 1].
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None, :, :]
    elif images.ndim == 4:
        if channels_last:
            images = images.transpose(0, 3, 1, 2)
    else:
        raise InvalidInputError(
            f"images must have shape (n, h, w) or (n, c, h, w), got {images.ndim} dimensions {images.shape}"
        )
    kind = images.dtype.kind
    if kind == "u":
        # divide, not multiply by 1/255: 255 / 255 must be exactly 1.0
        out = np.ascontiguousarray(images, dtype=np.float32)
        out /= np.float32(np.iinfo(images.dtype).max)
        return out
    if kind == "f":
        out = np.ascontiguousarray(images, dtype=np.float32)
        if out.size and not (np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0):
            raise InvalidInputError(
                "floating-point images must hold values in [0, 1]; scale them first "
                f"(found range {np.nanmin(out):.4g}..{np.nanmax(out):.4g})"
            )
        return out
    raise InvalidInputError(
        f"images must be unsigned integers (e.g. uint8) or floats in [0, 1], got dtype {images.dtype}"
    )


def feature_mean_and_scale(X: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (ddof=0) for standardizing, in float64.

    A feature that is constant in ``X`` gets scale 1, so it maps to 0 instead of
    dividing by zero. "Constant" includes features whose computed variance is only
    rounding noise: ``var <= n eps var + (n |mean| eps)^2`` (scikit-learn's rule). A
    feature holding one value 0.49 in every row has a computed std near 1e-15 rather
    than 0; dividing by it would turn test values into numbers near 1e16.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    mean, scale : numpy.ndarray of shape (n_features,), dtype float64
    """
    X64 = np.asarray(X, dtype=np.float64)
    n_samples = X64.shape[0]
    mean = X64.mean(axis=0)
    var = X64.var(axis=0)
    eps = np.finfo(np.float64).eps
    constant = var <= n_samples * eps * var + (n_samples * mean * eps) ** 2
    scale = np.sqrt(var)
    scale[constant] = 1.0
    return mean, scale


def standardize_features(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, *, dtype: Any = None) -> np.ndarray:
    """``(X - mean) / scale`` per feature: the one standardizing step of every estimator.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
    mean, scale : numpy.ndarray of shape (n_features,)
        Training statistics, e.g. from :func:`feature_mean_and_scale`.
    dtype : numpy dtype or None, default None
        Float type of the result; ``None`` keeps NumPy's promotion of the operands.
        The arithmetic runs in the operands' type either way, so float32 statistics
        on float32 samples compute in float32.

    Returns
    -------
    numpy.ndarray of shape (n_samples, n_features)
    """
    Z = (X - mean) / scale
    return Z if dtype is None else Z.astype(dtype, copy=False)


class Standardizer:
    """Standardize features with training statistics; optionally min-max scale after.

    Parameters
    ----------
    minmax : bool, default False
        After standardizing, also map each feature to [0, 1] using the training split's
        minimum and maximum (test values may fall outside [0, 1]).

    Attributes
    ----------
    mean_ : numpy.ndarray of shape (d,)
    scale_ : numpy.ndarray of shape (d,)
        Standard deviations (ddof=0); features that are constant in training (up to
        rounding, see :func:`feature_mean_and_scale`) get 1, so they map to 0 instead of
        dividing by (almost) zero.
    min_, range_ : numpy.ndarray of shape (d,)
        Only with ``minmax``: minimum and (max - min, or 1 when 0) of the standardized
        training data.
    n_features_in_ : int
    """

    def __init__(self, *, minmax: bool = False) -> None:
        self.minmax = minmax

    def fit(self, X: Any) -> Standardizer:
        """Compute the statistics from training data ``X`` of shape (n, d)."""
        X = self._check(X, fitting=True)
        self.mean_, self.scale_ = feature_mean_and_scale(X)
        self.n_features_in_ = X.shape[1]
        if self.minmax:
            Z = standardize_features(X, self.mean_, self.scale_)
            self.min_ = Z.min(axis=0)
            spread = Z.max(axis=0) - self.min_
            self.range_ = np.where(spread > 0, spread, 1.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Apply the training statistics to ``X`` (float64, same shape)."""
        if not hasattr(self, "mean_"):
            raise InvalidInputError("this Standardizer is not fitted yet; call fit(X_train) first")
        X = self._check(X, fitting=False)
        Z = standardize_features(X, self.mean_, self.scale_)
        if self.minmax:
            Z = (Z - self.min_) / self.range_
        return Z

    def fit_transform(self, X: Any) -> np.ndarray:
        """Fit on ``X`` and return it transformed."""
        return self.fit(X).transform(X)

    def _check(self, X: Any, *, fitting: bool) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise InvalidInputError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if fitting and X.shape[0] == 0:
            raise InvalidInputError("cannot fit a Standardizer on zero samples")
        if not np.all(np.isfinite(X)):
            raise InvalidInputError("X contains NaN or infinite values")
        if not fitting and X.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {X.shape[1]} features, but the Standardizer was fitted on {self.n_features_in_}"
            )
        return X
