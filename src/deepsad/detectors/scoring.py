"""The score conventions every deepsad detector shares.

scikit-learn's outlier detectors say "higher = more normal" (``score_samples``) and
threshold at ``offset_``; anomaly-detection people say "higher = more anomalous". Every
detector implements :meth:`anomaly_score` and gets the scikit-learn methods from
:class:`AnomalyScoreMixin`, so both conventions agree by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError

#: Contamination used by ``contamination="auto"`` when a method has no natural boundary.
AUTO_CONTAMINATION = 0.1


def check_contamination(contamination: Any) -> float | str:
    """Validate ``contamination``: ``"auto"`` or a fraction in (0, 0.5]."""
    if isinstance(contamination, str):
        if contamination != "auto":
            raise InvalidInputError(f"contamination must be 'auto' or a float in (0, 0.5], got {contamination!r}")
        return contamination
    if isinstance(contamination, bool) or not isinstance(contamination, (int, float, np.floating)):
        raise InvalidInputError(f"contamination must be 'auto' or a float in (0, 0.5], got {contamination!r}")
    if not 0.0 < float(contamination) <= 0.5:
        raise InvalidInputError(f"contamination must be in (0, 0.5], got {contamination}")
    return float(contamination)


class AnomalyScoreMixin:
    """scikit-learn's ``score_samples`` / ``decision_function`` / ``predict`` from ``anomaly_score``.

    Subclasses implement ``anomaly_score(X)`` (higher = more anomalous) and call
    :meth:`_set_threshold` at the end of ``fit`` with the training anomaly scores.
    """

    contamination: Any
    threshold_: float
    offset_: float

    def anomaly_score(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        """Anomaly score of each sample: higher means more anomalous."""
        raise NotImplementedError

    def score_samples(self, X: Any) -> np.ndarray:
        """Normality score of each sample (scikit-learn convention): higher = more normal.

        Parameters
        ----------
        X : array-like or torch.Tensor
            Samples shaped like the training data.

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
            ``-anomaly_score(X)``.
        """
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """Signed distance to the threshold: negative for predicted anomalies.

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """Predict +1 (normal) or -1 (anomaly) with the threshold set by ``contamination``.

        Returns
        -------
        numpy.ndarray of shape (n_samples,), dtype int
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` (with semi-labels ``y`` where the method uses them) and predict +1 / -1.

        scikit-learn's ``OutlierMixin.fit_predict`` drops ``y``; semi-supervised detectors need it.
        """
        return self.fit(X, y, **kwargs).predict(X)

    def _set_threshold(
        self,
        train_anomaly_scores: np.ndarray | Callable[[], np.ndarray],
        natural_threshold: float | None = None,
    ) -> None:
        """Set ``threshold_`` (anomaly-score scale) and ``offset_`` (sklearn scale).

        ``contamination="auto"`` uses the method's own boundary when it has one (e.g. the
        soft-boundary radius), else flags the top ``AUTO_CONTAMINATION`` of training scores.
        ``train_anomaly_scores`` may be a function computing them: kernel methods pass one,
        because scoring the whole training set can cost as much as a fit (a 27k-sample
        OC-SVM: seconds per candidate of a search) and is not needed at the natural boundary.
        """
        contamination = check_contamination(self.contamination)
        if contamination == "auto" and natural_threshold is not None:
            threshold = float(natural_threshold)
        else:
            fraction = AUTO_CONTAMINATION if contamination == "auto" else float(contamination)
            if callable(train_anomaly_scores):
                train_anomaly_scores = train_anomaly_scores()
            threshold = float(np.percentile(train_anomaly_scores, 100.0 * (1.0 - fraction)))
        self.threshold_ = threshold
        self.offset_ = -threshold
