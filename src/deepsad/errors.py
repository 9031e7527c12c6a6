"""Exception types of deepsad.

Every error a user can cause derives from :class:`DeepSADError`, so the CLI can turn
it into one clear line; the more specific bases (``ValueError``, ``OSError``) keep
the library usable from code that already catches the standard exceptions.
"""

from __future__ import annotations


class DeepSADError(Exception):
    """Base class of every error deepsad raises on purpose."""


class InvalidInputError(DeepSADError, ValueError):
    """Data, labels or parameters that cannot be used (shape, NaN, label values, ...)."""


class ModelFileError(DeepSADError, OSError):
    """A saved model directory that is missing, truncated, tampered with or unreadable."""


class DataFileError(DeepSADError, OSError):
    """A data file that is missing, truncated, corrupt or fails its checksum."""


class TrainingError(DeepSADError, RuntimeError):
    """Training that cannot go on, e.g. a loss that became NaN or infinite."""


class InvalidInputTypeError(InvalidInputError, TypeError):
    """Input of a type that cannot be used at all (e.g. strings where numbers are needed)."""
