"""The SSAD dual as a quadratic program, solved by CVXOPT's interior-point ``coneqp``.

The problem (derived in :mod:`deepsad.baselines.ssad`)::

    minimize_alpha   1/2 alpha' Q alpha,       Q = diag(s) K diag(s)
    subject to       s' alpha = 1                               (multiplier -rho)
                     sum_{i labeled} alpha_i >= kappa           (multiplier gamma; only with labels)
                     0 <= alpha_i <= C_i

with ``s_i = -1`` for labeled anomalies and ``+1`` otherwise. ``K`` is given either as
the dense kernel matrix (exact) or as a factor ``Phi`` with ``K ~ Phi Phi'`` (Nyström).

Why CVXOPT: it is a maintained, widely used primal-dual interior-point solver (the SSAD
implementation that the Deep SAD reference code runs, by the first SSAD author, is built
on it too) that (i) returns the multipliers of the equality and of the kappa constraint
with high accuracy — they *are* the offset ``rho`` and the margin ``gamma`` of the
primal, so no fragile "free support vector" heuristics are needed; (ii) reports
``status`` and ``iterations`` for every solve, so a solve that does not converge is
raised as :class:`QPSolverError` instead of returning an iterate; and (iii) lets the
caller supply the Newton (KKT) system solver and the operators ``P``, ``G``, ``A`` as
functions. The structure here is a kernel matrix plus a diagonal (the box constraints)
plus rank one (the kappa row), so each Newton step is one dense Cholesky factorisation
of ``Q + diag`` (dense path: O(N^2) memory, the cost of CVXOPT's generic dense solver
but without its (2N+1) x N constraint matrix) or, with ``K = Phi Phi'``, a Woodbury
solve with an m x m Cholesky factor (Nyström path: O(N m) memory, O(N m^2) time per
step), each followed by a Sherman-Morrison update for the kappa row. Sparse solvers
(OSQP, Clarabel) would have to hold the dense kernel as a sparse matrix with N^2
non-zeros, and ADMM (OSQP) gives only low-accuracy multipliers.

Licence: CVXOPT is GPL-3.0-or-later. It is imported lazily, only when an SSAD is fitted,
so the rest of this MIT-licensed package neither imports nor requires it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from deepsad.errors import InvalidInputError, TrainingError

logger = logging.getLogger(__name__)


#: Relative distance kept between kappa and the largest attainable labeled mass.
KAPPA_SLACK = 1e-3


class QPSolverError(TrainingError):
    """The quadratic program was not solved to the requested accuracy.

    Attributes
    ----------
    status : str
        The solver's status (CVXOPT: ``"unknown"`` when it stopped early).
    iterations : int
        Interior-point iterations taken.
    details : dict
        Residuals and gap at the last iterate.
    """

    def __init__(self, message: str, *, status: str, iterations: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.iterations = iterations
        self.details = dict(details or {})


@dataclass(frozen=True)
class DualSolution:
    """Solution of the SSAD dual and the primal quantities recovered from its multipliers."""

    alpha: np.ndarray  #: (n,) dual variables, clipped into [0, C]
    rho: float  #: offset of the decision function
    margin: float  #: SSAD's margin gamma on labeled samples (0 without labels)
    kappa: float  #: the kappa solved with (see KAPPA_SLACK; 0 when the constraint was dropped)
    iterations: int
    objective: float
    gap: float


def _import_cvxopt() -> Any:
    try:
        import cvxopt
        import cvxopt.solvers
    except ImportError:  # pragma: no cover - declared dependency
        raise ImportError("SSAD needs the QP solver CVXOPT: pip install 'cvxopt>=1.3'") from None
    return cvxopt


def check_feasible(signs: np.ndarray, upper: np.ndarray, labeled: np.ndarray, kappa: float) -> float:
    """Raise :class:`InvalidInputError` when no ``alpha`` satisfies the dual's constraints.

    The constraints only involve three sums (unlabeled, labeled-normal and labeled-anomaly
    mass), so feasibility is a tiny linear program solved in closed form: put the
    labeled anomalies' mass ``b`` as high as the other bounds allow (each unit must be
    matched by positive mass), then ask whether the labeled mass can reach ``kappa``.

    Returns
    -------
    float
        The largest labeled mass ``sum_{i labeled} alpha_i`` any feasible ``alpha`` has
        (``inf`` when ``kappa`` plays no role).
    """
    pos = signs > 0
    cap_unlabeled = float(upper[pos & ~labeled].sum())
    cap_normal = float(upper[pos & labeled].sum())
    cap_anomaly = float(upper[~pos].sum())
    if cap_unlabeled + cap_normal < 1.0:
        raise InvalidInputError(
            "SSAD's dual is infeasible: the unlabeled and labeled-normal samples' weight "
            f"(Cu * n_unlabeled + Cp * n_normal = {cap_unlabeled + cap_normal:.4g}) must be at least 1; "
            "raise Cu or Cp, or provide more non-anomalous samples"
        )
    if kappa > 0 and labeled.any():
        # best labeled mass: anomalies at bound b, normals a = min(cap_normal, 1 + b) and
        # unlabeled u = 1 + b - a must fit under cap_unlabeled; lower b if it does not
        b = min(cap_anomaly, max(0.0, cap_unlabeled + cap_normal - 1.0))
        a = min(cap_normal, 1.0 + b)
        if a + b < kappa * (1.0 - 1e-12):
            raise InvalidInputError(
                f"SSAD's dual is infeasible: kappa={kappa:g} exceeds the largest possible labeled weight "
                f"{a + b:.4g} (Cp * n_normal + Cn * n_anomaly under the other constraints); "
                "lower kappa or raise Cp / Cn"
            )
        return a + b
    return float("inf")


class _DenseNewton:
    """Newton systems with ``Q`` dense: Cholesky of ``Q + diag(e)`` plus a rank-one update."""

    def __init__(self, Q: np.ndarray) -> None:
        self.Q = Q
        self.work = np.empty_like(Q)

    def matvec(self, u: np.ndarray) -> np.ndarray:
        return self.Q @ u

    def factor(self, e: np.ndarray) -> Any:
        np.copyto(self.work, self.Q)
        self.work.flat[:: self.work.shape[0] + 1] += e
        factor = scipy.linalg.cho_factor(self.work, lower=True, overwrite_a=True, check_finite=False)
        return lambda V: scipy.linalg.cho_solve(factor, V, check_finite=False)


class _FactorNewton:
    """Newton systems with ``Q = F F'`` (F: n x m): Woodbury with an m x m Cholesky factor."""

    def __init__(self, F: np.ndarray) -> None:
        self.F = F

    def matvec(self, u: np.ndarray) -> np.ndarray:
        return self.F @ (self.F.T @ u)

    def factor(self, e: np.ndarray) -> Any:
        F = self.F
        inv_e = 1.0 / e
        S = (F.T * inv_e) @ F  # (m, m)
        S.flat[:: S.shape[0] + 1] += 1.0
        factor = scipy.linalg.cho_factor(S, lower=True, overwrite_a=True, check_finite=False)

        def solve(V: np.ndarray) -> np.ndarray:
            scaled = V * (inv_e if V.ndim == 1 else inv_e[:, None])
            correction = F @ scipy.linalg.cho_solve(factor, F.T @ scaled, check_finite=False)
            return scaled - (correction * (inv_e if V.ndim == 1 else inv_e[:, None]))

        return solve


def solve_ssad_dual(
    *,
    Q: np.ndarray | None = None,
    F: np.ndarray | None = None,
    signs: np.ndarray,
    upper: np.ndarray,
    labeled: np.ndarray,
    kappa: float,
    max_iter: int = 100,
    tol: float = 1e-7,
    refinement: int = 1,
) -> DualSolution:
    """Solve the SSAD dual with CVXOPT's ``coneqp`` and a structure-exploiting KKT solver.

    Parameters
    ----------
    Q : numpy.ndarray of shape (n, n), optional
        ``diag(signs) K diag(signs)`` (exact path). Exactly one of ``Q`` and ``F``.
    F : numpy.ndarray of shape (n, m), optional
        ``diag(signs) Phi`` with ``K ~ Phi Phi'`` (approximate path).
    signs : numpy.ndarray of shape (n,)
        -1 for labeled anomalies, +1 otherwise.
    upper : numpy.ndarray of shape (n,)
        Box bounds ``C_i`` (Cu, Cp or Cn).
    labeled : numpy.ndarray of bool, shape (n,)
        Which samples carry a label (they enter the kappa constraint).
    kappa : float
        Weight of the margin; the kappa constraint is dropped when no sample is labeled
        or ``kappa == 0`` (the problem is then the OC-SVM / SVDD dual).
    max_iter : int
        Interior-point iterations allowed.
    tol : float
        CVXOPT's ``abstol`` and ``feastol``; ``reltol`` is ``10 * tol``.
    refinement : int
        Iterative-refinement steps per Newton solve (guards the Woodbury solves'
        accuracy late in the iterations).

    Returns
    -------
    DualSolution

    Raises
    ------
    QPSolverError
        If CVXOPT stops without reaching the tolerances (status and iterations in the
        message and as attributes).
    """
    cvxopt = _import_cvxopt()
    if (Q is None) == (F is None):
        raise ValueError("pass exactly one of Q (dense) and F (factor)")
    newton = _DenseNewton(Q) if Q is not None else _FactorNewton(F)
    n = signs.shape[0]
    signs = signs.astype(np.float64)
    upper = upper.astype(np.float64)
    delta = labeled.astype(np.float64)
    with_kappa = bool(labeled.any()) and kappa > 0
    max_labeled_mass = check_feasible(signs, upper, labeled, kappa if with_kappa else 0.0)
    if with_kappa and max_labeled_mass < kappa * (1.0 + KAPPA_SLACK):
        # kappa equals the largest labeled mass (e.g. kappa = 1 with labeled normals but
        # no labeled anomalies): the constraint can only hold with equality, the primal's
        # optimal (rho, gamma) form a ray (rho - t, gamma + t) on which the objective is
        # flat, no finite multipliers exist and an interior-point method cannot converge.
        # A kappa slightly below tilts the objective along the ray, so (rho, gamma) become
        # unique, at the price of letting a labeled mass of KAPPA_SLACK * kappa move.
        adjusted = max_labeled_mass * (1.0 - KAPPA_SLACK)
        logger.warning(
            "kappa=%g equals the largest attainable labeled weight %.6g: the margin is not identifiable; "
            "solving with kappa=%.6g",
            kappa, max_labeled_mass, adjusted,
        )
        kappa = adjusted
    m_ineq = 2 * n + (1 if with_kappa else 0)

    def view(vector: Any) -> np.ndarray:
        return np.asarray(vector).reshape(-1)  # a writable view of the CVXOPT matrix

    def P(u: Any, v: Any, alpha: float = 1.0, beta: float = 0.0) -> None:
        out = view(v)
        out *= beta
        out += alpha * newton.matvec(view(u))

    def G(u: Any, v: Any, alpha: float = 1.0, beta: float = 0.0, trans: str = "N") -> None:
        # G = [-I; I; -delta'] (rows: alpha >= 0, alpha <= C, labeled mass >= kappa)
        u_np, out = view(u), view(v)
        out *= beta
        if trans == "N":
            out[:n] -= alpha * u_np
            out[n : 2 * n] += alpha * u_np
            if with_kappa:
                out[2 * n] -= alpha * float(delta @ u_np)
        else:
            out += alpha * (u_np[n : 2 * n] - u_np[:n])
            if with_kappa:
                out -= alpha * u_np[2 * n] * delta

    def A(u: Any, v: Any, alpha: float = 1.0, beta: float = 0.0, trans: str = "N") -> None:
        u_np, out = view(u), view(v)
        out *= beta
        if trans == "N":
            out[0] += alpha * float(signs @ u_np)
        else:
            out += alpha * u_np[0] * signs

    def kktsolver(W: dict[str, Any]) -> Any:
        d = np.array(W["d"]).reshape(-1)
        d2 = d * d
        e = 1.0 / d2[:n] + 1.0 / d2[n : 2 * n]
        try:
            solve_h0 = newton.factor(e)
        except np.linalg.LinAlgError as error:
            # CVXOPT turns an ArithmeticError into status "unknown" (singular KKT matrix)
            raise ArithmeticError(str(error)) from None
        # H = H0 + t delta delta' (kappa row), handled by Sherman-Morrison
        if with_kappa:
            t = 1.0 / d2[2 * n]
            h0_delta = solve_h0(delta)
            sm = t * h0_delta / (1.0 + t * float(delta @ h0_delta))
        h0_signs = solve_h0(signs)
        if with_kappa:
            h0_signs = h0_signs - sm * float(delta @ h0_signs)
        schur = float(signs @ h0_signs)

        def solve(x: Any, y: Any, z: Any) -> None:
            bx, by, bz = view(x), view(y), view(z)
            w = bz / d2
            r = bx + w[n : 2 * n] - w[:n]
            if with_kappa:
                r = r - w[2 * n] * delta
            h_r = solve_h0(r)
            if with_kappa:
                h_r = h_r - sm * float(delta @ h_r)
            uy = (float(signs @ h_r) - by[0]) / schur
            ux = h_r - uy * h0_signs
            g_ux = np.empty(m_ineq)
            g_ux[:n] = -ux
            g_ux[n : 2 * n] = ux
            if with_kappa:
                g_ux[2 * n] = -float(delta @ ux)
            bz[:] = (g_ux - bz) / d
            bx[:] = ux
            by[0] = uy

        return solve

    h = np.concatenate([np.zeros(n), upper, [-kappa] if with_kappa else []])
    options = {
        "show_progress": False,
        "maxiters": int(max_iter),
        "abstol": float(tol),
        "feastol": float(tol),
        "reltol": 10.0 * float(tol),
        "refinement": int(refinement),
    }
    try:
        result = cvxopt.solvers.coneqp(
            P,
            cvxopt.matrix(np.zeros(n)),
            G,
            cvxopt.matrix(h),
            {"l": m_ineq, "q": [], "s": []},
            A,
            cvxopt.matrix(np.ones(1)),
            kktsolver=kktsolver,
            options=options,
        )
    except (ValueError, ArithmeticError) as error:
        # raised by CVXOPT when the very first Newton system is singular
        raise QPSolverError(
            f"the SSAD quadratic program could not be started: {error} (singular KKT system at iteration 0)",
            status="singular",
            iterations=0,
        ) from None
    status, iterations = str(result["status"]), int(result["iterations"])
    details = {
        key: result[key]
        for key in ("primal objective", "gap", "relative gap", "primal infeasibility", "dual infeasibility")
    }
    if status != "optimal":
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in details.items())
        raise QPSolverError(
            f"the SSAD quadratic program did not converge: CVXOPT status {status!r} after {iterations} "
            f"iterations (max_iter={max_iter}, tol={tol:g}; {shown}). Raise max_iter or tol, or rescale the data.",
            status=status,
            iterations=iterations,
            details=details,
        )
    alpha = np.clip(np.array(result["x"]).reshape(-1), 0.0, upper)
    z = np.array(result["z"]).reshape(-1)
    rho = -float(np.array(result["y"]).reshape(-1)[0])
    margin = float(z[2 * n]) if with_kappa else 0.0
    logger.debug("SSAD QP solved in %d iterations (gap %.3g)", iterations, result["gap"])
    return DualSolution(
        alpha=alpha,
        rho=rho,
        margin=margin,
        kappa=float(kappa) if with_kappa else 0.0,
        iterations=iterations,
        objective=float(result["primal objective"]),
        gap=float(result["gap"]),
    )
