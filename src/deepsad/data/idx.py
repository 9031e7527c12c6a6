"""Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed).

IDX layout: two zero bytes, a type code, the number of dimensions, then one big-endian
uint32 per dimension, then the values in C order. The whole file is decompressed in
one call (zlib in C), which is what keeps a full MNIST load well under a second.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from deepsad.data.raw_file import read_raw_file
from deepsad.errors import DataFileError

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_maybe_gzip(path: Path) -> bytes:
    raw = read_raw_file(path, "IDX file")
    # decide by content, not by suffix: some mirrors serve decompressed files named .gz
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    chunks = []
    data = raw
    try:
        while data:
            # wbits=31: gzip header and trailer; loop for multi-member gzip files
            decomp = zlib.decompressobj(31)
            chunks.append(decomp.decompress(data))
            chunks.append(decomp.flush())
            if not decomp.eof:
                raise DataFileError(
                    f"{path} is truncated: the gzip stream ends early (re-download the file)"
                )
            data = decomp.unused_data.lstrip(b"\x00")
    except zlib.error as error:
        raise DataFileError(f"{path} is not a valid gzip file: {error}") from None
    return chunks[0] if len(chunks) == 2 and not chunks[1] else b"".join(chunks)


def read_idx(path: str | os.PathLike, *, expected_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or uncompressed) into a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The IDX file. Gzip compression is detected from the content.
    expected_ndim : int, optional
        Refuse a file with another number of dimensions (3 for image files, 1 for labels).

    Returns
    -------
    numpy.ndarray
        In native byte order, shape as in the header (``(n, 28, 28)`` for MNIST images).

    Raises
    ------
    DataFileError
        If the file is missing, not an IDX file (bad magic number), has an unexpected
        number of dimensions, or is truncated.
    """
    path = Path(path)
    raw = _read_maybe_gzip(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        magic = raw[:4].hex() if raw else "empty file"
        raise DataFileError(f"{path} is not an IDX file (magic number {magic})")
    dtype = IDX_DTYPES[raw[2]]
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise DataFileError(f"{path} has {ndim} dimensions, expected {expected_ndim}")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataFileError(f"{path} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    count = int(np.prod(shape, dtype=np.int64))
    expected = header_size + count * dtype.itemsize
    if len(raw) < expected:
        raise DataFileError(
            f"{path} is truncated: header says shape {shape} ({expected} bytes), file has {len(raw)}"
        )
    if len(raw) > expected:
        raise DataFileError(
            f"{path} has {len(raw) - expected} bytes after the data that its header {shape} "
            "does not account for"
        )
    values = np.frombuffer(raw, dtype=dtype, count=count, offset=header_size)
    # astype copies into a writable, native-endian array (frombuffer on bytes is read-only)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
