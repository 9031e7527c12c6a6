"""One RBF Gram matrix kept between the fits of a hyperparameter search.

A grid search over the OC-SVM's ``(gamma, nu)`` fits every candidate on the same
training set. libsvm evaluates the kernel itself, column by column, and with more
support vectors than its cache holds it evaluates most columns many times, and most of
a fit's time goes to the kernel (figures: docs/performance.md, "Where the speed layer's
numbers come from"). The matrix depends on ``gamma`` only, so the five ``nu`` of one
``gamma`` share it, and the next ``gamma`` of the paper's grid (each twice the last)
follows by squaring every entry in place, ``exp(-2 g d) = exp(-g d)^2``, one pass
instead of a new ``X X'``.

What it costs: ``n^2`` doubles (6 GB for shuttle's 27,351 training samples), so
:class:`GramMemo` only holds a matrix that fits its memory budget and otherwise says
"no" (``None``) and the caller lets libsvm compute the kernel itself. Squaring adds at
most a few ulp of rounding per step (about ``1e-13`` relative after the nine steps of
the paper's grid), far below the solver's tolerance; the tests check that solutions
match the plain fit.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

import numpy as np

from deepsad.baselines.kernels import fill_rbf_gram
from deepsad.errors import InvalidInputError

logger = logging.getLogger(__name__)

#: Share of the memory available when a matrix is first requested that it may take.
DEFAULT_MEMORY_FRACTION = 0.5
#: Squarings allowed to reach a larger gamma from the held one (2^6 = 64x gamma).
MAX_SQUARINGS = 6


def available_memory_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes, or None where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _fingerprint(X: np.ndarray) -> tuple[tuple[int, ...], str]:
    # Content, not identity: estimators build their training arrays anew in each fit.
    return X.shape, hashlib.blake2b(np.ascontiguousarray(X).tobytes(), digest_size=16).hexdigest()


def _doublings(gamma_from: float, gamma_to: float) -> int | None:
    """k >= 1 with ``gamma_to == gamma_from * 2**k`` exactly, else None."""
    ratio = gamma_to / gamma_from
    mantissa, exponent = math.frexp(ratio)
    if mantissa != 0.5 or exponent - 1 < 1 or gamma_from * 2.0 ** (exponent - 1) != gamma_to:
        return None
    return exponent - 1


class GramMemo:
    """Hold the RBF Gram matrix of one training set across fits.

    Parameters
    ----------
    max_bytes : int or None, default=None
        Largest matrix to hold. None: :data:`DEFAULT_MEMORY_FRACTION` of the memory
        available at the first request (1 GiB where that cannot be read).

    Notes
    -----
    The returned matrix is read-only and is overwritten by the next request for
    another ``gamma``: use it for one fit at a time. :meth:`clear` frees it.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0):
            raise InvalidInputError(f"max_bytes must be a non-negative integer or None, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self._matrix: np.ndarray | None = None
        self._key: tuple[tuple[int, ...], str] | None = None
        self._gamma: float | None = None
        self.computed = 0  #: matrices built from X
        self.squared = 0  #: matrices reached by squaring
        self.reused = 0  #: requests answered with the held matrix

    def _budget(self) -> int:
        if self.max_bytes is None:
            available = available_memory_bytes()
            self.max_bytes = int(DEFAULT_MEMORY_FRACTION * available) if available else 2**30
        return self.max_bytes

    def gram(self, X: np.ndarray, gamma: float) -> np.ndarray | None:
        """The Gram matrix of ``X`` at ``gamma``, or None if it does not fit the budget.

        Parameters
        ----------
        X : numpy.ndarray of shape (n_samples, n_features), float64
        gamma : float
            Positive RBF parameter.

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_samples) or None
        """
        n = X.shape[0]
        if n * n * 8 > self._budget():
            return None
        key = _fingerprint(X)
        gamma = float(gamma)
        if self._matrix is not None and key == self._key and self._gamma is not None:
            if gamma == self._gamma:
                self.reused += 1
                return self._matrix
            steps = _doublings(self._gamma, gamma)
            if steps is not None and steps <= MAX_SQUARINGS:
                matrix = self._matrix
                matrix.flags.writeable = True
                for _ in range(steps):
                    np.multiply(matrix, matrix, out=matrix)
                return self._hold(matrix, key, gamma, "squared")
        matrix = self._matrix if self._matrix is not None and self._matrix.shape == (n, n) else None
        if matrix is None:
            self._matrix, self._key, self._gamma = None, None, None  # free the old one first
            try:
                matrix = np.empty((n, n), dtype=np.float64)
            except MemoryError:
                logger.info("no memory for a %d x %d Gram matrix; libsvm computes the kernel", n, n)
                return None
        matrix.flags.writeable = True
        fill_rbf_gram(X, gamma, matrix)
        return self._hold(matrix, key, gamma, "computed")

    def _hold(self, matrix: np.ndarray, key: tuple[tuple[int, ...], str], gamma: float, how: str) -> np.ndarray:
        matrix.flags.writeable = False
        self._matrix, self._key, self._gamma = matrix, key, gamma
        setattr(self, how, getattr(self, how) + 1)
        logger.debug("Gram matrix %s for gamma=%g (%d x %d)", how, gamma, *matrix.shape)
        return matrix

    def clear(self) -> None:
        """Free the held matrix."""
        self._matrix, self._key, self._gamma = None, None, None
