"""Input validation shared by every detector and command: arrays, semi-labels, parameters, output paths.

Errors name the problem and the offending value so that a user (or the CLI's one-line
message) can fix the call without reading a traceback.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError, InvalidInputTypeError

#: The semi-label convention of the paper: +1 labeled normal, -1 labeled anomaly, 0 unlabeled.
SEMI_LABEL_VALUES = (-1, 0, 1)


class SemiLabelConventionWarning(UserWarning):
    """Semi-labels that look like ground truth in the 1 = anomaly convention (PyOD's).

    A category of its own so that code which really means "a few labeled normals" can
    silence exactly this warning (``warnings.filterwarnings("ignore", category=...)``).
    """


def as_numpy(X: Any) -> Any:
    """Return ``X`` as a NumPy array when it is a torch tensor, else unchanged.

    Keeping the conversion here lets every detector accept NumPy arrays, torch tensors
    (on any device) and array-likes alike.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return X
    if isinstance(X, torch.Tensor):
        return X.detach().to("cpu").numpy()
    return X


def check_semi_labels(y: Any, n_samples: int) -> np.ndarray:
    """Validate semi-supervised labels and return them as ``int8``.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or None
        +1 labeled normal, -1 labeled anomaly, 0 unlabeled. ``None`` means all unlabeled.
    n_samples : int
        Number of samples in ``X``.

    Returns
    -------
    numpy.ndarray of shape (n_samples,), dtype int8

    Raises
    ------
    InvalidInputError
        If ``y`` has the wrong length or shape, is not numeric, holds NaN, or holds a value
        other than -1, 0 or +1.
    """
    if y is None:
        return np.zeros(n_samples, dtype=np.int8)
    y = np.asarray(as_numpy(y))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise InvalidInputError(f"y must be one-dimensional, got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise InvalidInputError(f"y has {y.shape[0]} labels but X has {n_samples} samples")
    if y.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"y must hold the numbers -1, 0 or +1, got values of type {y.dtype}"
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise InvalidInputError("y contains NaN or infinite values; use 0 for unlabeled samples")
    bad = np.setdiff1d(np.unique(y), SEMI_LABEL_VALUES)
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:10].tolist())
        raise InvalidInputError(
            f"y contains values other than -1 (labeled anomaly), 0 (unlabeled) and "
            f"+1 (labeled normal): {shown}"
        )
    return y.astype(np.int8)


def warn_if_anomaly_labels_look_like_normals(
    semi_labels: np.ndarray, *, estimator: str, stacklevel: int = 2
) -> None:
    """Warn when validated semi-labels are probably ground truth with 1 = anomaly.

    PyOD, ADBench and most datasets mark anomalies with 1 and normals with 0; deepsad
    reads +1 as a *labeled normal*. Passed here, such labels train a detector that pulls
    the known anomalies towards the centre -- a silently inverted model. The tell-tale
    sign is labels made only of 0 and 1 with 1 the minority (anomalies are rare). Labels
    holding -1, or where +1 is the majority (a few unlabeled samples among labeled
    normals), follow deepsad's convention and pass silently.

    Parameters
    ----------
    semi_labels : numpy.ndarray of shape (n_samples,)
        Semi-labels as returned by :func:`check_semi_labels`.
    estimator : str
        Name of the estimator, for the message.
    stacklevel : int, default=2
        As for :func:`warnings.warn`, counted from the caller of this function, so that
        the warning points at the user's ``fit`` call.

    Warns
    -----
    SemiLabelConventionWarning
        A :class:`UserWarning` naming ``deepsad.pyod`` and the -1 convention.
    """
    n_normal = int(np.count_nonzero(semi_labels == 1))
    n_unlabeled = int(np.count_nonzero(semi_labels == 0))
    if n_normal == 0 or n_normal >= n_unlabeled or np.any(semi_labels == -1):
        return
    warnings.warn(
        f"y holds only 0 and 1, with 1 the minority ({n_normal} of {semi_labels.shape[0]}): {estimator} reads "
        "+1 as a labeled NORMAL sample (-1 = labeled anomaly, 0 = unlabeled). If 1 marks anomalies "
        "(PyOD's convention), pass np.where(y == 1, -1, 0) instead, or use deepsad.pyod, whose "
        "detectors take 1 = anomaly. If these really are labeled normals, silence this warning with "
        "warnings.filterwarnings('ignore', category=deepsad.validation.SemiLabelConventionWarning)",
        SemiLabelConventionWarning,
        stacklevel=stacklevel + 1,
    )


def check_fraction(
    name: str, value: Any, *, low: float, high: float, low_inclusive: bool, high_inclusive: bool
) -> float:
    """Check that ``value`` is a real number within an interval and return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below and np.isfinite(value)):
        lo, hi = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
        raise InvalidInputError(f"{name} must be in {lo}{low}, {high}{hi}, got {value!r}")
    return value


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """Check that ``value`` is an integer > 0 (or >= 0) and return it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_milestones(name: str, value: Sequence[int] | None) -> tuple[int, ...]:
    """Check learning-rate milestones: increasing positive epoch numbers."""
    if value is None:
        return ()
    try:
        milestones = tuple(int(m) for m in value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a sequence of epoch numbers, got {value!r}") from None
    if any(m <= 0 for m in milestones) or list(milestones) != sorted(set(milestones)):
        raise InvalidInputError(f"{name} must be strictly increasing positive epochs, got {value!r}")
    return milestones


def check_X(
    estimator: Any,
    X: Any,
    *,
    reset: bool,
    allow_nd: bool = True,
    min_samples: int = 1,
) -> np.ndarray:
    """Validate samples for ``fit`` (``reset=True``) or scoring (``reset=False``).

    Accepts NumPy arrays, torch tensors and array-likes (pandas frames keep their column
    names for ``feature_names_in_``). Tabular data must be 2-D ``(n, d)``; with
    ``allow_nd`` images ``(n, c, h, w)`` are accepted too, and ``(n, h, w)`` is read as
    single-channel images.

    On ``reset`` the per-sample shape is stored as ``estimator.input_shape_`` and
    ``n_features_in_`` as their product; otherwise the shape is checked against it.

    Returns
    -------
    numpy.ndarray of dtype float32
        The validated samples.

    Raises
    ------
    ValueError
        (scikit-learn's messages, or :class:`InvalidInputError`) for NaN/inf, wrong
        dimensionality, too few samples or a shape that differs from training.
    """
    from sklearn.utils.validation import validate_data

    X = as_numpy(X)
    # objects without .ndim (lists, array-likes) go through NumPy once to learn it
    ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim
    if ndim == 3 and allow_nd:
        X = np.asarray(X)[:, None, :, :]
        ndim = 4
    if ndim > 2 and (ndim != 4 or not allow_nd):
        expected = "2-D (n_samples, n_features) or 4-D (n_samples, c, h, w)" if allow_nd else "2-D (n_samples, n_features)"
        raise InvalidInputError(f"X must be {expected}, got {ndim} dimensions with shape {np.shape(X)}")
    try:
        if ndim <= 2:
            # scikit-learn's own messages for 1-D input, sparse matrices, NaN, ...
            X = validate_data(
                estimator, X, reset=reset, dtype=np.float32, ensure_min_samples=min_samples, ensure_all_finite=True
            )
        else:
            # scikit-learn counts features as X.shape[1] (channels for images); the
            # per-sample shape is checked below instead
            from sklearn.utils.validation import check_array

            X = check_array(X, dtype=np.float32, allow_nd=True, ensure_min_samples=min_samples, ensure_all_finite=True)
    except InvalidInputError:
        raise
    except ValueError as error:
        # same message, but as a deepsad error so the CLI reports it in one line
        raise InvalidInputError(str(error)) from None
    except TypeError as error:
        raise InvalidInputTypeError(str(error)) from None
    sample_shape = tuple(int(s) for s in X.shape[1:])
    if reset:
        estimator.input_shape_ = sample_shape
        estimator.n_features_in_ = int(np.prod(sample_shape)) if len(sample_shape) > 1 else sample_shape[0]
    elif sample_shape != tuple(estimator.input_shape_):
        raise InvalidInputError(
            f"X has per-sample shape {sample_shape}, but {type(estimator).__name__} was fitted "
            f"on samples of shape {tuple(estimator.input_shape_)}"
        )
    return np.ascontiguousarray(X)


def check_writable_directory(directory: str | os.PathLike[str], purpose: str) -> None:
    """Raise unless a file can be created in the existing ``directory``.

    A real probe file rather than :func:`os.access`: root passes every permission check,
    yet a read-only mount or a kernel file system still refuses it.

    Parameters
    ----------
    directory : path-like
        An existing directory.
    purpose : str
        What is to be written there, for the message (e.g. ``"the model"``).

    Raises
    ------
    InvalidInputError
        Naming the directory and the system's reason.
    """
    try:
        handle, probe = tempfile.mkstemp(dir=directory, prefix=".deepsad-write-check-")
    except OSError as error:
        raise InvalidInputError(
            f"cannot write {purpose}: {directory} is not writable ({error.strerror or error})"
        ) from None
    os.close(handle)
    os.unlink(probe)


def check_output_file(path: str | os.PathLike[str], *, what: str, option: str | None = None) -> Path:
    """Raise unless a file can be written at ``path`` (replacing one that is there); return it as a Path.

    Checked before any costly work, so that a typo in an output path costs nothing:
    refused are a directory, a path in a folder that does not exist (or is a file), and a
    folder where no file can be created (see :func:`check_writable_directory`).

    Parameters
    ----------
    path : path-like
        The file to write.
    what : str
        What the file is, for the message about a directory (``"a CSV file"``).
    option : str or None, default=None
        The command-line option that named the path (``"--out"``), shown before it;
        None for a library call.

    Returns
    -------
    pathlib.Path
        The path checked, ready to write to.

    Raises
    ------
    InvalidInputError
        A ``ValueError`` naming the path and the reason.
    """
    path = Path(path)
    if path.is_dir():
        shown = f"{option} {path}" if option else str(path)
        raise InvalidInputError(f"{shown} is a directory; give the path of {what} to write")
    folder = path.parent
    if not folder.exists():
        raise InvalidInputError(f"cannot write {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise InvalidInputError(f"cannot write {path}: {folder} is a file, not a folder")
    check_writable_directory(folder, str(path))
    return path
