"""The main job of the quick start: Deep SAD vs Deep SVDD on scikit-learn's digits.

Needs no download: the 8x8 UCI digits ship with scikit-learn. Each digit in turn is the
normal class; the training set is that digit's training images (unlabeled) plus a few
labeled anomalies from one other digit (scenario (i) of the paper in miniature); the
test set holds every digit, so most test anomalies are of classes never seen labeled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from deepsad.data.scenarios import sample_image_scenario
from deepsad.detectors import DeepSAD, DeepSVDD
from deepsad.models import MLPSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoResult:
    """Test AUCs of one one-vs-rest setup."""

    normal_class: int
    known_class: int
    n_train: int
    n_labeled_anomalies: int
    deep_svdd_auc: float
    deep_sad_auc: float


def run_digits_demo(
    *,
    normal_classes: list[int] | range = range(10),
    epochs: int = 150,
    gamma_l: float = 0.05,
    seed: int = 0,
    batch_size: int = 32,
) -> list[DemoResult]:
    """Train Deep SVDD and Deep SAD for each normal digit and return their test AUCs.

    Parameters
    ----------
    normal_classes : list of int
        Digits to use as the normal class, one setup each.
    epochs : int
        Pretraining epochs and training epochs (each); the learning rate drops tenfold
        after the first third.
    gamma_l : float
        Ratio of labeled anomalies in the training set, m / (n + m).
    seed : int
        Seeds the split, the draw and both networks.
    batch_size : int
        Mini-batch size (the digits training sets hold ~110 images per class, so the
        paper's 200 would give one step per epoch).

    Returns
    -------
    list of DemoResult
    """
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)  # (1797, 64) in [0, 1]
    classes = digits.target.astype(np.int64)
    X_train, X_test, c_train, c_test = train_test_split(
        X, classes, test_size=0.4, stratify=classes, random_state=seed
    )
    milestone = max(1, epochs // 3)
    settings = dict(
        network=MLPSpec(hidden_sizes=(32, 16), rep_dim=8),
        epochs=epochs,
        pretrain_epochs=epochs,
        lr=1e-3,
        pretrain_lr=1e-3,
        lr_milestones=(milestone,),
        pretrain_lr_milestones=(milestone,),
        batch_size=batch_size,
        random_state=seed,
    )
    results = []
    for normal in normal_classes:
        known = (int(normal) + 1) % 10
        draw = sample_image_scenario(
            c_train,
            c_test,
            normal_classes=[int(normal)],
            known_anomaly_classes=[known],
            gamma_l=gamma_l,
            gamma_p=0.0,
            rng=np.random.default_rng(seed),
            seed=seed,
        )
        X_fit = X_train[draw.train_indices]
        X_eval, truth = X_test[draw.test_indices], draw.test_ground_truth
        svdd = DeepSVDD(**settings).fit(X_fit)
        sad = DeepSAD(**settings).fit(X_fit, draw.train_semi_labels)
        result = DemoResult(
            normal_class=int(normal),
            known_class=known,
            n_train=len(draw.train_indices),
            n_labeled_anomalies=int((draw.train_semi_labels == -1).sum()),
            deep_svdd_auc=float(roc_auc_score(truth, svdd.anomaly_score(X_eval))),
            deep_sad_auc=float(roc_auc_score(truth, sad.anomaly_score(X_eval))),
        )
        logger.info("%s", result)
        results.append(result)
    return results
