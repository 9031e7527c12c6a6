"""deepsad: deep semi-supervised anomaly detection.

Deep SAD (Ruff et al., ICLR 2020), Deep SVDD and the paper's baselines as scikit-learn
style estimators, with the paper's experiments runnable from the ``deepsad`` command.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from deepsad._version import __version__

# Attributes imported on first use, so that `import deepsad` (and the `deepsad data`
# commands) do not pay for importing torch and scikit-learn until they are needed.
_LAZY = {
    "DeepSAD": "deepsad.detectors",
    "DeepSVDD": "deepsad.detectors",
    "LeNetSpec": "deepsad.models",
    "MLPSpec": "deepsad.models",
    "fit_stacked": "deepsad.detectors",
    "load": "deepsad.persistence",
    "save": "deepsad.persistence",
}

__all__ = ["DeepSAD", "DeepSVDD", "LeNetSpec", "MLPSpec", "__version__", "fit_stacked", "load", "save"]

if TYPE_CHECKING:  # pragma: no cover
    from deepsad.detectors import DeepSAD, DeepSVDD, fit_stacked
    from deepsad.models import LeNetSpec, MLPSpec
    from deepsad.persistence import load, save


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'deepsad' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
