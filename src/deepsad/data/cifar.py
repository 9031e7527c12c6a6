"""Reader for the CIFAR-10 "python version" batches (``cifar-10-batches-py/``).

The batches are pickles downloaded from the internet, and unpickling can run arbitrary
code. :class:`RestrictedUnpickler` therefore resolves only the few globals a batch
needs (NumPy's array reconstruction); anything else is refused before it is imported.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from deepsad.data.raw_file import read_raw_file
from deepsad.errors import DataFileError

logger = logging.getLogger(__name__)

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
#: Images in the official test batch; the copy in some workplaces holds fewer.
OFFICIAL_TEST_SIZE = 10000


def _numpy_reconstruct() -> Any:
    # NumPy 2 moved the module to numpy._core; files written by NumPy 1 name numpy.core
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_frombuffer() -> Any:
    try:
        from numpy._core.numeric import _frombuffer
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.numeric import _frombuffer
    return _frombuffer


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Python 3 writes bytes in protocol-2 pickles as _codecs.encode(text, "latin1");
    # any other codec is refused
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise DataFileError(f"refusing to decode with codec {encoding!r} in a CIFAR-10 batch")
    if not isinstance(text, str):
        raise DataFileError("malformed bytes object in a CIFAR-10 batch")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a CIFAR batch dict refers to.

    A batch is a dict of bytes/str keys, lists of ints or bytes and one uint8 array.
    The array is rebuilt through ``numpy.(_)core.multiarray._reconstruct``,
    ``numpy.ndarray`` and ``numpy.dtype`` (protocol 5: ``numpy.(_)core.numeric._frombuffer``);
    Python 3 protocol-2 files also need ``_codecs.encode`` for bytes, allowed for latin-1
    only. No other global can be loaded, so a crafted file cannot call ``os.system`` or
    the like.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        """Resolve only the globals a CIFAR-10 batch needs; any other is a :class:`DataFileError`."""
        if (module, name) not in self._ALLOWED:
            raise DataFileError(
                f"refusing to load {module}.{name}: a CIFAR-10 batch may only contain "
                "NumPy arrays, lists and bytes"
            )
        if name == "_reconstruct":
            return _numpy_reconstruct()
        if name == "_frombuffer":
            return _numpy_frombuffer()
        if name == "encode":
            return _latin1_encode
        return np.ndarray if name == "ndarray" else np.dtype


def _get(batch: dict, key: str) -> Any:
    # official files are Python 2 pickles read with encoding="bytes": keys are bytes
    if key.encode() in batch:
        return batch[key.encode()]
    return batch.get(key)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch with the restricted unpickler.

    Returns
    -------
    images : numpy.ndarray of shape (n, 3, 32, 32), dtype uint8
        Channel-first, as stored (1024 red, 1024 green, 1024 blue values per image).
    labels : numpy.ndarray of shape (n,), dtype int64

    Raises
    ------
    DataFileError
        If the file is missing, truncated, refers to a forbidden global, or does not
        hold a ``data`` array of shape (n, 3072) with ``n`` labels in 0..9.
    """
    path = Path(path)
    raw = read_raw_file(path, "CIFAR-10 batch")
    try:
        batch = RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except DataFileError as error:
        raise DataFileError(f"{path}: {error}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DataFileError(f"{path} is not a readable CIFAR-10 batch (truncated or corrupt): {error}") from None
    if not isinstance(batch, dict):
        raise DataFileError(f"{path} is not a CIFAR-10 batch: it holds a {type(batch).__name__}, not a dict")
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        described = f"shape {data.shape}, dtype {data.dtype}" if isinstance(data, np.ndarray) else repr(type(data))
        raise DataFileError(f"{path}: 'data' must be a uint8 array of shape (n, 3072), got {described}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataFileError(f"{path}: 'labels' must be a list of integers") from None
    if labels.shape != (data.shape[0],):
        raise DataFileError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataFileError(f"{path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10(folder: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Read the training (five batches) or test split from ``cifar-10-batches-py/``.

    Returns
    -------
    images : numpy.ndarray of shape (n, 3, 32, 32), dtype uint8
    labels : numpy.ndarray of shape (n,), dtype int64
    """
    folder = Path(folder)
    names = {"train": TRAIN_BATCHES, "test": TEST_BATCHES}.get(split)
    if names is None:
        raise DataFileError(f"unknown CIFAR-10 split {split!r}; use 'train' or 'test'")
    parts = [read_cifar_batch(folder / name) for name in names]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    if split == "test" and images.shape[0] != OFFICIAL_TEST_SIZE:
        logger.warning(
            "CIFAR-10 test batch %s holds %d images; the official test set has %d",
            folder / names[0], images.shape[0], OFFICIAL_TEST_SIZE,
        )
    return images, labels
