"""Atomic file writes: a file is either complete at its final path or absent.

Downloads and written index files go to a temporary file in the destination's folder
(same file system, so :func:`os.replace` is atomic) and are moved into place only once
they are complete; on any error, including Ctrl-C, the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from deepsad.errors import DataFileError


@contextlib.contextmanager
def atomic_output(destination: str | os.PathLike) -> Iterator[tuple[BinaryIO, Path]]:
    """Open a temporary file next to ``destination``; move it there on success.

    Yields
    ------
    (file object, temporary path)
        Write to the file object. If the ``with`` block raises, the temporary file is
        deleted and ``destination`` is left untouched.

    Raises
    ------
    DataFileError
        If the destination folder does not exist or is not writable.
    """
    destination = Path(destination)
    folder = destination.parent
    if not folder.is_dir():
        raise DataFileError(f"cannot write {destination}: folder {folder} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=folder)
    except OSError as error:
        raise DataFileError(f"cannot write in {folder}: {error.strerror or error}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, tmp
        os.replace(tmp, destination)
    finally:
        # after a successful replace the temporary name no longer exists
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
