"""Losses as pure functions of tensors (paper Eq. 7, Deep SVDD, autoencoder).

They take squared distances or reconstructions and return a scalar; no module state,
so they are unit-testable against hand-computed values.
"""

from __future__ import annotations

import torch


def squared_distance(z: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance of each representation to the centre.

    Parameters
    ----------
    z : torch.Tensor of shape (n, rep_dim)
    center : torch.Tensor of shape (rep_dim,)

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    return ((z - center) ** 2).sum(dim=1)


def deep_sad_loss(
    dist_sq: torch.Tensor, semi_labels: torch.Tensor, *, eta: float, eps: float
) -> torch.Tensor:
    """Deep SAD objective (Ruff et al. 2020, Eq. 7) without the weight-decay term.

    Unlabeled samples (label 0) contribute ``d``; labeled samples (label +1 / -1)
    contribute ``eta * (d + eps) ** y``, i.e. ``eta * (d + eps)`` for labeled normals
    and ``eta / (d + eps)`` for labeled anomalies. The batch mean is returned.

    Parameters
    ----------
    dist_sq : torch.Tensor of shape (n,)
        Squared distances ``||phi(x) - c||^2``.
    semi_labels : torch.Tensor of shape (n,)
        +1 labeled normal, -1 labeled anomaly, 0 unlabeled.
    eta : float
        Weight of the labeled terms.
    eps : float
        Keeps the inverse distance of labeled anomalies finite.

    Returns
    -------
    torch.Tensor
        Scalar mean loss.
    """
    labeled_term = eta * (dist_sq + eps) ** semi_labels.to(dist_sq.dtype)
    per_sample = torch.where(semi_labels == 0, dist_sq, labeled_term)
    return per_sample.mean()


def one_class_loss(dist_sq: torch.Tensor) -> torch.Tensor:
    """One-class Deep SVDD objective: the mean squared distance (Deep SAD with no labels)."""
    return dist_sq.mean()


def soft_boundary_loss(dist_sq: torch.Tensor, radius: torch.Tensor | float, *, nu: float) -> torch.Tensor:
    """Soft-boundary Deep SVDD objective ``R^2 + 1/(nu n) * sum(max(0, d - R^2))``.

    Parameters
    ----------
    dist_sq : torch.Tensor of shape (n,)
    radius : torch.Tensor or float
        The hypersphere radius R (not squared).
    nu : float
        In (0, 1]: upper bound on the fraction of samples outside the sphere.
    """
    r_sq = torch.as_tensor(radius, dtype=dist_sq.dtype, device=dist_sq.device) ** 2
    return r_sq + torch.clamp(dist_sq - r_sq, min=0).mean() / nu


def solve_radius(dist_sq: torch.Tensor, *, nu: float) -> torch.Tensor:
    """Optimal radius for fixed representations: the (1 - nu) quantile of the distances.

    With phi fixed, ``R^2 + 1/(nu n) sum max(0, d_i - R^2)`` is minimised by any R^2
    such that a fraction nu of the points lie outside; taking the (1 - nu) quantile of
    the (unsquared) distances is the solution the soft-boundary method uses.
    """
    return torch.quantile(dist_sq.detach().sqrt(), 1.0 - nu)


def reconstruction_loss(reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared reconstruction error over the batch (sum over features, mean over samples)."""
    return ((reconstruction - x) ** 2).flatten(1).sum(dim=1).mean()


def per_sample_reconstruction_error(reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared reconstruction error of each sample, shape (n,)."""
    return ((reconstruction - x) ** 2).flatten(1).sum(dim=1)
