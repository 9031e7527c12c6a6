"""Load datasets by name from the data root, preprocessed as the paper does.

A missing file gives a :class:`~deepsad.errors.DataFileError` that says which file,
where it was looked for, and how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepsad.data.registry import DatasetInfo, data_root_origin, get_dataset, resolve_data_root
from deepsad.data.tabular import TableData, read_table
from deepsad.errors import DataFileError, InvalidInputError

SPLITS = ("train", "test")
_IDX_PREFIX = {"train": "train", "test": "t10k"}


def missing_file_error(info: DatasetInfo, path: Path, data_root: str | os.PathLike | None) -> DataFileError:
    """The error for an absent dataset file: which file, where, and how to get it."""
    if info.path is not None:
        return DataFileError(f"the file of dataset {info.name!r} is missing: {path}")
    root = resolve_data_root(data_root)
    remote = next((f for f in info.files if (root / info.folder / f.path) == path), None)
    if info.archive is not None and info.archive.urls:
        how = f"download {info.archive.urls[0]} and unpack it in {root / info.folder}"
    else:
        source = remote.urls[0] if remote and remote.urls else info.homepage
        how = f"get it from {source} and put it there"
    return DataFileError(
        f"{info.name}: file {path.name} not found in {path.parent} (data root {root}, "
        f"{data_root_origin(data_root)}); run 'deepsad data download {info.name}' or {how}"
    )


def _require(info: DatasetInfo, path: Path, data_root: str | os.PathLike | None) -> Path:
    if not path.is_file():
        raise missing_file_error(info, path, data_root)
    return path


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InvalidInputError(f"split must be 'train' or 'test', got {split!r}")


def _idx_path(info: DatasetInfo, kind: str, split: str, data_root) -> Path:
    folder = resolve_data_root(data_root) / info.folder
    suffix = "idx3-ubyte" if kind == "images" else "idx1-ubyte"
    gz = folder / f"{_IDX_PREFIX[split]}-{kind}-{suffix}.gz"
    raw = gz.with_suffix("")
    # the .gz as distributed, or a decompressed copy of it
    if not gz.is_file() and raw.is_file():
        return raw
    return _require(info, gz, data_root)


def _user_images(info: DatasetInfo, split: str) -> tuple[np.ndarray, np.ndarray]:
    keys = ("X", "y") if split == "train" else ("X_test", "y_test")
    path = info.path
    assert path is not None
    if not path.is_file():
        raise DataFileError(f"the file of dataset {info.name!r} is missing: {path}")
    try:
        with np.load(path, allow_pickle=False) as content:
            absent = [k for k in keys if k not in content.files]
            if absent:
                what = "test split" if split == "test" else "training split"
                raise DataFileError(
                    f"{path} has no {what}: arrays {' and '.join(absent)} are missing (found: {', '.join(content.files)})"
                )
            images, labels = content[keys[0]], content[keys[1]]
    except DataFileError:
        raise
    except (ValueError, OSError, EOFError) as error:
        raise DataFileError(f"{path} is not a readable .npz file: {error}") from None
    if images.ndim == 4 and info.channels_last:
        images = images.transpose(0, 3, 1, 2)
    elif images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataFileError(f"{path}: {keys[0]} must be (n, h, w) or (n, c, h, w), got shape {images.shape}")
    labels = np.asarray(labels).ravel()
    if labels.shape[0] != images.shape[0] or labels.dtype.kind not in "iub":
        raise DataFileError(
            f"{path}: {keys[1]} must hold one integer class per image ({images.shape[0]}), got {labels.shape[0]} of dtype {labels.dtype}"
        )
    return images, labels.astype(np.int64)


def load_raw_images(name: str, split: str = "train", data_root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load an image dataset's split as stored (no scaling).

    Returns
    -------
    images : numpy.ndarray of shape (n, c, h, w)
        uint8 for the built-in datasets.
    labels : numpy.ndarray of shape (n,), dtype int64
        Class labels.
    """
    _check_split(split)
    info = get_dataset(name, data_root)
    if info.kind != "images":
        raise InvalidInputError(f"{name!r} is a {info.kind} dataset, not an image dataset")
    if info.path is not None:
        return _user_images(info, split)
    if name == "cifar10":
        from deepsad.data.cifar import TEST_BATCHES, TRAIN_BATCHES, read_cifar10

        folder = resolve_data_root(data_root) / info.folder / "cifar-10-batches-py"
        for batch in TRAIN_BATCHES if split == "train" else TEST_BATCHES:
            _require(info, folder / batch, data_root)
        return read_cifar10(folder, split)
    from deepsad.data.idx import read_idx

    images_path = _idx_path(info, "images", split, data_root)
    labels_path = _idx_path(info, "labels", split, data_root)
    images = read_idx(images_path, expected_ndim=3)
    labels = read_idx(labels_path, expected_ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DataFileError(f"{images_path} has {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels")
    return images[:, None, :, :], labels.astype(np.int64)


def load_labels(name: str, split: str = "train", data_root: str | os.PathLike | None = None) -> np.ndarray:
    """Class labels of an image dataset's split, without decoding pixels where possible.

    For MNIST and Fashion-MNIST only the small label file is read; CIFAR-10 and user
    datasets store labels with the pixels, so those are read in full.

    Returns
    -------
    numpy.ndarray of shape (n,), dtype int64
    """
    _check_split(split)
    info = get_dataset(name, data_root)
    if info.kind == "images" and info.path is None and name != "cifar10":
        from deepsad.data.idx import read_idx

        return read_idx(_idx_path(info, "labels", split, data_root), expected_ndim=1).astype(np.int64)
    return load_raw_images(name, split, data_root)[1]


def load_images(name: str, split: str = "train", data_root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load an image dataset's split with pixels scaled to [0, 1].

    Parameters
    ----------
    name : str
        ``"mnist"``, ``"fmnist"``, ``"cifar10"`` or a registered user image dataset.
    split : {"train", "test"}
    data_root : str or os.PathLike, optional
        See :func:`resolve_data_root`; files are read from ``mnist/``, ``fashion_mnist/``
        and ``cifar10/cifar-10-batches-py/`` under it.

    Returns
    -------
    X : numpy.ndarray of shape (n, c, h, w), dtype float32, values in [0, 1]
    labels : numpy.ndarray of shape (n,), dtype int64

    Raises
    ------
    InvalidInputError
        Unknown name (the message lists the known ones) or split.
    DataFileError
        Missing (the message says where it looked and where to get it), truncated or
        corrupt files.
    """
    from deepsad.data.preprocessing import images_to_unit_float

    images, labels = load_raw_images(name, split, data_root)
    return images_to_unit_float(images), labels


def load_table(name: str, data_root: str | os.PathLike | None = None) -> TableData:
    """Load a tabular dataset by name (ODDS, ADBench or a registered user table).

    Built-in benchmarks (ODDS ``.mat``, ADBench ``.npz`` with arrays ``X`` and ``y``, read
    without unpickling) come with their 0/1 ground truth and no semi-label column.

    Raises
    ------
    InvalidInputError
        For an image dataset or an unknown name.
    DataFileError
        For a missing file (the message says where to get it), a truncated or corrupt
        one, or a benchmark whose ground truth is not 0/1 or lacks ``X`` / ``y``.
    """
    info = get_dataset(name, data_root)
    if info.kind == "images":
        raise InvalidInputError(f"{name!r} is an image dataset; use load_images")
    if info.path is not None:
        if not info.path.is_file():
            raise DataFileError(f"the file of dataset {name!r} is missing: {info.path}")
        return read_table(info.path, info.label_column, ground_truth_column=info.ground_truth_column)
    path = _require(info, info.file_paths(data_root)[0], data_root)
    table = read_table(path, None, ground_truth_column=info.ground_truth_column)
    if table.ground_truth is not None:
        bad = np.setdiff1d(np.unique(table.ground_truth), [0, 1])
        if bad.size:
            raise DataFileError(f"{path}: ground truth must hold 0 (normal) and 1 (anomaly) only, found {bad[:5].tolist()}")
    return table


def load_odds(name: str, data_root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load an ODDS benchmark from ``<data root>/odds/<name>.mat``.

    Parameters
    ----------
    name : str
        ``arrhythmia``, ``cardio``, ``satellite``, ``satimage-2``, ``shuttle`` or ``thyroid``.
    data_root : str or os.PathLike, optional

    Returns
    -------
    X : numpy.ndarray of shape (n, d), dtype float64
        Raw features (standardize with training statistics, see :class:`Standardizer`).
    y : numpy.ndarray of shape (n,), dtype int64
        Ground truth, 1 = outlier.
    """
    info = get_dataset(name, data_root)
    if info.kind != "odds":
        raise InvalidInputError(f"{name!r} is not an ODDS dataset")
    table = load_table(name, data_root)
    assert table.ground_truth is not None
    return table.X, table.ground_truth.astype(np.int64)
