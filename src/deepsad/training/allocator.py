"""Keep freed CPU memory in the process for reuse (glibc malloc settings), on request.

CPU training allocates and frees the same activation-sized blocks every step; glibc
returns such blocks to the kernel, so each step pays page faults on fresh pages.
:func:`keep_freed_memory` makes malloc keep them (figures: docs/performance.md, "CPU
training settings"). It changes malloc for the whole process and cannot be undone, so
the library never calls it by itself: the ``deepsad`` command and the experiment
workers do, and an application may. The environment variable
``DEEPSAD_KEEP_FREED_MEMORY=0`` (or ``false`` / ``no`` / ``off``) turns the call into a
no-op. It does nothing where the C library is not glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

logger = logging.getLogger(__name__)

#: mallopt parameter numbers (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc caps the mmap threshold at 4 MiB * sizeof(long), i.e. 32 MiB on 64-bit systems
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
_TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024

ENVIRONMENT_VARIABLE = "DEEPSAD_KEEP_FREED_MEMORY"
#: values of the variable that turn it off (any other value, or none, leaves it on)
_OFF_VALUES = frozenset({"0", "false", "no", "off"})

_applied: bool | None = None  # None: not tried yet in this process


def keep_freed_memory() -> bool:
    """Make glibc malloc keep freed blocks for reuse, for the rest of the process.

    Sets ``M_MMAP_THRESHOLD`` to glibc's maximum (blocks up to 32 MiB come from the heap)
    and ``M_TRIM_THRESHOLD`` to 1 GiB (the heap is not shrunk while less than that is
    free at its top). The cost: the process holds on to up to that much freed memory.
    Applied once per process; later calls return the first call's result.

    Returns
    -------
    bool
        Whether the settings are in effect: False where malloc is not glibc's, when
        ``DEEPSAD_KEEP_FREED_MEMORY`` is ``0`` / ``false`` / ``no`` / ``off``, or when glibc
        refused a setting.
    """
    global _applied
    if _applied is not None:
        return _applied
    if os.environ.get(ENVIRONMENT_VARIABLE, "1").strip().lower() in _OFF_VALUES:
        _applied = False
        return False
    _applied = _set_glibc_thresholds()
    return _applied


def _set_glibc_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)  # the running process's own symbols: its C library
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES) == 1 and ok
    logger.debug("glibc malloc thresholds for training: %s", "set" if ok else "refused")
    return ok
