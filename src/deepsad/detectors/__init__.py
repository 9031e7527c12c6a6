"""scikit-learn style detectors: Deep SAD and Deep SVDD, and fitting several at once."""

from deepsad.detectors.deep_sad import DeepSAD
from deepsad.detectors.deep_svdd import DeepSVDD
from deepsad.detectors.scoring import AnomalyScoreMixin
from deepsad.detectors.stacked import fit_stacked

__all__ = ["AnomalyScoreMixin", "DeepSAD", "DeepSVDD", "fit_stacked"]
