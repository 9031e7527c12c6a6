"""The CPU share of an experiment worker: the cores it may use and its thread pools."""

from __future__ import annotations

import os
from collections.abc import Callable


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def configure_threads(threads: int | None) -> Callable[[], None]:
    """Limit torch's intra-op threads and the BLAS/OpenMP pools to ``threads``.

    Small networks gain nothing from many threads while several workers share the
    machine (DESIGN §6: two one-thread workers beat one two-thread process), so each
    worker gets ``cores // workers``.

    Parameters
    ----------
    threads : int or None
        Threads per pool; ``None`` leaves the current settings alone.

    Returns
    -------
    callable
        Restores the previous settings (the serial executor runs in the caller's process).
    """
    if threads is None:
        return lambda: None
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    limits = None
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=int(threads))
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass

    def restore() -> None:
        torch.set_num_threads(previous)
        if limits is not None:
            limits.restore_original_limits()

    return restore
