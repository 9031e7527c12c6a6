"""The paper's shallow baselines as deepsad detectors.

OC-SVM, Isolation Forest, KDE and SSAD share the interface of
:class:`~deepsad.detectors.DeepSAD`: ``fit(X, y)`` with semi-labels (+1 labeled normal,
-1 labeled anomaly, 0 unlabeled; the unsupervised methods validate and then ignore
them), ``anomaly_score(X)`` (higher = more anomalous), scikit-learn's
``score_samples`` / ``decision_function`` / ``predict``, and ``save(path)`` /
``deepsad.load(path)``. Hyperparameter selection is a separate, named step:
:mod:`deepsad.baselines.selection`.
"""

from __future__ import annotations

from deepsad.baselines._qp import QPSolverError
from deepsad.baselines.cae import CAE
from deepsad.baselines.devnet import DevNet
from deepsad.baselines.gram_memo import GramMemo
from deepsad.baselines.hybrid import Hybrid
from deepsad.baselines.iforest import IsolationForestDetector
from deepsad.baselines.kde import KDEDetector
from deepsad.baselines.ocsvm import OCSVM
from deepsad.baselines.selection import (
    PAPER_OCSVM_GRID,
    PAPER_SSAD_GRID,
    SelectionResult,
    paper_test_subset,
    select_hyperparameters,
    validation_split,
)
from deepsad.baselines.shallow_methods import SHALLOW_METHODS
from deepsad.baselines.ssad import SSAD
from deepsad.baselines.ssdgm import SSDGM
from deepsad.baselines.supervised import SupervisedClassifier

#: The deep baselines of the paper (Appendix E), by stable name.
DEEP_BASELINES: dict[str, type] = {
    "cae": CAE,
    "supervised": SupervisedClassifier,
    "hybrid": Hybrid,
    "ssdgm": SSDGM,
    # not in the paper: ADBench's strongest semi-supervised method (Pang et al., KDD 2019)
    "devnet": DevNet,
}

__all__ = [
    "CAE",
    "DEEP_BASELINES",
    "DevNet",
    "GramMemo",
    "Hybrid",
    "SupervisedClassifier",
    "PAPER_OCSVM_GRID",
    "PAPER_SSAD_GRID",
    "SHALLOW_METHODS",
    "IsolationForestDetector",
    "KDEDetector",
    "OCSVM",
    "QPSolverError",
    "SSAD",
    "SSDGM",
    "SelectionResult",
    "paper_test_subset",
    "select_hyperparameters",
    "validation_split",
]
