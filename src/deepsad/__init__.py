"""deepsad: deep semi-supervised anomaly detection.

Deep SAD (Ruff et al., ICLR 2020), Deep SVDD and the paper's baselines as scikit-learn
style estimators, with the paper's experiments runnable from the ``deepsad`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepsad._lazy import lazy_attributes as _lazy_attributes
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


__getattr__, __dir__ = _lazy_attributes(__name__, globals(), _LAZY, __all__)
