r"""SSAD: semi-supervised anomaly detection (Görnitz, Kloft, Rieck & Brefeld, JAIR 2013).

The paper's shallow semi-supervised competitor: an SVDD / one-class SVM that also uses
labeled normal samples and labeled anomalies, with an RBF kernel and the authors'
recommended ``kappa = 1`` and ``Cp = Cu = Cn = 1`` (Deep SAD paper, Appendix E).

Notation
--------
Training samples ``x_i`` (i = 1..n) with semi-labels ``y_i`` in {+1, -1, 0} (labeled
normal, labeled anomaly, unlabeled). Write ``s_i = -1`` for labeled anomalies and ``+1``
otherwise, ``delta_i = 1`` for labeled samples and 0 for unlabeled ones, and
``C_i = Cu, Cp, Cn`` for unlabeled, labeled-normal and labeled-anomalous samples.
``k(x, z) = exp(-gamma ||x - z||^2) = <phi(x), phi(z)>``.

Primal
------
Görnitz et al. write SSAD as a hypersphere (SVDD) problem::

    min_{R, c, gamma, xi >= 0}  R^2 - kappa*gamma + sum_i C_i xi_i
    s.t.  ||phi(x_i) - c||^2 <= R^2 + xi_i                        (unlabeled)
          y_i (||phi(x_i) - c||^2 - R^2) <= -gamma + xi_i          (labeled)

which is not convex (a labeled anomaly's constraint keeps ``c`` away from a point). For
a kernel with constant diagonal, such as the RBF kernel (``k(x, x) = 1``), a squared
distance ``||phi(x) - c||^2 = 1 - 2 <c, phi(x)> + ||c||^2`` is an affine function of
``<c, phi(x)>``, and the problem's Lagrangian dual coincides (up to constants) with that
of the convex hyperplane form, which is the one solved here (the form of the authors'
"convex SSAD")::

    (P)  min_{w, rho, gamma >= 0, xi >= 0}  1/2 ||w||^2 - rho - kappa*gamma + sum_i C_i xi_i
         s.t.  s_i (<w, phi(x_i)> - rho) >= delta_i * gamma - xi_i      for all i.

``gamma`` is the margin by which labeled samples must lie on their side of the
boundary; ``kappa`` rewards it. (Below, the kernel parameter is ``gamma_kernel`` when
both could be confused; the fitted margin is ``margin_``.)

Lagrangian and dual
-------------------
With multipliers ``alpha_i >= 0`` (margin constraints), ``beta_i >= 0`` (``xi_i >= 0``)
and ``mu >= 0`` (``gamma >= 0``)::

    L = 1/2 ||w||^2 - rho - kappa*gamma + sum_i C_i xi_i - mu*gamma - sum_i beta_i xi_i
        - sum_i alpha_i [ s_i (<w, phi(x_i)> - rho) - delta_i gamma + xi_i ]

Stationarity gives ``w = sum_i alpha_i s_i phi(x_i)`` (d/dw), ``sum_i s_i alpha_i = 1``
(d/drho), ``sum_i delta_i alpha_i = kappa + mu >= kappa`` (d/dgamma) and
``alpha_i = C_i - beta_i <= C_i`` (d/dxi_i). Substituting::

    (D)  min_alpha  1/2 alpha' Q alpha,   Q_ij = s_i s_j k(x_i, x_j)
         s.t.  sum_i s_i alpha_i = 1,   sum_{i labeled} alpha_i >= kappa,   0 <= alpha_i <= C_i.

``Q = diag(s) K diag(s)`` is positive semi-definite, so (D) is a convex QP. It is
feasible iff the box allows ``sum_i s_i alpha_i = 1`` together with a labeled mass of
``kappa`` (e.g. ``kappa <= Cp n_normal + Cn n_anomaly``); otherwise (P) is unbounded
and :class:`~deepsad.errors.InvalidInputError` is raised before solving. When ``kappa``
equals the largest attainable labeled mass — e.g. the default ``kappa = 1`` with
labeled normals but no labeled anomalies, where ``sum_i alpha_i = 1`` leaves no room —
the kappa constraint can only hold with equality, ``(rho, gamma)`` is determined only up
to the ray ``(rho - t, gamma + t)`` and no finite multipliers exist; ``kappa`` is then
lowered by a relative 1e-3 (logged, stored in ``kappa_``), which makes them unique. Without any
labeled sample — or with ``kappa = 0`` — ``gamma`` has no constraint left to act on and
is dropped with its constraint.

Recovering rho, gamma and the score (KKT)
-----------------------------------------
Complementary slackness: ``alpha_i > 0`` implies ``s_i (f_w(x_i) - rho) = delta_i gamma
- xi_i`` with ``f_w(x) = sum_j alpha_j s_j k(x_j, x)``; ``alpha_i < C_i`` implies
``xi_i = 0``; ``mu * gamma = 0``. So for a "free" point ``0 < alpha_i < C_i``:
``rho = f_w(x_i)`` if unlabeled, ``f_w(x_i) - rho = gamma`` if labeled normal,
``rho - f_w(x_i) = gamma`` if a labeled anomaly; and ``gamma = 0`` if the labeled mass
exceeds ``kappa``. Instead of averaging over free points (undefined when none is free),
``rho`` and ``gamma`` are read off the dual solution: the multiplier of
``sum_i s_i alpha_i = 1`` is ``-rho`` and that of the kappa constraint is ``gamma``
(the dual of (D) is (P)); the interior-point solver returns both to high accuracy, and
a unit test checks the free-point conditions above. The decision function and the
anomaly score are::

    f(x) = sum_i alpha_i s_i k(x_i, x) - rho         (>= 0: inside, normal)
    anomaly_score(x) = -f(x) = rho - sum_i alpha_i s_i k(x_i, x)

and ``contamination="auto"`` thresholds at the boundary ``anomaly_score = 0``. With the
RBF kernel the squared distance to the centre ``c = sum_i alpha_i s_i phi(x_i)`` of the
hypersphere form is ``1 - 2 sum_i alpha_i s_i k(x_i, x) + ||c||^2``, a strictly
increasing function of this score: both forms rank samples identically.

Correspondence with the OC-SVM and SVDD
---------------------------------------
Without labels (D) is ``min 1/2 alpha' K alpha  s.t.  sum alpha = 1, 0 <= alpha <= Cu``:
the one-class SVM dual (Schölkopf et al., 2001) with ``1 / (nu n) = Cu``, i.e.
``nu = 1 / (Cu n)``, and the SVDD dual (Tax & Duin, 2004) with ``C = Cu`` for the RBF
kernel. libsvm (scikit-learn's ``OneClassSVM``) scales the same problem by ``nu n``
(``alpha_libsvm = nu n alpha``, ``rho_libsvm = nu n rho``), which does not change the
ranking. Hence ``SSAD(Cu=1/(nu*n))`` fitted without labels ranks like
``OneClassSVM(nu=nu)`` with the same ``gamma`` (a unit test checks Spearman >= 0.99 on real
data). The paper's ``Cu = 1`` is ``nu = 1/n``: the hard-margin (minimum enclosing ball)
case for the unlabeled data.

Solver and scale
----------------
(D) is solved by CVXOPT's interior-point ``coneqp`` with a KKT solver that exploits the
structure ``Q + diagonal + rank one`` (see :mod:`deepsad.baselines._qp` for why
CVXOPT). Up to ``max_exact_samples`` training samples (default 10000, which covers
every MNIST / Fashion-MNIST / CIFAR-10 one-class training set with up to 20% labeled
anomalies, and every ODDS set but shuttle) the dense kernel is used: about 2 n^2
doubles of memory (1.6 GB at n = 10000) and one Cholesky factorisation per iteration.

Larger training sets (shuttle: ~29k), ``large_scale="working-set"`` (default): the
*same* problem is solved exactly by decomposition (chunking; Osuna, Freund & Girosi,
1997). A working set W of at most ``max_exact_samples`` samples (all labeled ones plus a
random draw) is solved densely with ``alpha_i = 0`` outside W; outside samples that
violate their KKT condition ``s_i (f(x_i) - rho) >= delta_i gamma`` (beyond a relative
tolerance of 1e-4 of ``rho``) are found; the next W is the support vectors plus the
(up to 1000) worst violators, and the loop repeats until no sample violates. Dropping
samples with ``alpha_i = 0`` keeps the previous optimum feasible and each violator
lowers it, so the rounds cannot cycle. This is exact whenever the support
vectors fit into W — always the case with the paper's ``Cu = 1`` (a hard margin for the
unlabeled data, so few support vectors); otherwise it stops with a clear error.

``large_scale="nystroem"``: the documented approximation. The same problem (D) with
the kernel replaced by ``K ~ Phi Phi'``, ``Phi = K(X, L) U Lambda^{-1/2}`` from ``m =
n_components`` landmarks ``L`` with ``K(L, L) = U Lambda U'`` — i.e. SSAD solved exactly
in the m-dimensional feature space spanned by the landmarks, with the same constraints,
``kappa`` and ``C``. Memory is O(n m) and each interior-point iteration O(n m^2), solved
by a Woodbury identity. Landmarks are all labeled samples (up to m/2, so the few
informative labeled constraints are represented exactly) plus samples drawn uniformly
without replacement from the rest (``random_state``). The fitted function is again a
kernel expansion, over the landmarks: ``f(x) = K(x, L) v - rho`` with
``v = U Lambda^{-1/2} Phi' (s * alpha)``. Its quality depends on how well m landmarks
capture the kernel: good for small ``gamma`` (smooth kernels), poor when most training
points are support vectors (large ``gamma``), which is why it is not the default.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from deepsad.baselines._base import BaseShallowDetector, check_positive_number
from deepsad.baselines._qp import DualSolution, QPSolverError, solve_ssad_dual
from deepsad.baselines.kernels import check_gamma, kernel_expansion, map_kernel_blocks, rbf_gram, rbf_kernel, resolve_gamma
from deepsad.detectors.scoring import check_contamination
from deepsad.errors import InvalidInputError, TrainingError
from deepsad.validation import check_positive_int

logger = logging.getLogger(__name__)

__all__ = ["SSAD", "QPSolverError"]

#: Dual variables below this fraction of the largest one are not support vectors; their
#: total weight is logged so a lossy pruning would be visible.
SUPPORT_RELATIVE_TOL = 1e-7

#: Ways to handle training sets above ``max_exact_samples``.
LARGE_SCALE_METHODS = ("working-set", "nystroem")

#: Working-set decomposition: initial size (capped at max_exact_samples / 2), violators
#: added per round (capped at max_exact_samples / 10), rounds allowed, and the tolerance
#: (relative to rho) below which a constraint counts as violated.
WORKING_SET_INITIAL = 2000
WORKING_SET_ADD = 1000
WORKING_SET_MAX_ROUNDS = 100
WORKING_SET_RTOL = 1e-4

#: Nyström eigenvalues below this fraction of the largest are dropped (rank deficiency).
NYSTROEM_EIGEN_RTOL = 1e-10


def _support(alpha: np.ndarray) -> np.ndarray:
    """Mask of the support vectors: dual variables above a tiny fraction of the largest."""
    return alpha > SUPPORT_RELATIVE_TOL * max(float(alpha.max()), 1e-300)


class SSAD(BaseShallowDetector):
    """Semi-supervised anomaly detection (Görnitz et al., 2013) with an RBF kernel.

    See the module documentation for the primal and dual problems, how the offset and
    margin are recovered, and the relation to the OC-SVM and SVDD. The anomaly score is
    ``rho - sum_i alpha_i s_i k(x_i, x)``: higher = more anomalous, > 0 outside the
    boundary.

    Parameters
    ----------
    gamma : float or "scale", default="scale"
        RBF kernel parameter in ``exp(-gamma ||x - z||^2)``; ``"scale"`` is
        ``1 / (n_features * X.var())``. The paper selects it from ``2^-7 ... 2^2`` on a
        test subset (:mod:`deepsad.baselines.selection`).
    kappa : float, default=1.0
        Weight of the margin on labeled samples (>= 0; 0 ignores the margin).
    Cp, Cu, Cn : float, default=1.0
        Slack penalties (upper bounds of the dual variables) of labeled-normal,
        unlabeled and labeled-anomalous samples. Without labels, ``Cu = 1 / (nu n)``
        is the OC-SVM with parameter ``nu``.
    max_exact_samples : int, default=10000
        Largest training set solved in one piece with the dense kernel matrix (memory
        about ``16 * max_exact_samples^2`` bytes); also the largest working set.
    large_scale : {"working-set", "nystroem"}, default="working-set"
        Larger training sets: ``"working-set"`` solves the same problem exactly by
        decomposition (fails with a clear error if the support vectors alone exceed
        ``max_exact_samples``); ``"nystroem"`` solves it with the kernel replaced by a
        rank-``n_components`` Nyström approximation.
    n_components : int, default=1000
        Nyström landmarks for ``large_scale="nystroem"``.
    max_iter : int, default=100
        Interior-point iterations allowed; not converging raises
        :class:`~deepsad.baselines._qp.QPSolverError` (a ``TrainingError``).
    tol : float, default=1e-7
        Absolute gap and feasibility tolerance of the solver (relative gap: ``10 * tol``).
    standardize : bool, default=False
        Standardize features with the training mean and standard deviation (stored
        with the model and applied at scoring time).
    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"``: the SVM boundary (``anomaly_score > 0`` is anomalous); a fraction
        puts the threshold at that quantile of the training scores.
    random_state : int, RandomState or None, default=None
        Seeds the initial working set or the Nyström landmarks (unused when the
        training set is solved in one piece).

    Attributes
    ----------
    expansion_points_ : numpy.ndarray of shape (n_points, n_features)
        Support vectors (exact and working-set paths) or Nyström landmarks.
    expansion_coef_ : numpy.ndarray of shape (n_points,)
        Coefficients ``alpha_i s_i`` (exact, working set) or ``v`` (Nyström) of ``f``.
    rho_ : float
        Offset of the decision function.
    margin_ : float
        The margin gamma on labeled samples (0 without labels).
    kappa_ : float
        The kappa solved with (0 without labels; see the module notes on degeneracy).
    gamma_ : float
        The numeric RBF parameter used.
    solver_ : {"exact", "working-set", "nystroem"}
    n_iter_ : int
        Interior-point iterations taken.
    n_support_ : int
        Training samples with a non-zero dual variable.
    n_train_ : int
    """

    def __init__(
        self,
        *,
        gamma: float | str = "scale",
        kappa: float = 1.0,
        Cp: float = 1.0,
        Cu: float = 1.0,
        Cn: float = 1.0,
        max_exact_samples: int = 10000,
        large_scale: str = "working-set",
        n_components: int = 1000,
        max_iter: int = 100,
        tol: float = 1e-7,
        standardize: bool = False,
        contamination: float | str = "auto",
        random_state: Any = None,
    ) -> None:
        self.gamma = gamma
        self.kappa = kappa
        self.Cp = Cp
        self.Cu = Cu
        self.Cn = Cn
        self.max_exact_samples = max_exact_samples
        self.large_scale = large_scale
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.standardize = standardize
        self.contamination = contamination
        self.random_state = random_state

    def _check_params(self) -> None:
        check_gamma(self.gamma)
        check_positive_number("kappa", self.kappa, allow_zero=True)
        for name in ("Cp", "Cu", "Cn", "tol"):
            check_positive_number(name, getattr(self, name))
        check_positive_int("max_exact_samples", self.max_exact_samples)
        if self.large_scale not in LARGE_SCALE_METHODS:
            raise InvalidInputError(f"large_scale must be one of {LARGE_SCALE_METHODS}, got {self.large_scale!r}")
        check_positive_int("n_components", self.n_components)
        check_positive_int("max_iter", self.max_iter)
        check_contamination(self.contamination)

    uses_semi_labels = True
    fitted_attribute = "expansion_coef_"
    natural_threshold = 0.0

    def fit(self, X: Any, y: Any = None) -> SSAD:
        """Solve the SSAD dual on ``X`` with its semi-labels ``y``.

        ``y`` holds +1 (labeled normal), -1 (labeled anomaly) and 0 (unlabeled); with
        ``y=None`` every sample is unlabeled and SSAD is the SVDD / OC-SVM. Returns the
        fitted detector.

        Raises
        ------
        InvalidInputError
            For bad data, labels or parameters, or constraints no solution satisfies.
        QPSolverError
            If the interior-point solver does not converge within ``max_iter``.
        TrainingError
            If the working-set path needs more than ``max_exact_samples`` support
            vectors or does not converge (``QPSolverError`` is a ``TrainingError`` too).
        """
        super().fit(X, y)
        return self

    def _fit_samples(self, X: np.ndarray, semi_labels: np.ndarray, **fit_params: Any) -> None:
        n = X.shape[0]
        self.gamma_ = resolve_gamma(self.gamma, X)
        signs = np.where(semi_labels == -1, -1.0, 1.0)
        labeled = semi_labels != 0
        upper = np.select([semi_labels == 1, semi_labels == -1], [float(self.Cp), float(self.Cn)], default=float(self.Cu))
        if not labeled.any():
            logger.info("SSAD without labeled samples: solving the SVDD / one-class SVM dual")
        if n <= self.max_exact_samples:
            self.solver_ = "exact"
            solution, support = self._solve_dense(X, signs, upper, labeled)
            self.expansion_points_ = np.ascontiguousarray(X[support])
            self.expansion_coef_ = (solution.alpha * signs)[support]
        elif self.large_scale == "working-set":
            self.solver_ = "working-set"
            solution, working, support = self._solve_working_set(X, signs, upper, labeled)
            self.expansion_points_ = np.ascontiguousarray(X[working][support])
            self.expansion_coef_ = (solution.alpha * signs[working])[support]
        else:
            self.solver_ = "nystroem"
            landmarks, projection = self._nystroem_basis(X, labeled)
            Phi = map_kernel_blocks(X, landmarks, self.gamma_, lambda K: K @ projection)  # (n, rank)
            solution = solve_ssad_dual(F=Phi * signs[:, None], **self._solver_args(signs, upper, labeled))
            support = _support(solution.alpha)
            w = Phi.T @ (solution.alpha * signs)  # (rank,)
            del Phi
            logger.debug("SSAD Nystroem: %d landmarks, rank %d", landmarks.shape[0], projection.shape[1])
            self.expansion_points_ = np.ascontiguousarray(landmarks)
            self.expansion_coef_ = projection @ w
        self._store_solution(solution, int(support.sum()), n)

    def _solver_args(self, signs: np.ndarray, upper: np.ndarray, labeled: np.ndarray) -> dict[str, Any]:
        return dict(
            signs=signs, upper=upper, labeled=labeled, kappa=float(self.kappa), max_iter=int(self.max_iter), tol=float(self.tol)
        )

    def _solve_dense(
        self, X: np.ndarray, signs: np.ndarray, upper: np.ndarray, labeled: np.ndarray
    ) -> tuple[DualSolution, np.ndarray]:
        """Solve (D) with the dense kernel of ``X``; return the solution and the support mask."""
        Q = rbf_gram(X, self.gamma_)  # (n, n), turned into diag(s) K diag(s) in place
        Q *= signs[:, None]
        Q *= signs[None, :]
        solution = solve_ssad_dual(Q=Q, **self._solver_args(signs, upper, labeled))
        del Q
        support = _support(solution.alpha)
        logger.debug(
            "SSAD dense solve on %d samples: %d support vectors, pruned dual mass %.3g",
            X.shape[0], int(support.sum()), float(solution.alpha[~support].sum()),
        )
        return solution, support

    def _solve_working_set(
        self, X: np.ndarray, signs: np.ndarray, upper: np.ndarray, labeled: np.ndarray
    ) -> tuple[DualSolution, np.ndarray, np.ndarray]:
        """Exact (D) on all samples by decomposition over working sets of at most ``max_exact_samples``.

        Samples outside the working set have ``alpha_i = 0``; by the KKT conditions the
        restricted optimum is optimal for the whole problem iff every outside sample
        satisfies its constraint, ``s_i (f(x_i) - rho) >= delta_i gamma``, with the
        restricted solution's ``f``, ``rho`` and ``gamma``. Otherwise the next working set
        is the support vectors plus the worst violators and the problem is solved again;
        each round strictly lowers the objective (Osuna et al., 1997), so the loop ends
        with the exact solution — provided the support vectors fit into
        ``max_exact_samples``.
        """
        n, cap = X.shape[0], int(self.max_exact_samples)
        rng = check_random_state(self.random_state)
        labeled_idx = np.flatnonzero(labeled)
        if labeled_idx.size > cap // 2:
            labeled_idx = rng.choice(labeled_idx, size=cap // 2, replace=False)
        initial = max(min(cap // 2, WORKING_SET_INITIAL), labeled_idx.size)
        rest = np.setdiff1d(np.arange(n), labeled_idx)
        working = np.sort(np.concatenate([labeled_idx, rng.choice(rest, size=initial - labeled_idx.size, replace=False)]))
        n_add = max(1, min(cap // 10, WORKING_SET_ADD))
        for round_ in range(1, WORKING_SET_MAX_ROUNDS + 1):
            solution, support = self._solve_dense(X[working], signs[working], upper[working], labeled[working])
            coef = solution.alpha * signs[working]
            f = kernel_expansion(X, X[working][support], coef[support], self.gamma_)
            slack = signs * (f - solution.rho) - np.where(labeled, solution.margin, 0.0)  # >= 0: satisfied
            outside = np.ones(n, dtype=bool)
            outside[working] = False
            tolerance = WORKING_SET_RTOL * max(abs(solution.rho), solution.margin, 1e-12)
            violators = np.flatnonzero(outside & (slack < -tolerance))
            logger.debug(
                "SSAD working set round %d: %d samples, %d support vectors, %d violators",
                round_, working.size, int(support.sum()), violators.size,
            )
            if violators.size == 0:
                return solution, working, support
            # next working set: the support vectors plus the worst violators; dropping
            # samples with alpha = 0 keeps the old optimum feasible, and any violator
            # lowers it, so the rounds cannot cycle
            keep = working[support]
            room = min(n_add, cap - keep.size)
            if room <= 0:
                raise TrainingError(
                    f"SSAD needs more than max_exact_samples={cap} support vectors on these {n} samples; "
                    "raise max_exact_samples or use large_scale='nystroem'"
                )
            worst = violators[np.argsort(slack[violators], kind="stable")][:room]
            working = np.sort(np.concatenate([keep, worst]))
        raise TrainingError(
            f"the SSAD working-set decomposition did not converge in {WORKING_SET_MAX_ROUNDS} rounds "
            f"(max_exact_samples={cap}); raise max_exact_samples or use large_scale='nystroem'"
        )

    def _nystroem_basis(self, X: np.ndarray, labeled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks ``L`` and the map ``U Lambda^{-1/2}`` of ``K(L, L) = U Lambda U'``."""
        n = X.shape[0]
        m = min(int(self.n_components), n)
        rng = check_random_state(self.random_state)
        labeled_idx = np.flatnonzero(labeled)
        if labeled_idx.size > m // 2:
            labeled_idx = rng.choice(labeled_idx, size=m // 2, replace=False)
        rest = np.setdiff1d(np.arange(n), labeled_idx)
        chosen = np.concatenate([labeled_idx, rng.choice(rest, size=m - labeled_idx.size, replace=False)])
        landmarks = X[np.sort(chosen)]
        eigenvalues, eigenvectors = np.linalg.eigh(rbf_kernel(landmarks, landmarks, self.gamma_))
        keep = eigenvalues > NYSTROEM_EIGEN_RTOL * eigenvalues.max()
        projection = eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])  # (m, rank)
        return landmarks, projection

    def _store_solution(self, solution: DualSolution, n_support: int, n: int) -> None:
        self.rho_ = float(solution.rho)
        self.margin_ = float(solution.margin)
        self.kappa_ = float(solution.kappa)
        self.n_iter_ = int(solution.iterations)
        self.n_support_ = n_support
        self.n_train_ = n
        self.dual_objective_ = float(solution.objective)

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        return self.rho_ - kernel_expansion(X, self.expansion_points_, self.expansion_coef_, self.gamma_)

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"expansion_points": self.expansion_points_, "expansion_coef": self.expansion_coef_}
        meta = {
            "rho": self.rho_,
            "margin": self.margin_,
            "kappa": self.kappa_,
            "gamma": self.gamma_,
            "solver": self.solver_,
            "n_iter": self.n_iter_,
            "n_support": self.n_support_,
            "n_train": self.n_train_,
            "dual_objective": self.dual_objective_,
        }
        return arrays, meta

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.expansion_points_ = np.ascontiguousarray(arrays["expansion_points"], dtype=np.float64)
        self.expansion_coef_ = np.asarray(arrays["expansion_coef"], dtype=np.float64)
        if self.expansion_points_.shape[0] != self.expansion_coef_.shape[0]:
            raise InvalidInputError("inconsistent SSAD arrays: expansion points and coefficients differ in number")
        self.rho_ = float(meta["rho"])
        self.margin_ = float(meta["margin"])
        self.kappa_ = float(meta["kappa"])
        self.gamma_ = float(meta["gamma"])
        self.solver_ = str(meta["solver"])
        self.n_iter_ = int(meta["n_iter"])
        self.n_support_ = int(meta["n_support"])
        self.n_train_ = int(meta["n_train"])
        self.dual_objective_ = float(meta["dual_objective"])
