"""Isolation Forest (Liu, Ting & Zhou, 2008), grown by scikit-learn, scored from plain arrays.

The paper uses ``t = 100`` trees and sub-sampling size ``psi = 256`` (Appendix E). The
trees are grown by :class:`sklearn.ensemble.IsolationForest`; their structure (children,
split feature, threshold, training samples per node) is then kept as flat arrays and
the score computed from them:

    s(x) = 2 ** (-E[h(x)] / c(psi)),   h(x) = depth of x's leaf + c(n_leaf),
    c(n) = 2 H(n - 1) - 2 (n - 1) / n,  H(i) ~ ln(i) + Euler's gamma,  c(1) = 0, c(2) = 1,

which is the anomaly score of the original paper (higher = more anomalous, ~0.5 for
"nothing special") and equals ``-IsolationForest.score_samples`` (checked to 1e-10 by a
unit test). Keeping the arrays rather than the scikit-learn objects lets a model be
saved as safetensors + JSON and restored with identical scores.

Labels are not used; ``drop_labeled_anomalies=True`` removes the samples labeled as
anomalies from the training set instead.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from deepsad.baselines._base import BaseShallowDetector
from deepsad.detectors.estimator_base import check_bool
from deepsad.detectors.scoring import check_contamination
from deepsad.errors import InvalidInputError
from deepsad.validation import check_fraction, check_positive_int

logger = logging.getLogger(__name__)

#: Score of the original paper's "no distinct anomaly" boundary; used by contamination="auto".
IFOREST_NATURAL_THRESHOLD = 0.5


def average_path_length(n: np.ndarray) -> np.ndarray:
    """``c(n)``: the average path length of an unsuccessful binary-search-tree search.

    Parameters
    ----------
    n : array-like of sample counts

    Returns
    -------
    numpy.ndarray of float64, same shape as ``n``
    """
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class IsolationForestDetector(BaseShallowDetector):
    """Isolation Forest with the paper's settings (100 trees, sub-samples of 256).

    The anomaly score is the isolation score ``2^(-E[h(x)] / c(psi))`` in (0, 1]:
    higher = more anomalous. ``fit(X, y)`` validates the semi-labels and then ignores
    them unless ``drop_labeled_anomalies``.

    Parameters
    ----------
    n_estimators : int, default=100
        Number of isolation trees.
    max_samples : int, default=256
        Sub-sampling size psi per tree; capped at the number of training samples.
    max_features : float in (0, 1], default=1.0
        Fraction of features each tree may split on (1.0 in the original method).
    drop_labeled_anomalies : bool, default=False
        Train without the samples labeled as anomalies (``y == -1``).
    standardize : bool, default=False
        Standardize features with the training mean and standard deviation (stored
        with the model and applied at scoring time).
    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"`` flags scores above 0.5 (the original paper's boundary); a fraction
        puts the threshold at that quantile of the training scores.
    random_state : int, RandomState or None, default=None
        Seeds the sub-samples and the random splits.

    Attributes
    ----------
    tree_offsets_ : numpy.ndarray of shape (n_estimators + 1,)
        Tree ``t`` owns the nodes ``tree_offsets_[t]:tree_offsets_[t + 1]``.
    children_left_, children_right_ : numpy.ndarray of int64
        Global node indices of the children (-1 at leaves).
    feature_ : numpy.ndarray of int64
        Column of ``X`` each node splits on (-2 at leaves).
    threshold_split_ : numpy.ndarray of float64
        Split threshold: ``x[feature] <= threshold`` goes left.
    n_node_samples_ : numpy.ndarray of int64
        Training samples that reached each node.
    max_samples_ : int
        The sub-sampling size used.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int = 256,
        max_features: float = 1.0,
        drop_labeled_anomalies: bool = False,
        standardize: bool = False,
        contamination: float | str = "auto",
        random_state: Any = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.drop_labeled_anomalies = drop_labeled_anomalies
        self.standardize = standardize
        self.contamination = contamination
        self.random_state = random_state

    def _check_params(self) -> None:
        check_positive_int("n_estimators", self.n_estimators)
        check_positive_int("max_samples", self.max_samples)
        check_fraction("max_features", self.max_features, low=0.0, high=1.0, low_inclusive=False, high_inclusive=True)
        check_bool("drop_labeled_anomalies", self.drop_labeled_anomalies)
        check_contamination(self.contamination)

    fitted_attribute = "tree_offsets_"
    natural_threshold = IFOREST_NATURAL_THRESHOLD

    def _fit_samples(self, X: np.ndarray, semi_labels: np.ndarray, **fit_params: Any) -> None:
        """Grow the isolation trees and keep them as flat arrays."""
        X_train = self._unsupervised_training_set(X, semi_labels, self.drop_labeled_anomalies)
        self.max_samples_ = min(int(self.max_samples), X_train.shape[0])
        if self.max_samples_ < self.max_samples:
            logger.info("max_samples=%d > %d training samples; using %d", self.max_samples, X_train.shape[0], self.max_samples_)
        forest = IsolationForest(
            n_estimators=int(self.n_estimators),
            max_samples=self.max_samples_,
            max_features=float(self.max_features),
            random_state=self.random_state,
        )
        # scikit-learn grows its trees on float32; passing float32 keeps our scoring
        # comparisons (x <= threshold) bit-identical to its own
        forest.fit(X_train.astype(np.float32))
        self._store_trees(forest, X_train.shape[1])

    def _store_trees(self, forest: IsolationForest, n_features: int) -> None:
        offsets = [0]
        left, right, feature, threshold, n_node = [], [], [], [], []
        for tree, features in zip(forest.estimators_, forest.estimators_features_):
            t = tree.tree_
            base = offsets[-1]
            is_leaf = t.children_left == -1
            left.append(np.where(is_leaf, -1, t.children_left + base))
            right.append(np.where(is_leaf, -1, t.children_right + base))
            # a tree grown on a feature subset numbers its features within that subset
            # (scikit-learn indexes the columns only when the subset is smaller than X)
            local = np.asarray(t.feature, dtype=np.int64)
            if len(features) != n_features:
                columns = np.asarray(features, dtype=np.int64)
                mapped = np.where(is_leaf, -2, columns[np.maximum(local, 0)])
            else:
                mapped = np.where(is_leaf, -2, local)
            feature.append(mapped)
            threshold.append(np.asarray(t.threshold, dtype=np.float64))
            n_node.append(np.asarray(t.n_node_samples, dtype=np.int64))
            offsets.append(base + t.node_count)
        self.tree_offsets_ = np.asarray(offsets, dtype=np.int64)
        self.children_left_ = np.concatenate(left).astype(np.int64)
        self.children_right_ = np.concatenate(right).astype(np.int64)
        self.feature_ = np.concatenate(feature).astype(np.int64)
        self.threshold_split_ = np.concatenate(threshold)
        self.n_node_samples_ = np.concatenate(n_node)

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        # bound the (n_samples, n_trees) work arrays; each row's score is independent of the others
        step = max(1, 2**20 // max(1, self.tree_offsets_.size - 1))
        return np.concatenate([self._tree_scores(X[i : i + step]) for i in range(0, X.shape[0], step)] or [np.zeros(0)])

    def _tree_scores(self, X: np.ndarray) -> np.ndarray:
        """``2 ** (-mean path length / c(psi))`` by walking all trees at once, level by level."""
        # scikit-learn compares float32 features against float64 thresholds
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        n = X.shape[0]
        n_trees = self.tree_offsets_.size - 1
        roots = self.tree_offsets_[:-1]
        node = np.broadcast_to(roots, (n, n_trees)).copy()  # (n_samples, n_trees)
        depth = np.zeros((n, n_trees), dtype=np.float64)
        rows = np.arange(n)[:, None]
        while True:
            inner = self.children_left_[node] != -1
            if not inner.any():
                break
            feature = np.where(inner, self.feature_[node], 0)
            go_left = X[rows, feature] <= self.threshold_split_[node]
            child = np.where(go_left, self.children_left_[node], self.children_right_[node])
            node = np.where(inner, child, node)
            depth += inner
        path = depth + average_path_length(self.n_node_samples_[node])
        mean_path = path.mean(axis=1)
        return np.power(2.0, -mean_path / float(average_path_length(np.array([self.max_samples_]))[0]))

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "tree_offsets": self.tree_offsets_,
            "children_left": self.children_left_,
            "children_right": self.children_right_,
            "feature": self.feature_,
            "threshold": self.threshold_split_,
            "n_node_samples": self.n_node_samples_,
        }
        return arrays, {"max_samples": int(self.max_samples_)}

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.tree_offsets_ = np.asarray(arrays["tree_offsets"], dtype=np.int64)
        self.children_left_ = np.asarray(arrays["children_left"], dtype=np.int64)
        self.children_right_ = np.asarray(arrays["children_right"], dtype=np.int64)
        self.feature_ = np.asarray(arrays["feature"], dtype=np.int64)
        self.threshold_split_ = np.asarray(arrays["threshold"], dtype=np.float64)
        self.n_node_samples_ = np.asarray(arrays["n_node_samples"], dtype=np.int64)
        self.max_samples_ = int(meta["max_samples"])
        n_nodes = self.children_left_.size
        if self.tree_offsets_[-1] != n_nodes or not (
            self.children_right_.size == self.feature_.size == self.threshold_split_.size == self.n_node_samples_.size == n_nodes
        ):
            raise InvalidInputError("inconsistent isolation-forest arrays: node arrays differ in length")
