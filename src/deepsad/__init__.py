"""deepsad: deep semi-supervised anomaly detection.

Deep SAD (Ruff et al., ICLR 2020), Deep SVDD and the paper's baselines as scikit-learn
style estimators, with the paper's experiments runnable from the ``deepsad`` command.
"""

from __future__ import annotations

__version__ = "0.1.0"

from deepsad.detectors import DeepSAD, DeepSVDD  # noqa: E402
from deepsad.models import LeNetSpec, MLPSpec  # noqa: E402
from deepsad.persistence import load, save  # noqa: E402

__all__ = ["DeepSAD", "DeepSVDD", "LeNetSpec", "MLPSpec", "__version__", "load", "save"]
