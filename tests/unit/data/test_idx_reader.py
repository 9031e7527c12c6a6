"""IDX reader: synthetic files (plain, gzip, damaged) and the real MNIST/Fashion-MNIST."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from deepsad.data.idx import read_idx
from deepsad.errors import DataFileError


def _idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(7, 4, 5), dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_roundtrip_plain_and_gzip(tmp_path, images, compress):
    data = _idx_bytes(images)
    path = tmp_path / ("x.idx3-ubyte.gz" if compress else "x.idx3-ubyte")
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path, expected_ndim=3)
    assert out.dtype == np.uint8 and out.shape == (7, 4, 5)
    assert np.array_equal(out, images)
    out[0, 0, 0] = 1  # writable


def test_other_dtypes_are_native_endian(tmp_path):
    values = np.arange(6, dtype=np.int32).reshape(2, 3) - 3
    (tmp_path / "i").write_bytes(_idx_bytes(values, 0x0C))
    out = read_idx(tmp_path / "i")
    assert out.dtype == np.dtype("int32") and out.dtype.isnative and np.array_equal(out, values)


def test_truncated_gzip_is_a_clear_error(tmp_path, images):
    blob = gzip.compress(_idx_bytes(images))
    path = tmp_path / "t.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFileError, match="truncated"):
        read_idx(path)


def test_truncated_raw_file(tmp_path, images):
    path = tmp_path / "t"
    path.write_bytes(_idx_bytes(images)[:-10])
    with pytest.raises(DataFileError, match=r"truncated: header says shape \(7, 4, 5\)"):
        read_idx(path)


def test_bad_magic_wrong_ndim_trailing_bytes_missing(tmp_path, images):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04" + bytes(20))
    with pytest.raises(DataFileError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "img").write_bytes(_idx_bytes(images))
    with pytest.raises(DataFileError, match="has 3 dimensions, expected 1"):
        read_idx(tmp_path / "img", expected_ndim=1)
    (tmp_path / "long").write_bytes(_idx_bytes(images) + b"xx")
    with pytest.raises(DataFileError, match="2 bytes after the data"):
        read_idx(tmp_path / "long")
    with pytest.raises(DataFileError, match="not found"):
        read_idx(tmp_path / "absent.gz")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataFileError, match="empty file"):
        read_idx(tmp_path / "empty")
    (tmp_path / "corrupt.gz").write_bytes(b"\x1f\x8b" + bytes(30))
    with pytest.raises(DataFileError, match="not a valid gzip file"):
        read_idx(tmp_path / "corrupt.gz")
