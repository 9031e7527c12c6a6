"""scikit-learn style detectors: Deep SAD and Deep SVDD."""

from deepsad.detectors.deep_sad import DeepSAD
from deepsad.detectors.deep_svdd import DeepSVDD
from deepsad.detectors.scoring import AnomalyScoreMixin

__all__ = ["AnomalyScoreMixin", "DeepSAD", "DeepSVDD"]
