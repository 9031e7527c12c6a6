"""CIFAR-10 batches: restricted unpickling, validation, and layout."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from deepsad.data.cifar import read_cifar10, read_cifar_batch
from deepsad.errors import DataFileError


def _batch(n: int = 4, seed: int = 0, *, str_keys: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    return {
        key("batch_label"): b"testing batch",
        key("labels"): rng.integers(0, 10, n).tolist(),
        key("data"): rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        key("filenames"): [b"a.png"] * n,
    }


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("str_keys", [False, True])
def test_reads_batch_channel_first(tmp_path, protocol, str_keys):
    batch = _batch(str_keys=str_keys)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    images, labels = read_cifar_batch(path)
    data = batch["data" if str_keys else b"data"]
    assert images.shape == (4, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == batch["labels" if str_keys else b"labels"]
    # first 1024 values are the red channel, row-major
    assert np.array_equal(images[1, 0].ravel(), data[1, :1024])
    assert np.array_equal(images[1, 2, 31], data[1, 2048 + 31 * 32: 2048 + 32 * 32])


class _Evil:
    command = "true"

    def __reduce__(self):
        return (os.system, (self.command,))


def test_forbidden_global_is_refused_before_running(tmp_path):
    path = tmp_path / "data_batch_1"
    marker = tmp_path / "pwned"
    _Evil.command = f"touch {marker}"
    for protocol in (2, 4):
        path.write_bytes(pickle.dumps({b"data": _Evil()}, protocol=protocol))
        with pytest.raises(DataFileError, match=r"refusing to load (posix|os|nt)\.system"):
            read_cifar_batch(path)
    assert not marker.exists()
    # a codec other than latin-1 behind _codecs.encode is refused too
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(DataFileError, match="refusing to decode with codec 'rot13'"):
        read_cifar_batch(path)


def test_object_array_and_wrong_content(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}))
    with pytest.raises(DataFileError, match=r"'data' must be a uint8 array of shape \(n, 3072\)"):
        read_cifar_batch(path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataFileError, match="holds a list, not a dict"):
        read_cifar_batch(path)
    bad = _batch()
    bad[b"labels"] = bad[b"labels"][:-1]
    path.write_bytes(pickle.dumps(bad))
    with pytest.raises(DataFileError, match="4 images but 3 labels"):
        read_cifar_batch(path)


def test_truncated_and_missing(tmp_path):
    blob = pickle.dumps(_batch(), protocol=4)
    path = tmp_path / "b"
    path.write_bytes(blob[:-100])
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        read_cifar_batch(path)
    with pytest.raises(DataFileError, match="not found"):
        read_cifar_batch(tmp_path / "nope")


def test_reads_split_in_batch_order(tmp_path, caplog):
    for i in range(1, 6):
        (tmp_path / f"data_batch_{i}").write_bytes(pickle.dumps(_batch(3, seed=i)))
    (tmp_path / "test_batch").write_bytes(pickle.dumps(_batch(2, seed=9)))
    images, labels = read_cifar10(tmp_path, "train")
    assert images.shape == (15, 3, 32, 32)
    assert labels[:3].tolist() == _batch(3, seed=1)[b"labels"]
    images, labels = read_cifar10(tmp_path, "test")
    assert images.shape[0] == 2
    assert "official test set has 10000" in caplog.text
