"""A dataset file's bytes, with the error a user can act on instead of an ``OSError``.

The binary readers (IDX, CIFAR-10 batches) read a whole file into memory before parsing
it; this is the one place that turns a missing or unreadable file into a one-line
:class:`~deepsad.errors.DataFileError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from deepsad.errors import DataFileError


def read_raw_file(path: str | os.PathLike[str], what: str) -> bytes:
    """Return the whole content of ``path``.

    Parameters
    ----------
    path : path-like
        The file to read.
    what : str
        What the file is, for the message when it is missing (``"IDX file"``).

    Returns
    -------
    bytes
        The file's content.

    Raises
    ------
    DataFileError
        ``"<what> not found: <path>"`` for a missing file, ``"cannot read <path>: <reason>"``
        for any other failure (a folder, no permission, an I/O error).
    """
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(f"{what} not found: {path}") from None
    except OSError as error:
        raise DataFileError(f"cannot read {path}: {error.strerror or error}") from None
