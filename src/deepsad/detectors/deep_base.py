"""The machinery Deep SAD and Deep SVDD share.

One fit pipeline (validate → build phi → optional autoencoder pretraining with a real
weight transfer → centre → train phi → threshold) parameterised by a per-batch
objective that each subclass supplies. Model and training stay separate: networks come
from :mod:`deepsad.models`, the loop from :mod:`deepsad.training`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from deepsad.detectors.estimator_base import BaseDetector
from deepsad.detectors.recipe import (
    PAPER_SETTINGS,
    TABULAR_RECIPE,
    check_auto_bool,
    check_auto_milestones,
    check_n_networks,
    recipe_for,
    resolve_milestones,
    resolve_n_networks,
    resolve_pretrain,
    resolve_standardize,
)
from deepsad.detectors.scoring import check_contamination
from deepsad.errors import InvalidInputError
from deepsad.models import (
    Autoencoder,
    LeNetSpec,
    MLPSpec,
    auto_spec,
    build_decoder,
    build_encoder,
    default_spec,
    init_weights_,
    spec_from_dict,
    spec_to_dict,
    with_fused_lenets,
)
from deepsad.models.specs import as_network_param
from deepsad.models.state import state_dict_with_prefix
from deepsad.training import (
    OptimizerConfig,
    check_precision,
    make_generator,
    map_batches,
    pretrain_autoencoders,
    resolve_device,
    seed_from_random_state,
    squared_distance,
    threads_for_fit,
    train,
)
from deepsad.training.stacked import train_stacked
from deepsad.validation import check_fraction, check_milestones, check_positive_int

logger = logging.getLogger(__name__)

#: Centre coordinates closer to zero than this are pushed out to +-CENTER_MIN_ABS: a
#: coordinate near zero lets phi reach the centre trivially with zero weights.
CENTER_MIN_ABS = 0.1

#: Elements (samples x features) per scoring batch; large batches amortise overhead.
SCORING_BATCH_ELEMENTS = 2**22


def precision_of(estimator: Any) -> str:
    """An estimator's validated training ``precision``.

    Deep SAD and Deep SVDD have the parameter; the CAE-family baselines, which borrow
    :meth:`BaseDeepDetector._train_config` (``_optimizer_config``), train in float32.
    """
    return check_precision(getattr(estimator, "precision", "float32"))


@dataclass
class _FitState:
    """What one fit carries between its steps (see ``BaseDeepDetector._begin_fit``).

    ``phi``, ``generator`` and ``pretrain_seed`` are those of the first network; an
    ensemble's other networks are in ``members`` (see ``BaseDeepDetector._member``).
    """

    X_np: np.ndarray
    X: torch.Tensor
    semi_labels_np: np.ndarray
    semi_labels: torch.Tensor
    phi: nn.Module
    generator: torch.Generator  # the training stream: phi's init, then the shuffling
    pretrain_seed: int
    seed: int = 0
    members: list["_FitState"] | None = None


def member_seed(seed: int, index: int) -> int:
    """The ``random_state`` of network ``index`` of an ensemble fitted with ``seed``.

    Network 0 uses ``seed`` itself, so that the first network of an ensemble is the
    model a single-network fit with the same ``random_state`` trains.
    """
    if index == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _stream_seeds(seed: int) -> tuple[int, int]:
    # independent streams for pretraining and for the rest of the fit, so that a fit
    # given an autoencoder trained earlier with the same seed (the experiment runner's
    # cache) continues exactly as if it had pretrained that autoencoder itself
    pretrain_seed, train_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    return pretrain_seed, train_seed


def mean_history(histories: Sequence[Sequence[float]]) -> list[float]:
    """Per-epoch mean of several networks' loss histories (an ensemble's ``loss_history_``)."""
    if not histories or not histories[0]:
        return []
    return [float(v) for v in np.mean(np.asarray(histories, dtype=np.float64), axis=0)]


class DeviceTensorsMixin:
    """Device, memory layout and scoring-batch helpers of every network-based estimator.

    Expects ``device``, ``input_shape_``, ``n_features_in_`` and (for the layout) ``spec_``.
    Shared by the detectors and the network baselines (CAE family, Hybrid), so that a
    helper that calls another one cannot go missing in one of them.
    """

    device: Any
    input_shape_: tuple[int, ...]
    n_features_in_: int

    # Our LeNets train and score in channels_last: with FastBatchNorm2d for the narrow MNIST
    # layers, every LeNet phase is faster in it on CPU (figures: docs/performance.md). A
    # network the user passes as a module keeps the default layout: code like
    # ``x.view(n, -1)`` fails on channels_last maps.
    def _default_channels_last(self) -> bool:
        return len(self.input_shape_) == 3 and isinstance(getattr(self, "spec_", None), LeNetSpec)

    def _to_device(self, module: nn.Module, *, channels_last: bool | None = None) -> nn.Module:
        module = module.to(self._device)
        if channels_last is None:
            channels_last = self._default_channels_last()
        if channels_last and len(self.input_shape_) == 3:
            module = module.to(memory_format=torch.channels_last)
        return module

    def _as_tensor(self, X: np.ndarray, *, channels_last: bool | None = None) -> torch.Tensor:
        if not X.flags.writeable:
            # torch cannot share memory it may not write (it warns); nothing here writes
            # into the data, but a copy is the clean way (read-only inputs: memmaps, views)
            X = np.array(X)
        tensor = torch.from_numpy(X).to(self._device)
        if channels_last is None:
            channels_last = self._default_channels_last()
        if channels_last and tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    @property
    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def _scoring_batch_size(self) -> int:
        return max(1, SCORING_BATCH_ELEMENTS // max(1, self.n_features_in_))


class BaseDeepDetector(DeviceTensorsMixin, BaseDetector):
    """Shared fit/score machinery of the hypersphere detectors (not for direct use).

    A :class:`~deepsad.detectors.estimator_base.BaseDetector`: validation, the
    standardizer, the threshold, parameters as JSON and the common part of a saved model
    come from there. Subclasses define ``__init__`` (parameters only), ``fit`` (which
    calls :meth:`_fit_hypersphere`), :meth:`_check_method_params` and :meth:`_output_loss`.
    """

    #: A fitted detector has its (first) network.
    fitted_attribute: ClassVar[str] = "network_"

    # Parameters every deep detector has; subclasses list them in their __init__.
    network: Any
    decoder: Any
    epochs: int
    lr: float
    lr_milestones: Any
    weight_decay: float
    batch_size: int
    pretrain: Any
    n_networks: Any
    pretrain_epochs: int
    pretrain_lr: float
    pretrain_lr_milestones: Any
    pretrain_weight_decay: float
    output_activation: str
    standardize: Any
    contamination: Any
    device: Any
    random_state: Any
    verbose: bool

    #: What ``"auto"`` resolves to for vector data (:mod:`deepsad.detectors.recipe`).
    tabular_recipe: ClassVar[Mapping[str, Any]] = TABULAR_RECIPE

    @classmethod
    def paper(cls, **params: Any) -> "BaseDeepDetector":
        """An estimator with the paper's settings (:data:`deepsad.detectors.recipe.PAPER_SETTINGS`).

        The paper's networks, autoencoder pretraining, one network, Adam at 1e-4 for 50
        epochs then 1e-5 for 100 more; ``params`` add to or override them.

        Examples
        --------
        >>> from deepsad import DeepSAD
        >>> DeepSAD.paper(random_state=0).pretrain
        True
        """
        return cls(**{**PAPER_SETTINGS, **params})

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        check_positive_int("epochs", self.epochs, allow_zero=True)
        check_positive_int("pretrain_epochs", self.pretrain_epochs, allow_zero=True)
        check_positive_int("batch_size", self.batch_size)
        for name in ("lr", "pretrain_lr"):
            check_fraction(name, getattr(self, name), low=0.0, high=float("inf"), low_inclusive=False, high_inclusive=False)
        for name in ("weight_decay", "pretrain_weight_decay"):
            check_fraction(name, getattr(self, name), low=0.0, high=float("inf"), low_inclusive=True, high_inclusive=False)
        check_auto_milestones("lr_milestones", self.lr_milestones)
        check_milestones("pretrain_lr_milestones", self.pretrain_lr_milestones)
        check_n_networks(self.n_networks)
        check_auto_bool("pretrain", self.pretrain)
        check_auto_bool("standardize", self.standardize)
        check_contamination(self.contamination)
        precision_of(self)
        if self.output_activation not in ("auto", "sigmoid", "identity"):
            raise InvalidInputError(
                f"output_activation must be 'auto', 'sigmoid' or 'identity', got {self.output_activation!r}"
            )
        network = as_network_param(self.network)
        if not (network in ("auto", "paper") or isinstance(network, (MLPSpec, LeNetSpec, nn.Module))):
            raise InvalidInputError(
                "network must be 'auto', 'paper', an MLPSpec / LeNetSpec (or its dict), or a torch.nn.Module "
                f"encoder, got {self.network!r}"
            )
        if self.decoder is not None and not isinstance(self.decoder, nn.Module):
            raise InvalidInputError(f"decoder must be None or a torch.nn.Module, got {self.decoder!r}")
        if isinstance(network, nn.Module) and self.pretrain is True and self.pretrain_epochs > 0 and self.decoder is None:
            raise InvalidInputError(
                "pretraining a custom network needs its decoder: pass decoder=<nn.Module>, or pretrain=False"
            )

    # ------------------------------------------------------------------ networks
    def _init_gain(self) -> float:
        return float(self.spec_.init_gain) if isinstance(self.spec_, MLPSpec) else 1.0

    def _build_encoder(self, generator: torch.Generator) -> nn.Module:
        """A fresh phi: built from the spec and Glorot-initialised, or a copy of the user's module.

        In its fused form (:func:`with_fused_lenets`); the user's module is left as it is.
        """
        network = as_network_param(self.network)
        if isinstance(network, nn.Module):
            return with_fused_lenets(copy.deepcopy(network))
        encoder = build_encoder(self.spec_, self.input_shape_)
        init_weights_(encoder, generator, gain=self._init_gain())
        return with_fused_lenets(encoder)

    def _build_decoder(self, generator: torch.Generator) -> nn.Module:
        if self.decoder is not None:
            return with_fused_lenets(copy.deepcopy(self.decoder))
        decoder = build_decoder(self.spec_, self.input_shape_, output_activation=self.output_activation_)
        init_weights_(decoder, generator, gain=self._init_gain())
        return with_fused_lenets(decoder)

    def recipe_for_labels(self, semi_labels: np.ndarray | None) -> Mapping[str, Any]:
        """The tabular recipe ``"auto"`` resolves to when training on ``semi_labels``.

        Deep SVDD ignores labels; Deep SAD switches to the one-class recipe when no
        labeled anomaly is there to push against (:meth:`deepsad.DeepSAD.recipe_for_labels`).
        """
        return self.tabular_recipe

    def _resolve_spec(self, tabular_recipe: Mapping[str, Any]) -> None:
        """``spec_`` from ``network``: ``"auto"`` deepsad's default, ``"paper"`` the paper's network."""
        network = as_network_param(self.network)
        if isinstance(network, nn.Module):
            self.spec_ = None
        elif network == "auto":
            batch_norm = recipe_for(self.input_shape_, tabular_recipe)["batch_norm"]
            self.spec_ = auto_spec(self.input_shape_, batch_norm=batch_norm)
        elif network == "paper":
            self.spec_ = default_spec(self.input_shape_)
        else:
            self.spec_ = network

    def _resolve_output_activation(self, X: np.ndarray) -> str:
        """``auto``: a sigmoid output when the data lie in [0, 1] (images), else identity."""
        if self.output_activation != "auto":
            return self.output_activation
        return "sigmoid" if float(X.min()) >= 0.0 and float(X.max()) <= 1.0 else "identity"

    # ------------------------------------------------------------------ fit pipeline
    # The steps are separate methods so that one pipeline serves a plain fit, an
    # ensemble and several estimators trained together (the public steps: plan_fit,
    # pretrain_plans, train_plans; :func:`deepsad.detectors.stacked.fit_stacked`).
    def _check_method_params(self) -> None:
        """Validate the subclass's own parameters (called first by ``fit``)."""

    def _pretrain_config(self) -> OptimizerConfig:
        return OptimizerConfig(
            epochs=self.pretrain_epochs,
            lr=self.pretrain_lr,
            milestones=check_milestones("pretrain_lr_milestones", self.pretrain_lr_milestones),
            weight_decay=self.pretrain_weight_decay,
            batch_size=self.batch_size,
            precision=precision_of(self),
        )

    def _train_config(self) -> OptimizerConfig:
        return OptimizerConfig(
            epochs=self.epochs,
            lr=self.lr,
            milestones=resolve_milestones("lr_milestones", self.lr_milestones, self.input_shape_, self.tabular_recipe),
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            precision=precision_of(self),
        )

    def _begin_fit(self, X: Any, y: Any) -> _FitState:
        """Validate, standardize, derive the seeds and build phi; no training yet."""
        self._check_params()
        X_np, semi_labels_np = self._validate_training_data(X, y)
        self._resolve_spec(self.recipe_for_labels(semi_labels_np))
        if self.spec_ is None:
            # a user's module comes with its own weights: copies of it would be one network
            if self.n_networks not in ("auto", 1):
                raise InvalidInputError(
                    f"n_networks={self.n_networks} needs networks deepsad can initialise (a spec, 'auto' or "
                    "'paper'); a custom module is one network (n_networks=1)"
                )
            self.n_networks_ = 1
        else:
            self.n_networks_ = resolve_n_networks(self.n_networks, self.input_shape_, self.tabular_recipe)
        self.pretrain_ = resolve_pretrain(self.pretrain, self.input_shape_, self.tabular_recipe)
        if self.spec_ is None and self._wants_pretraining() and self.decoder is None:
            raise InvalidInputError(
                "pretraining a custom network needs its decoder: pass decoder=<nn.Module>, or pretrain=False"
            )
        X_np = self._fit_standardizer(X_np)
        self.output_activation_ = self._resolve_output_activation(X_np)
        seed = seed_from_random_state(self.random_state)
        pretrain_seed, train_seed = _stream_seeds(seed)
        generator = make_generator(train_seed)
        self.pretrain_loss_history_ = []
        self.autoencoder_ = None
        self.autoencoders_ = []
        self.autoencoder_reused_ = False
        state = _FitState(
            X_np=X_np,
            X=self._as_tensor(X_np),
            semi_labels_np=semi_labels_np,
            semi_labels=torch.from_numpy(semi_labels_np.astype(np.int64)).to(self._device),
            phi=self._to_device(self._build_encoder(generator)),
            generator=generator,
            pretrain_seed=pretrain_seed,
            seed=seed,
        )
        state.members = [state] + [self._member(state, index) for index in range(1, self.n_networks_)]
        return state

    def _member(self, state: _FitState, index: int) -> _FitState:
        """Network ``index`` of an ensemble: the data of ``state``, its own seeds and phi."""
        pretrain_seed, train_seed = _stream_seeds(member_seed(state.seed, index))
        generator = make_generator(train_seed)
        return _FitState(
            X_np=state.X_np,
            X=state.X,
            semi_labels_np=state.semi_labels_np,
            semi_labels=state.semi_labels,
            phi=self._to_device(self._build_encoder(generator)),
            generator=generator,
            pretrain_seed=pretrain_seed,
            seed=member_seed(state.seed, index),
        )

    def _threads_for_fit(self) -> Any:
        """The thread setting training runs under (the caller's, unless :func:`tuned_threads`)."""
        return threads_for_fit(self.spec_, self.input_shape_, self._device)

    def _wants_pretraining(self) -> bool:
        return bool(self.pretrain_) and self.pretrain_epochs > 0

    def _new_autoencoder(self, state: _FitState) -> tuple[nn.Module, torch.Tensor, torch.Generator]:
        """A freshly initialised autoencoder, its training data and its generator."""
        pretrain_generator = make_generator(state.pretrain_seed)
        encoder = self._build_encoder(pretrain_generator)
        autoencoder = self._to_device(Autoencoder(encoder, self._build_decoder(pretrain_generator)))
        return autoencoder, state.X, pretrain_generator

    def _adopt_autoencoder(self, state: _FitState, autoencoder: nn.Module, *, reused: bool) -> None:
        """Start phi from the autoencoder's encoder and keep the autoencoder."""
        self._transfer_encoder(autoencoder, state.phi)
        self.autoencoder_ = autoencoder.eval()
        self.autoencoder_reused_ = reused

    @staticmethod
    def _transfer_encoder(autoencoder: nn.Module, phi: nn.Module) -> None:
        """Copy the autoencoder's encoder weights into phi.

        ``strict=True`` fails loudly if a single parameter or buffer does not match (the
        reference code's prefix bug silently copied nothing).
        """
        encoder = getattr(autoencoder, "encoder", None)
        if not isinstance(encoder, nn.Module):
            raise InvalidInputError(
                f"autoencoder must be a deepsad.models.Autoencoder (with an .encoder), got {type(autoencoder).__name__}"
            )
        try:
            phi.load_state_dict(encoder.state_dict(), strict=True)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise InvalidInputError(f"the given autoencoder's encoder does not match the network: {first}") from None

    def _init_center(self, phi: nn.Module, X: torch.Tensor, semi_labels: torch.Tensor) -> torch.Tensor:
        """Mean representation of all samples except labeled anomalies, small coordinates pushed out."""
        keep = semi_labels != -1
        if not bool(keep.any()):
            raise InvalidInputError(
                "every training sample is a labeled anomaly; the centre needs unlabeled or labeled-normal samples"
            )
        phi.eval()
        z = map_batches(phi, X[keep], batch_size=self._scoring_batch_size())  # (n_kept, rep_dim)
        center = z.mean(dim=0)
        small = center.abs() < CENTER_MIN_ABS
        center[small & (center < 0)] = -CENTER_MIN_ABS
        center[small & (center >= 0)] = CENTER_MIN_ABS
        return center

    def _output_loss(
        self, output: torch.Tensor, tensors: Sequence[torch.Tensor], indices: torch.Tensor
    ) -> torch.Tensor:  # pragma: no cover - abstract
        """The method's mean loss on a batch, given phi's output on it.

        ``tensors`` are ``(X, semi_labels, center)`` and ``output`` is
        ``phi(X[indices])``. Written functionally (inputs passed in, tensor operations
        only) so that the same code serves the plain trainer and the stacked one
        (:mod:`deepsad.training.stacked`), which computes the outputs of K models at once.
        """
        raise NotImplementedError

    def _batch_loss(self, phi: nn.Module, tensors: Sequence[torch.Tensor], indices: torch.Tensor) -> torch.Tensor:
        """The method's mean loss on the batch ``tensors[0][indices]``."""
        return self._output_loss(phi(tensors[0][indices]), tensors, indices)

    def _supports_stacking(self) -> bool:
        """Whether the objective is a pure function of a batch (no state across batches)."""
        return True

    def _make_objective(
        self, phi: nn.Module, X: torch.Tensor, semi_labels: torch.Tensor, center: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        tensors = (X, semi_labels, center)

        def objective(indices: torch.Tensor) -> torch.Tensor:
            return self._batch_loss(phi, tensors, indices)

        return objective

    def _semi_labels(self, y: Any, n_samples: int) -> np.ndarray:
        """Validated semi-labels for ``fit``; unsupervised detectors ignore ``y``."""
        return np.zeros(n_samples, dtype=np.int8)

    def _fit_hypersphere(self, X: Any, y: Any, autoencoder: nn.Module | None = None) -> "BaseDeepDetector":
        """Fit pipeline shared by Deep SAD and Deep SVDD (``autoencoder``: see ``fit``)."""
        # plan_fit's steps inline: the semi-label warning's stacklevel counts the frames to the user
        self._check_method_params()
        plan = FitPlan(self, self._begin_fit(X, y))
        if plan.n_networks > 1 and autoencoder is not None:
            raise InvalidInputError(
                f"autoencoder= starts one network from a trained autoencoder; with n_networks={self.n_networks_} "
                "each network pretrains its own (pass n_networks=1 to reuse an autoencoder)"
            )
        # an ensemble's networks train together where the objective allows it (network k
        # then ends as the single-network fit with random_state=member_seed(seed, k)
        # would, up to float reassociation)
        stacked = plan.n_networks > 1 and self.has_stackable_objective() and precision_of(self) == "float32"
        pretrain_plans([plan], autoencoders=None if autoencoder is None else [autoencoder],
                       strategy="auto" if stacked else None,
                       description="pretraining the ensemble's autoencoders" if stacked else None)
        train_plans([plan], strategy="auto" if stacked else None,
                    description=f"training {plan.n_networks} {type(self).__name__} networks" if stacked else None)
        return self

    # ------------------------------------------------------------------ public fit steps
    def plan_fit(self, X: Any, y: Any = None) -> "FitPlan":
        """Set up a fit of ``X, y`` without training anything: the first of the public fit steps.

        Validates the parameters and the data, learns the standardization, resolves the
        network, seeds and ensemble size, and builds the networks. The plan is then
        trained by :func:`pretrain_plans` and :func:`train_plans` (which is what ``fit``
        does, and what :func:`deepsad.fit_stacked` does for several plans at once).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, ...)
            Training samples.
        y : array-like of shape (n_samples,) or None
            Semi-labels as ``fit`` takes them.

        Returns
        -------
        FitPlan
        """
        self._check_method_params()
        return FitPlan(self, self._begin_fit(X, y))

    def pretrain_autoencoder(self, X: Any, y: Any = None) -> nn.Module:
        """Pretrain the autoencoder that ``fit(X, y)`` would start phi from, and nothing more.

        An estimator with the same parameters then fits on it with
        ``fit(X, y, autoencoder=...)`` exactly as if it had pretrained it itself
        (pretraining draws from its own stream of the seed); the experiment runner shares
        autoencoders between methods this way. Sets ``autoencoder_``, ``spec_``,
        ``input_shape_`` and ``output_activation_``; the estimator is not fitted.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, ...)
            Training samples.
        y : array-like of shape (n_samples,) or None
            Semi-labels as ``fit`` takes them (Deep SAD's ``"auto"`` network depends on them).

        Returns
        -------
        deepsad.models.Autoencoder
            The trained autoencoder, in eval mode.

        Raises
        ------
        InvalidInputError
            If the estimator does not pretrain on such data (``pretrain``, ``pretrain_epochs=0``)
            or trains an ensemble (each network pretrains its own).
        """
        plan = self.plan_fit(X, y)
        if not plan.pretrains:
            raise InvalidInputError(
                f"this {type(self).__name__} does not pretrain on such data (pretrain={self.pretrain!r}, "
                f"pretrain_epochs={self.pretrain_epochs})"
            )
        if plan.n_networks > 1:
            raise InvalidInputError(
                f"n_networks={self.n_networks_}: each network of an ensemble pretrains its own autoencoder"
            )
        pretrain_plans([plan])
        return self.autoencoder_

    def has_stackable_objective(self) -> bool:
        """Whether the objective is a pure function of a batch, so networks can train stacked.

        Soft-boundary Deep SVDD re-solves its radius between batches and cannot.
        """
        return self._supports_stacking()

    def _finish_fit(self, state: _FitState, center: torch.Tensor | Sequence[torch.Tensor]) -> "BaseDeepDetector":
        """Keep the trained networks and centres, count labels, set the decision threshold.

        ``center`` is phi's centre, or one centre per network of ``state.members``.
        """
        members = state.members if isinstance(center, (list, tuple)) and state.members else [state]
        centers = list(center) if isinstance(center, (list, tuple)) else [center]
        for member in members:
            member.phi.eval()
        self.networks_ = [member.phi for member in members]
        self.centers_ = np.stack([c.detach().to("cpu").numpy().astype(np.float32) for c in centers])
        self.network_ = self.networks_[0]
        self.center_ = self.centers_[0]
        self.n_networks_ = len(self.networks_)
        self.distance_scales_ = self._median_training_distances(state.X) if len(self.networks_) > 1 else None
        train_scores = self._distances(state.X)
        self._set_threshold(train_scores, natural_threshold=self._natural_threshold(train_scores))
        return self

    def _wants_standardization(self, X: np.ndarray) -> bool:
        """``standardize``, with ``"auto"`` meaning tabular data yes, images no."""
        return resolve_standardize(self.standardize, X.shape[1:])

    def _natural_threshold(self, train_scores: np.ndarray) -> float | None:
        """The method's own boundary on the anomaly-score scale, if it has one."""
        return None

    # ------------------------------------------------------------------ scoring
    def _median_training_distances(self, X_t: torch.Tensor) -> np.ndarray:
        """Each network's median distance on the training data: its scale in an ensemble."""
        medians = []
        for network, center in zip(self.networks_, self.centers_):
            center_t = torch.from_numpy(np.ascontiguousarray(center)).to(X_t.device)

            def distance(batch: torch.Tensor, network: nn.Module = network, center_t: torch.Tensor = center_t) -> torch.Tensor:
                return squared_distance(network.eval()(batch), center_t).sqrt()

            distances = map_batches(distance, X_t, batch_size=self._scoring_batch_size()).to("cpu").double().numpy()
            median = float(np.median(distances))
            medians.append(median if median > 0 else 1.0)
        return np.asarray(medians, dtype=np.float32)

    def _distances(self, X_t: torch.Tensor) -> np.ndarray:
        """Distance to the centre; for an ensemble the mean over its networks of each
        distance divided by that network's median training distance (``distance_scales_``),
        so that no network weighs more for living on a larger scale."""
        scales = getattr(self, "distance_scales_", None)
        weights = [1.0] * len(self.networks_) if scales is None else [1.0 / float(v) for v in scales]
        parts = [
            (network.eval(), torch.from_numpy(np.ascontiguousarray(center)).to(X_t.device), weight)
            for network, center, weight in zip(self.networks_, self.centers_, weights)
        ]

        def distance(batch: torch.Tensor) -> torch.Tensor:
            network, center, weight = parts[0]
            total = squared_distance(network(batch), center).sqrt() * weight
            for network, center, weight in parts[1:]:
                total = total + squared_distance(network(batch), center).sqrt() * weight
            return total / len(parts)

        return map_batches(distance, X_t, batch_size=self._scoring_batch_size()).to("cpu").double().numpy()

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        """Distance of each sample's representation to the centre (see :meth:`_distances`)."""
        for network in self.networks_:
            network.to(self._device)
        return self._distances(self._as_tensor(X))

    def embed(self, X: Any, *, network: int = 0) -> np.ndarray:
        """Representations phi(X) of shape (n_samples, rep_dim), e.g. for inspection or plots.

        ``network`` picks the ensemble member (0 for a single network); its centre is
        ``centers_[network]``.
        """
        check_is_fitted(self, self.fitted_attribute)
        if isinstance(network, bool) or not isinstance(network, (int, np.integer)) or not 0 <= network < len(self.networks_):
            raise InvalidInputError(f"network must be an index in 0..{len(self.networks_) - 1}, got {network!r}")
        phi = self.networks_[int(network)]
        X_np = self._validate_scoring_data(X)
        phi.to(self._device).eval()
        z = map_batches(phi, self._as_tensor(X_np), batch_size=self._scoring_batch_size())
        return z.to("cpu").numpy()

    # ------------------------------------------------------------------ persistence hooks
    def export_onnx(self, path: Any, *, opset: int | None = None) -> Any:
        """Write the anomaly score (standardization, network(s), distance) as one ONNX graph.

        Returns the ``pathlib.Path`` written; see :func:`deepsad.onnx_export.export_onnx`
        (needs ``pip install 'deepsad[onnx]'``).
        """
        from deepsad.onnx_export import export_onnx  # onnx is optional: import it on use only

        return export_onnx(self, path, opset=opset)

    def _params_to_json(self) -> dict[str, Any]:
        """The base's JSON parameters, with networks as spec dicts (a user's module by its
        class name: weights are never pickled) and milestones as validated lists."""
        params = super()._params_to_json()
        network = as_network_param(self.network)
        if isinstance(network, (MLPSpec, LeNetSpec)):
            params["network"] = spec_to_dict(network)
        elif isinstance(network, nn.Module):
            params["network"] = {"type": "custom", "class": type(network).__qualname__}
        if isinstance(self.decoder, nn.Module):
            params["decoder"] = {"type": "custom", "class": type(self.decoder).__qualname__}
        for name in ("lr_milestones", "pretrain_lr_milestones"):
            value = getattr(self, name)
            if not (isinstance(value, str) and value == "auto"):
                params[name] = list(check_milestones(name, value))
        return params

    @classmethod
    def _upgrade_saved_params(cls, params: dict[str, Any], format_version: int) -> dict[str, Any]:
        """Parameters of a model saved in an older format, in today's meaning.

        Before format 3 a Deep SAD / Deep SVDD was one network, ``network="auto"`` meant
        the paper's network, and pretraining, milestones and standardization were
        booleans / lists; those files keep the settings they were trained with.
        """
        if format_version >= 3:
            return params
        params = dict(params)
        params.setdefault("n_networks", 1)
        if params.get("network") == "auto":
            params["network"] = "paper"
        return params

    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Networks, centres, autoencoders, spec and loss histories (the base saves the rest)."""
        arrays: dict[str, np.ndarray] = {}
        # the first network under the single-network names; an ensemble's others by index
        for index, network in enumerate(self.networks_):
            prefix = "network." if index == 0 else f"network{index}."
            arrays.update({f"{prefix}{k}": v.detach().to("cpu").numpy() for k, v in network.state_dict().items()})
        arrays["center"] = self.center_
        if len(self.networks_) > 1:
            arrays["centers"] = self.centers_
            arrays["distance_scales"] = self.distance_scales_
        autoencoders = getattr(self, "autoencoders_", None) or ([self.autoencoder_] if self.autoencoder_ is not None else [])
        for index, autoencoder in enumerate(autoencoders):
            prefix = "autoencoder." if index == 0 else f"autoencoder{index}."
            arrays.update({f"{prefix}{k}": v.detach().to("cpu").numpy() for k, v in autoencoder.state_dict().items()})
        meta = {
            "n_networks": len(self.networks_),
            "n_autoencoders": len(autoencoders),
            "spec": spec_to_dict(self.spec_) if self.spec_ is not None else None,
            "output_activation": self.output_activation_,
            "loss_history": self.loss_history_,
            "pretrain_loss_history": self.pretrain_loss_history_,
            "has_autoencoder": self.autoencoder_ is not None,
        }
        return arrays, meta

    def _restore_fitted_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Rebuild the networks (and autoencoders) from the spec or the given modules and load their weights."""
        self.spec_ = spec_from_dict(meta["spec"]) if meta["spec"] is not None else None
        self.output_activation_ = meta["output_activation"]
        network = as_network_param(self.network)
        if self.spec_ is None and not isinstance(network, nn.Module):
            raise InvalidInputError(
                "this model was trained with a custom network module; pass the same architecture "
                "to deepsad.load(path, network=...)"
            )
        generator = make_generator(0)  # weights are overwritten below; the seed is irrelevant
        n_networks = int(meta.get("n_networks", 1))
        self.networks_ = []
        for index in range(n_networks):
            phi = self._build_encoder(generator)
            phi.load_state_dict(state_dict_with_prefix(arrays, "network." if index == 0 else f"network{index}."), strict=True)
            self.networks_.append(phi.eval())
        self.network_ = self.networks_[0]
        self.n_networks_ = n_networks
        self.autoencoder_ = None
        self.autoencoders_ = []
        if meta["has_autoencoder"]:
            if self.spec_ is None and self.decoder is None:
                logger.info("custom network saved with an autoencoder but no decoder given; autoencoder not restored")
            else:
                for index in range(int(meta.get("n_autoencoders", 1))):
                    autoencoder = Autoencoder(self._build_encoder(generator), self._build_decoder(generator))
                    prefix = "autoencoder." if index == 0 else f"autoencoder{index}."
                    autoencoder.load_state_dict(state_dict_with_prefix(arrays, prefix), strict=True)
                    self.autoencoders_.append(autoencoder.eval())
                self.autoencoder_ = self.autoencoders_[0]
        self.center_ = np.asarray(arrays["center"], dtype=np.float32)
        self.centers_ = (
            np.asarray(arrays["centers"], dtype=np.float32) if n_networks > 1 else self.center_[np.newaxis, :]
        )
        if self.centers_.shape[0] != n_networks:
            raise InvalidInputError(f"the model holds {self.centers_.shape[0]} centres for {n_networks} networks")
        self.distance_scales_ = np.asarray(arrays["distance_scales"], dtype=np.float32) if n_networks > 1 else None
        self.loss_history_ = list(meta["loss_history"])
        self.pretrain_loss_history_ = list(meta["pretrain_loss_history"])


@dataclass
class FitPlan:
    """A fit set up and not yet trained, from :meth:`BaseDeepDetector.plan_fit`.

    The plan holds the estimator's validated training data, seeds and freshly built
    networks (one per ensemble member). :func:`pretrain_plans` and :func:`train_plans`
    carry it out; several plans of estimators with equal settings can be carried out
    together, their networks trained as one stack.

    Attributes
    ----------
    estimator : BaseDeepDetector
        The estimator being fitted.
    """

    estimator: BaseDeepDetector
    _state: _FitState

    @property
    def n_networks(self) -> int:
        """Networks the estimator trains (its ensemble size)."""
        return len(self._state.members or [self._state])

    @property
    def pretrains(self) -> bool:
        """Whether the estimator pretrains an autoencoder per network on this data."""
        return self.estimator._wants_pretraining()

    @property
    def training_shape(self) -> tuple[int, ...]:
        """Shape of the (standardized) training data."""
        return tuple(self._state.X.shape)


def _owners(plans: Sequence[FitPlan]) -> list[tuple[FitPlan, _FitState]]:
    """Every network of every plan, with its plan: the order networks are stacked in."""
    return [(plan, member) for plan in plans for member in (plan._state.members or [plan._state])]


def pretrain_plans(plans: Sequence[FitPlan], *, autoencoders: Sequence[nn.Module] | None = None,
                   strategy: str | None = None, description: str | None = None) -> None:
    """The first training step of ``plans``: start every network from an autoencoder's encoder.

    Either adopts the given trained ``autoencoders`` (one per single-network plan, as
    ``fit(..., autoencoder=...)``) or, when the estimators pretrain, pretrains a fresh
    autoencoder per network with :func:`deepsad.training.pretrain_autoencoders`; without
    either, the networks keep their initialisation.

    Parameters
    ----------
    plans : sequence of FitPlan
        From :meth:`BaseDeepDetector.plan_fit` of estimators with equal settings (the
        first one's pretraining settings serve all).
    autoencoders : sequence of torch.nn.Module, optional
        One trained autoencoder per plan, used instead of pretraining.
    strategy : {None, "auto", "grouped", "vmap"}, default=None
        ``None``: each autoencoder trained on its own; otherwise all together, stacked
        (:func:`deepsad.training.stacked.train_stacked`).
    description : str, optional
        Label of log lines and errors.
    """
    if autoencoders is not None:
        for plan, autoencoder in zip(plans, autoencoders):
            plan.estimator._adopt_autoencoder(plan._state, autoencoder, reused=True)
        return
    first = plans[0].estimator
    if not first._wants_pretraining():
        return
    owners = _owners(plans)
    with first._threads_for_fit():
        built = [plan.estimator._new_autoencoder(member) for plan, member in owners]
        histories = pretrain_autoencoders(
            [autoencoder for autoencoder, _, _ in built], [X for _, X, _ in built], first._pretrain_config(),
            generators=[generator for _, _, generator in built], device=first._device, strategy=strategy,
            progress=first.verbose,
            description=description or ("pretraining autoencoder" if strategy is None else "stacked autoencoder pretraining"),
        )
    for plan in plans:
        mine = [i for i, (owner, _) in enumerate(owners) if owner is plan]
        estimator = plan.estimator
        for i in mine:
            estimator._transfer_encoder(built[i][0], owners[i][1].phi)
        estimator.autoencoders_ = [built[i][0].eval() for i in mine]
        estimator.autoencoder_ = estimator.autoencoders_[0]
        estimator.autoencoder_reused_ = False
        estimator.pretrain_loss_history_ = mean_history([histories[i] for i in mine])


def train_plans(plans: Sequence[FitPlan], *, strategy: str | None = None, description: str | None = None) -> None:
    """The last training step of ``plans``: centre and train every network, then finish each fit.

    Parameters
    ----------
    plans : sequence of FitPlan
        Plans after :func:`pretrain_plans`, of estimators with equal settings (the first
        one's objective and optimiser settings serve all when stacked).
    strategy : {None, "auto", "grouped", "vmap"}, default=None
        ``None``: each network trained on its own with its estimator's objective (any
        objective and precision); otherwise all together, stacked
        (:func:`deepsad.training.stacked.train_stacked`; float32, pure batch objectives).
    description : str, optional
        Label of log lines and errors.
    """
    first = plans[0].estimator
    owners = _owners(plans)
    device = first._device
    n_samples = plans[0]._state.X.shape[0]
    with first._threads_for_fit():
        centers = [plan.estimator._init_center(m.phi, m.X, m.semi_labels) for plan, m in owners]
        if strategy is None:
            histories = [
                train(m.phi, plan.estimator._make_objective(m.phi, m.X, m.semi_labels, center), m.X.shape[0],
                      plan.estimator._train_config(), generator=m.generator, device=device,
                      progress=plan.estimator.verbose, description=description or f"training {type(first).__name__}")
                for (plan, m), center in zip(owners, centers)
            ]
        else:
            histories = train_stacked(
                [m.phi for _, m in owners],
                first._output_loss,  # reads only settings that are equal for every estimator
                [(m.X, m.semi_labels, center) for (_, m), center in zip(owners, centers)],
                n_samples, first._train_config(), generators=[m.generator for _, m in owners], device=device,
                description=description or f"stacked training of {len(owners)} {type(first).__name__} networks",
                strategy=strategy,
            )
    for plan in plans:
        mine = [i for i, (owner, _) in enumerate(owners) if owner is plan]
        plan.estimator.loss_history_ = mean_history([histories[i] for i in mine])
        own_centers = [centers[i] for i in mine]
        plan.estimator._finish_fit(plan._state, own_centers if len(own_centers) > 1 else own_centers[0])
