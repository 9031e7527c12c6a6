"""Deep SVDD (Ruff et al., ICML 2018): one-class and soft-boundary objectives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

import torch
from torch import nn

from deepsad.detectors.deep_base import BaseDeepDetector
from deepsad.detectors.fit_time import timed_fit
from deepsad.detectors.recipe import ONE_CLASS_TABULAR_RECIPE
from deepsad.errors import InvalidInputError
from deepsad.training import batch_slices, one_class_loss, soft_boundary_loss, solve_radius, squared_distance
from deepsad.validation import check_fraction, check_positive_int

OBJECTIVES = ("one-class", "soft-boundary")


class DeepSVDD(BaseDeepDetector):
    """Deep Support Vector Data Description: unsupervised deep one-class detection.

    Shares Deep SAD's networks, pretraining and centre; labels are ignored. The anomaly
    score is ``||phi(x) - c||``.

    Parameters
    ----------
    objective : {"one-class", "soft-boundary"}, default="one-class"
        ``one-class`` minimises the mean squared distance to the centre;
        ``soft-boundary`` minimises ``R^2 + 1/(nu n) sum max(0, d - R^2)`` with the radius
        R solved on every mini-batch as the (1 - nu) quantile of the distances.
    nu : float in (0, 1], default=0.1
        Soft-boundary trade-off: an upper bound on the fraction of training samples
        outside the sphere.
    radius_warmup_epochs : int, default=10
        Soft-boundary only: epochs trained with R = 0 before the radius is solved per
        batch (as in the reference implementation; lets the representation settle).
    network : "auto", "paper", MLPSpec, LeNetSpec, dict or torch.nn.Module, default="auto"
        As for :class:`deepsad.DeepSAD`, except that ``"auto"`` gives vectors the MLP
        *with* BatchNorm: without labels, it ranks far better across the tabular
        development suite than the BatchNorm-free network of Deep SAD's default
        (docs/defaults_study.md).
    decoder, epochs, lr, lr_milestones, weight_decay, batch_size, pretrain, \
n_networks, pretrain_epochs, pretrain_lr, pretrain_lr_milestones, pretrain_weight_decay, \
output_activation, standardize, device, precision, random_state, verbose
        As for :class:`deepsad.DeepSAD`.
    contamination : "auto" or float in (0, 0.5], default="auto"
        ``"auto"``: the radius R for the soft-boundary objective, else 0.1.

    Attributes
    ----------
    radius_ : float or None
        Final radius R (soft-boundary only).
    networks_, centers_, network_, center_, n_networks_, autoencoder_, spec_, loss_history_, pretrain_loss_history_, \
threshold_, offset_, input_shape_, n_features_in_
        As for :class:`deepsad.DeepSAD`.
    """

    tabular_recipe = ONE_CLASS_TABULAR_RECIPE

    #: Unsupervised: ``fit`` validates the semi-labels and treats every sample as
    #: unlabeled (read by :mod:`deepsad.methods`).
    uses_semi_labels: ClassVar[bool] = False

    def __init__(
        self,
        *,
        objective: str = "one-class",
        nu: float = 0.1,
        radius_warmup_epochs: int = 10,
        network: Any = "auto",
        decoder: nn.Module | None = None,
        epochs: int = 150,
        lr: float = 1e-4,
        lr_milestones: Any = "auto",
        weight_decay: float = 1e-6,
        batch_size: int = 200,
        pretrain: Any = "auto",
        n_networks: Any = "auto",
        pretrain_epochs: int = 150,
        pretrain_lr: float = 1e-4,
        pretrain_lr_milestones: Any = (50,),
        pretrain_weight_decay: float = 5e-4,
        output_activation: str = "auto",
        standardize: Any = "auto",
        contamination: Any = "auto",
        device: Any = "auto",
        precision: str = "float32",
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.objective = objective
        self.nu = nu
        self.radius_warmup_epochs = radius_warmup_epochs
        self.network = network
        self.decoder = decoder
        self.epochs = epochs
        self.lr = lr
        self.lr_milestones = lr_milestones
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.pretrain = pretrain
        self.n_networks = n_networks
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.pretrain_lr_milestones = pretrain_lr_milestones
        self.pretrain_weight_decay = pretrain_weight_decay
        self.output_activation = output_activation
        self.standardize = standardize
        self.contamination = contamination
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    @timed_fit
    def fit(self, X: Any, y: Any = None, *, autoencoder: nn.Module | None = None) -> "DeepSVDD":
        """Fit Deep SVDD on ``X``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features) or (n_samples, c, h, w)
        y : ignored
            Deep SVDD is unsupervised; use :class:`deepsad.DeepSAD` to use labels.
        autoencoder : deepsad.models.Autoencoder, optional
            A trained autoencoder to use instead of pretraining one (e.g. the
            ``autoencoder_`` of an earlier fit on the same data with the same network
            and pretraining settings): its encoder weights are copied into phi and
            pretraining is skipped. With the same ``random_state`` the result equals a
            fit that pretrained that autoencoder itself. It is kept (not copied) as
            ``autoencoder_``.

        Returns
        -------
        DeepSVDD
        """
        return self._fit_hypersphere(X, y, autoencoder)

    def _check_method_params(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InvalidInputError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        check_fraction("nu", self.nu, low=0.0, high=1.0, low_inclusive=False, high_inclusive=True)
        check_positive_int("radius_warmup_epochs", self.radius_warmup_epochs, allow_zero=True)
        self.radius_ = None

    def _supports_stacking(self) -> bool:
        # the soft-boundary radius is re-solved from batch to batch: state a pure batch
        # function cannot carry
        return self.objective == "one-class"

    def _output_loss(
        self, output: torch.Tensor, tensors: Sequence[torch.Tensor], indices: torch.Tensor
    ) -> torch.Tensor:
        return one_class_loss(squared_distance(output, tensors[2]))

    def _make_objective(
        self, phi: nn.Module, X: torch.Tensor, semi_labels: torch.Tensor, center: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        if self.objective == "one-class":
            return super()._make_objective(phi, X, semi_labels, center)

        nu = float(self.nu)
        warmup_batches = self.radius_warmup_epochs * len(batch_slices(X.shape[0], self.batch_size))
        state = {"radius": torch.zeros((), device=X.device), "batches": 0}

        def soft_boundary(indices: torch.Tensor) -> torch.Tensor:
            dist_sq = squared_distance(phi(X[indices]), center)  # (batch,)
            loss = soft_boundary_loss(dist_sq, state["radius"], nu=nu)
            state["batches"] += 1
            if state["batches"] > warmup_batches:
                # R is not a network parameter: it is solved exactly for the current batch
                state["radius"] = solve_radius(dist_sq, nu=nu)
            return loss

        return soft_boundary

    def _natural_threshold(self, train_scores: np.ndarray) -> float | None:
        if self.objective != "soft-boundary":
            return None
        # the final radius is solved exactly for the trained phi on the whole training
        # set (not left at the last mini-batch's value), so a fraction nu lies outside
        self.radius_ = float(solve_radius(torch.from_numpy(train_scores**2), nu=float(self.nu)))
        return self.radius_

    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, meta = super()._fitted_state()
        meta["radius"] = self.radius_
        return arrays, meta

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._restore_fitted_state(arrays, meta)
        self.radius_ = meta.get("radius")
