"""Tabular files: CSV, NPY, NPZ, Parquet and ODDS ``.mat``, read into one shape.

:func:`read_table` returns features as float64 plus, when present, the label column
(the user's semi-labels, converted to numbers but not checked: the estimator checks
them) and ground truth (only files that carry it, such as ODDS ``.mat``).
"""

from __future__ import annotations

import csv
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepsad.errors import DataFileError, InvalidInputError

#: Suffixes :func:`read_table` understands.
TABLE_SUFFIXES = (".csv", ".npy", ".npz", ".parquet", ".pq", ".mat")


@dataclass(frozen=True)
class TableData:
    """A table read from a file.

    Attributes
    ----------
    X : numpy.ndarray of shape (n, d), dtype float64
        The feature columns.
    labels : numpy.ndarray of shape (n,) or None
        The label column's values as numbers (semi-labels -1/0/+1 for ``fit``), or None
        when the file has no such column.
    ground_truth : numpy.ndarray of shape (n,) or None
        0/1 ground truth (1 = anomaly) when the file carries one (ODDS ``y``), else None.
    feature_names : list of str
        One name per column of ``X``.
    named : bool
        Whether ``feature_names`` come from the file (a CSV / Parquet header) rather than
        being made up (``x0``, ``x1``, ... for arrays): only real names can be matched
        against a model's.
    """

    X: np.ndarray
    labels: np.ndarray | None
    ground_truth: np.ndarray | None
    feature_names: list[str]
    named: bool = False

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


def _numeric_labels(values: object, column: str, path: Path) -> np.ndarray:
    import pandas as pd

    try:
        labels = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="raise").to_numpy()
    except (ValueError, TypeError) as error:
        raise DataFileError(
            f"{path}: label column {column!r} must hold numbers (-1, 0, +1): {error}"
        ) from None
    if labels.dtype.kind == "b":
        labels = labels.astype(np.int64)
    # whole-number labels as int64, so a CSV "1.0" and "1" read the same
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    return labels


def _from_frame(frame, path: Path, label_column: str | None, ground_truth_column: str | None) -> TableData:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if frame.shape[0] == 0:
        raise DataFileError(f"{path} holds no rows")
    labels = ground_truth = None
    if label_column is not None and label_column in columns:
        labels = _numeric_labels(frame[label_column].to_numpy(), label_column, path)
    if ground_truth_column is not None:
        if ground_truth_column not in columns:
            raise DataFileError(
                f"{path} has no ground-truth column {ground_truth_column!r} (columns: {', '.join(columns[:20])})"
            )
        ground_truth = _numeric_labels(frame[ground_truth_column].to_numpy(), ground_truth_column, path)
    features = [c for c in columns if c not in {label_column, ground_truth_column}]
    if not features:
        raise DataFileError(f"{path} has no feature columns besides the label")
    for name in features:
        kind = frame[name].dtype.kind
        if kind not in "biuf":
            raise DataFileError(
                f"{path}: column {name!r} is not numeric (dtype {frame[name].dtype}); "
                "encode it as numbers or drop it"
            )
    X = frame[features].to_numpy(dtype=np.float64)
    return TableData(X=X, labels=labels, ground_truth=ground_truth, feature_names=features, named=True)


def named_features(table: TableData) -> Any:
    """The features of ``table`` as a pandas frame with their column names when the file named
    them (so a model fitted on it records ``feature_names_in_``), else the array ``table.X``."""
    if not table.named:
        return table.X
    import pandas as pd

    return pd.DataFrame(table.X, columns=table.feature_names)


def features_for_model(table: TableData, feature_names: Any, path: str | os.PathLike) -> Any:
    """The columns of ``table`` in the order of a model's ``feature_names`` (its ``feature_names_in_``).

    Columns are matched by name when both sides have real names: the same set in another
    order is reordered, and a table that lacks some of the model's columns, or has
    columns the model never saw, is refused with the names. Headerless data (arrays) are
    matched by count, as the model's own shape check does.

    Returns
    -------
    pandas.DataFrame or numpy.ndarray
        A frame with the model's column names when it has names (so scikit-learn's
        feature-name check passes), else ``table.X``.

    Raises
    ------
    DataFileError
        Naming the missing and the unexpected columns.
    """
    if feature_names is None:
        return table.X
    import pandas as pd

    expected = [str(name) for name in feature_names]
    X = table.X
    if table.named and expected != table.feature_names:
        missing = [name for name in expected if name not in table.feature_names]
        extra = [name for name in table.feature_names if name not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {_name_list(missing)}")
            if extra:
                parts.append(f"not seen in training {_name_list(extra)}")
            raise DataFileError(f"{path}: the columns do not match the model's features: {'; '.join(parts)}")
        position = {name: index for index, name in enumerate(table.feature_names)}
        X = X[:, [position[name] for name in expected]]
    if X.ndim != 2 or X.shape[1] != len(expected):
        return X  # the model's shape check names the mismatch
    return pd.DataFrame(X, columns=expected)


def _name_list(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _read_csv(path: Path):
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataFileError(f"{path} is not a readable CSV file: {error}") from None
    # pandas renames a repeated name to 'a.1', which would then pass for a column of its own
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataFileError(f"{path}: the header names column(s) {_name_list(repeated)} more than once")
    return frame


def _read_parquet(path: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataFileError("reading Parquet needs pyarrow: pip install 'deepsad[parquet]'") from None
    try:
        return pq.read_table(path).to_pandas()
    except Exception as error:  # pyarrow raises its own ArrowInvalid / OSError family
        raise DataFileError(f"{path} is not a readable Parquet file: {error}") from None


def _array_2d(array: np.ndarray, path: Path, what: str) -> np.ndarray:
    if array.ndim != 2:
        raise DataFileError(
            f"{path}: {what} must be 2-D (n_samples, n_features), got shape {array.shape}"
            + ("; reshape a single feature with X.reshape(-1, 1)" if array.ndim == 1 else "")
        )
    if array.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: {what} must be numeric, got dtype {array.dtype}")
    if array.shape[0] == 0:
        raise DataFileError(f"{path} holds no rows")
    return array.astype(np.float64)


def _read_numpy(path: Path, label_column: str | None, ground_truth_column: str | None) -> TableData:
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as error:
        # allow_pickle=False refuses object arrays: they could run code
        raise DataFileError(f"{path} cannot be read without unpickling (object arrays are refused): {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        # .npz files are zip archives: a damaged one fails in zipfile, not in NumPy
        raise DataFileError(f"{path} is not a readable NumPy file (truncated or corrupt): {error}") from None
    if isinstance(loaded, np.ndarray):
        X = _array_2d(loaded, path, "the array")
        return TableData(X=X, labels=None, ground_truth=None, feature_names=[f"x{i}" for i in range(X.shape[1])])
    with loaded:
        keys = list(loaded.files)
        if not keys:
            raise DataFileError(f"{path} holds no arrays")
        try:
            if "X" in keys:
                X_raw = loaded["X"]
            elif len(keys) == 1:
                X_raw = loaded[keys[0]]
            else:
                raise DataFileError(f"{path} has no array named 'X' (arrays: {', '.join(keys)})")
            labels = ground_truth = None
            if label_column is not None and label_column in keys and label_column != "X":
                labels = _numeric_labels(loaded[label_column], label_column, path)
            if ground_truth_column is not None:
                if ground_truth_column not in keys:
                    raise DataFileError(f"{path} has no ground-truth array {ground_truth_column!r} (arrays: {', '.join(keys)})")
                ground_truth = _numeric_labels(loaded[ground_truth_column], ground_truth_column, path)
        except DataFileError:
            raise
        except ValueError as error:
            raise DataFileError(f"{path}: cannot read an array without unpickling: {error}") from None
        except (OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
            raise DataFileError(f"{path} is truncated or corrupt: {error}") from None
    X = _array_2d(X_raw, path, "X")
    for name, values in (("label column " + repr(label_column), labels), ("ground truth", ground_truth)):
        if values is not None and values.shape[0] != X.shape[0]:
            raise DataFileError(f"{path}: {name} has {values.shape[0]} values but X has {X.shape[0]} rows")
    return TableData(X=X, labels=labels, ground_truth=ground_truth, feature_names=[f"x{i}" for i in range(X.shape[1])])


def read_table(
    path: str | os.PathLike,
    label_column: str | None = "label",
    *,
    ground_truth_column: str | None = None,
) -> TableData:
    """Read a tabular data file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv`` (header row), ``.npy`` (2-D array, all features), ``.npz`` (array ``X``
        plus the label column's array if present; a file with exactly one array uses it
        as ``X``), ``.parquet``/``.pq`` (needs pyarrow) or ``.mat`` (ODDS: ``X`` and ground
        truth ``y``).
    label_column : str or None, default "label"
        Name of the semi-label column (+1 labeled normal, -1 labeled anomaly, 0
        unlabeled). Optional in the file: when absent, ``labels`` is None. ``None`` reads
        every column as a feature. Ignored for ``.npy`` and ``.mat``.
    ground_truth_column : str or None, keyword-only
        Name of a 0/1 ground-truth column (1 = anomaly) that must be present; it is kept
        out of the features. ODDS ``.mat`` files always give their ``y`` as ground truth.

    Returns
    -------
    TableData

    Raises
    ------
    DataFileError
        For a missing or unreadable file, an unsupported suffix, an empty table, a 1-D
        array, or a non-numeric feature column (named in the message).
    InvalidInputError
        If ``label_column`` is not a string or None.
    """
    if label_column is not None and not isinstance(label_column, str):
        raise InvalidInputError(f"label_column must be a column name or None, got {label_column!r}")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataFileError(
            f"cannot read {path}: unsupported file type {suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(TABLE_SUFFIXES)}"
        )
    if not path.is_file():
        raise DataFileError(f"data file not found: {path}")
    if suffix == ".mat":
        from deepsad.data.odds import read_mat

        X, y = read_mat(path)
        if X.shape[0] == 0:
            raise DataFileError(f"{path} holds no rows")
        return TableData(X=X, labels=None, ground_truth=y, feature_names=[f"x{i}" for i in range(X.shape[1])])
    if suffix in (".npy", ".npz"):
        return _read_numpy(path, label_column, ground_truth_column)
    frame = _read_csv(path) if suffix == ".csv" else _read_parquet(path)
    return _from_frame(frame, path, label_column, ground_truth_column)
