"""What a result depends on besides its task: package versions and the process's threads."""

from __future__ import annotations

import functools
import platform
import sys

import numpy as np

from deepsad._version import __version__


# memoised, not state: the installed packages do not change while a process runs
@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on (stored with every row).

    Returns
    -------
    dict of str to str
        ``deepsad``, ``python``, ``numpy``, ``scipy``, ``scikit-learn`` and ``torch``.
    """
    import scipy
    import sklearn
    import torch

    return {
        "deepsad": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
    }


def torch_threads() -> int | None:
    """torch's intra-op threads now, or ``None`` when torch has not been imported."""
    torch = sys.modules.get("torch")  # reading the setting must not import torch
    return int(torch.get_num_threads()) if torch is not None else None
