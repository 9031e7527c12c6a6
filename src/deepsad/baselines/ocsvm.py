"""One-class SVM (Schölkopf et al., 2001) with the RBF kernel, wrapping scikit-learn.

For the RBF kernel (``k(x, x) = 1``) the OC-SVM and SVDD (Tax & Duin, 2004) have the same
dual and rank samples identically, which is why the paper reports them as one method
"OC-SVM/SVDD" (Appendix E). The solver is libsvm through
:class:`sklearn.svm.OneClassSVM`; the fitted model is kept as plain arrays (support
vectors, dual coefficients, intercept, gamma) and scored by
:func:`~deepsad.baselines.kernels.kernel_expansion`, so that a model restored from a
safetensors + JSON file scores exactly like the fitted one. A unit test checks that
these scores equal ``-OneClassSVM.decision_function``.

Labels are not used: the OC-SVM is unsupervised. ``fit(X, y)`` validates ``y`` and then
treats every sample as unlabeled, unless ``drop_labeled_anomalies=True`` removes the
labeled anomalies (``y == -1``) from the training set. Hyperparameters (``gamma``,
``nu``) are chosen outside ``fit`` with :mod:`deepsad.baselines.selection`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn import config_context
from sklearn.svm import OneClassSVM

from deepsad.baselines._base import BaseShallowDetector, check_positive_number
from deepsad.baselines.gram_memo import GramMemo
from deepsad.baselines.kernels import check_gamma, kernel_expansion, resolve_gamma
from deepsad.detectors.estimator_base import check_bool
from deepsad.detectors.scoring import check_contamination
from deepsad.errors import InvalidInputError
from deepsad.validation import check_fraction

logger = logging.getLogger(__name__)


class OCSVM(BaseShallowDetector):
    """One-class SVM with a Gaussian (RBF) kernel; labels are ignored.

    The anomaly score is the negative SVM decision function: higher = more anomalous,
    > 0 outside the boundary.

    Parameters
    ----------
    gamma : float or "scale", default="scale"
        RBF parameter in ``k(x, z) = exp(-gamma ||x - z||^2)``; ``"scale"`` is
        ``1 / (n_features * X.var())``. The paper selects it from ``2^-7 ... 2^2``
        (:data:`deepsad.baselines.selection.PAPER_OCSVM_GRID`).
    nu : float in (0, 1], default=0.1
        Upper bound on the fraction of training errors and lower bound on the fraction
        of support vectors. The paper's grid: ``{0.01, 0.05, 0.1, 0.2, 0.5}``.
    tol : float, default=1e-3
        libsvm's stopping tolerance.
    max_iter : int, default=-1
        libsvm iteration limit; -1 means none. A limit that is hit makes scikit-learn
        warn (``ConvergenceWarning``).
    cache_size : float, default=200
        libsvm kernel cache in MB.
    drop_labeled_anomalies : bool, default=False
        Train without the samples labeled as anomalies (``y == -1``). By default the
        labels are ignored and every sample is used, as in the paper.
    standardize : bool, default=False
        Standardize features with the training mean and standard deviation (stored
        with the model and applied at scoring time).
    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"`` keeps the SVM's own boundary (decision function 0); a fraction puts
        the threshold at that quantile of the training scores.

    Attributes
    ----------
    support_vectors_ : numpy.ndarray of shape (n_support, n_features)
    dual_coef_ : numpy.ndarray of shape (n_support,)
        libsvm's dual coefficients (they sum to ``nu * n_train``).
    intercept_ : float
        ``-rho`` of libsvm: ``decision = sum_j dual_coef_j k(sv_j, x) + intercept_``.
    gamma_ : float
        The numeric RBF parameter used.
    n_train_ : int
        Samples the SVM was trained on.
    n_iter_ : int
        Iterations libsvm ran (as :class:`sklearn.svm.OneClassSVM`'s ``n_iter_``).
    n_features_in_, input_shape_, threshold_, offset_
        As for every deepsad detector.
    """

    def __init__(
        self,
        *,
        gamma: float | str = "scale",
        nu: float = 0.1,
        tol: float = 1e-3,
        max_iter: int = -1,
        cache_size: float = 200,
        drop_labeled_anomalies: bool = False,
        standardize: bool = False,
        contamination: float | str = "auto",
    ) -> None:
        self.gamma = gamma
        self.nu = nu
        self.tol = tol
        self.max_iter = max_iter
        self.cache_size = cache_size
        self.drop_labeled_anomalies = drop_labeled_anomalies
        self.standardize = standardize
        self.contamination = contamination

    def _check_params(self) -> None:
        check_gamma(self.gamma)
        check_fraction("nu", self.nu, low=0.0, high=1.0, low_inclusive=False, high_inclusive=True)
        check_positive_number("tol", self.tol)
        check_positive_number("cache_size", self.cache_size)
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)) or (
            self.max_iter < 1 and self.max_iter != -1
        ):
            raise InvalidInputError(f"max_iter must be a positive integer or -1 (no limit), got {self.max_iter!r}")
        check_bool("drop_labeled_anomalies", self.drop_labeled_anomalies)
        check_contamination(self.contamination)

    #: ``fit`` takes ``gram_memo`` (see :func:`deepsad.baselines.select_hyperparameters`).
    accepts_gram_memo = True

    fitted_attribute = "support_vectors_"
    natural_threshold = 0.0

    def fit(self, X: Any, y: Any = None, *, gram_memo: GramMemo | None = None) -> OCSVM:
        """Fit the one-class SVM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples (NaN/inf rejected).
        y : array-like of shape (n_samples,) or None
            Semi-labels (+1 normal, -1 anomaly, 0 unlabeled). Validated, then ignored
            unless ``drop_labeled_anomalies=True``.
        gram_memo : GramMemo or None, default=None
            Shares the training Gram matrix with other fits on the same data (a
            hyperparameter search): libsvm then reads kernel values instead of computing
            them, which is several times faster with many support vectors. The solution
            is the same up to rounding. Without it, or when the matrix exceeds the memo's
            memory budget, libsvm computes the kernel itself.

        Returns
        -------
        OCSVM
            The fitted detector.
        """
        super().fit(X, y, gram_memo=gram_memo)
        return self

    def _fit_samples(self, X: np.ndarray, semi_labels: np.ndarray, *, gram_memo: GramMemo | None = None) -> None:
        X_train = self._unsupervised_training_set(X, semi_labels, self.drop_labeled_anomalies)
        if gram_memo is not None and not isinstance(gram_memo, GramMemo):
            raise InvalidInputError(f"gram_memo must be a GramMemo or None, got {type(gram_memo).__name__}")
        self.gamma_ = resolve_gamma(self.gamma, X_train)
        gram = None if gram_memo is None else gram_memo.gram(X_train, self.gamma_)
        svm = OneClassSVM(
            kernel="rbf" if gram is None else "precomputed",
            gamma=self.gamma_,
            nu=float(self.nu),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            cache_size=float(self.cache_size),
        )
        if gram is None:
            svm.fit(X_train)
            support_vectors = svm.support_vectors_
        else:
            # the Gram matrix is finite by construction; scikit-learn's check of its n^2
            # entries would cost a third of a typical fit
            with config_context(assume_finite=True):
                svm.fit(gram)
            support_vectors = X_train[svm.support_]
        self.support_vectors_ = np.asarray(support_vectors, dtype=np.float64)
        self.dual_coef_ = np.asarray(svm.dual_coef_, dtype=np.float64).ravel()
        self.intercept_ = float(np.ravel(svm.intercept_)[0])
        self.n_train_ = int(X_train.shape[0])
        self.n_iter_ = int(svm.n_iter_)
        logger.debug("OCSVM: %d support vectors of %d samples", self.dual_coef_.size, self.n_train_)

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        return -(kernel_expansion(X, self.support_vectors_, self.dual_coef_, self.gamma_) + self.intercept_)

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_}
        meta = {
            "intercept": self.intercept_,
            "gamma": self.gamma_,
            "n_train": self.n_train_,
            "n_iter": self.n_iter_,
        }
        return arrays, meta

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.support_vectors_ = np.asarray(arrays["support_vectors"], dtype=np.float64)
        self.dual_coef_ = np.asarray(arrays["dual_coef"], dtype=np.float64)
        self.intercept_ = float(meta["intercept"])
        self.gamma_ = float(meta["gamma"])
        self.n_train_ = int(meta["n_train"])
        if "n_iter" in meta:  # models saved before n_iter_ existed lack it
            self.n_iter_ = int(meta["n_iter"])
