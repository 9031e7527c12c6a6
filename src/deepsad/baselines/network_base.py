"""The base classes of the network baselines (CAE, the supervised classifier, SS-DGM, DevNet, Hybrid).

:class:`NetworkDetector` is a :class:`~deepsad.detectors.estimator_base.BaseDetector`
whose model is a torch network: Deep SAD's device and tensor-layout helpers, batched
scoring, and weights in and out of a saved model. :class:`NetworkBaseline` adds what
the baselines built from a network spec share with Deep SAD: parameter validation, the
optimizer settings, the spec and the loss history in a saved model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from deepsad.detectors.deep_base import BaseDeepDetector, DeviceTensorsMixin
from deepsad.detectors.estimator_base import BaseDetector, check_bool
from deepsad.detectors.scoring import check_contamination
from deepsad.errors import InvalidInputError
from deepsad.models import LeNetSpec, MLPSpec, default_spec, spec_from_dict, spec_to_dict
from deepsad.models.specs import as_network_param
from deepsad.models.state import state_dict_with_prefix
from deepsad.training import make_generator, map_batches, seed_from_random_state, train
from deepsad.validation import check_fraction, check_milestones, check_positive_int


def module_arrays(module: nn.Module, prefix: str) -> dict[str, np.ndarray]:
    """A module's state dict as CPU arrays named ``prefix + key`` (for a saved model)."""
    return {f"{prefix}{k}": v.detach().to("cpu").numpy() for k, v in module.state_dict().items()}


def load_module(module: nn.Module, arrays: Mapping[str, np.ndarray], prefix: str) -> nn.Module:
    """Load the arrays named ``prefix + key`` into ``module`` (strictly); return it in evaluation mode."""
    module.load_state_dict(state_dict_with_prefix(arrays, prefix), strict=True)
    return module.eval()


class NetworkDetector(DeviceTensorsMixin, BaseDetector):
    """A detector whose model is a torch network (a base class, not an estimator by itself)."""

    def _batch_scores(self, score: Callable[[torch.Tensor], torch.Tensor], X_t: torch.Tensor) -> np.ndarray:
        """``score`` over ``X_t`` in scoring batches, as float64 on the CPU."""
        return map_batches(score, X_t, batch_size=self._scoring_batch_size()).to("cpu").double().numpy()


class NetworkBaseline(NetworkDetector):
    """What the spec-built network baselines share with Deep SAD (not an estimator by itself).

    The standardizer is the detectors' one (:class:`BaseDetector`), and the optimizer
    settings are Deep SAD's (``lr_milestones``, ``tabular_recipe``), so that the
    baselines preprocess and train exactly as Deep SAD does. Networks are built from
    specs only (``"auto"``, :class:`MLPSpec`, :class:`LeNetSpec` or their dict form).
    """

    network: Any
    epochs: int
    lr: float
    lr_milestones: Any
    weight_decay: float
    batch_size: int
    standardize: bool
    contamination: Any
    device: Any
    random_state: Any
    verbose: bool

    _resolve_output_activation = BaseDeepDetector._resolve_output_activation

    # ------------------------------------------------------------------ validation
    def _check_common_params(self) -> None:
        check_positive_int("epochs", self.epochs, allow_zero=True)
        check_positive_int("batch_size", self.batch_size)
        check_fraction("lr", self.lr, low=0.0, high=float("inf"), low_inclusive=False, high_inclusive=False)
        check_fraction(
            "weight_decay", self.weight_decay, low=0.0, high=float("inf"), low_inclusive=True, high_inclusive=False
        )
        check_milestones("lr_milestones", self.lr_milestones)
        check_contamination(self.contamination)
        check_bool("standardize", self.standardize)
        network = as_network_param(self.network)
        if isinstance(network, nn.Module) or not (network == "auto" or isinstance(network, (MLPSpec, LeNetSpec))):
            raise InvalidInputError(
                f"network must be 'auto' or an MLPSpec / LeNetSpec (or its dict) for {type(self).__name__}, "
                f"got {self.network!r}"
            )

    # the same epochs / lr / lr_milestones / weight_decay / batch_size parameters as the detectors,
    # and the same meaning of lr_milestones="auto"
    _optimizer_config = BaseDeepDetector._train_config
    tabular_recipe = BaseDeepDetector.tabular_recipe

    def _prepare_fit(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, torch.Generator]:
        """Validate and standardize; set ``spec_``; return samples, semi-labels and the generator."""
        X_np, semi_labels = self._validate_training_data(X, y)
        network = as_network_param(self.network)
        self.spec_ = default_spec(self.input_shape_) if network == "auto" else network
        X_np = self._fit_standardizer(X_np)
        return X_np, semi_labels, make_generator(seed_from_random_state(self.random_state))

    def _train_network(
        self,
        module: nn.Module,
        batch_loss: Callable[[torch.Tensor], torch.Tensor],
        n_samples: int,
        generator: torch.Generator,
        description: str,
    ) -> list[float]:
        """Train ``module`` on ``batch_loss`` with the estimator's optimizer settings; the loss per epoch."""
        return train(
            module,
            batch_loss,
            n_samples,
            self._optimizer_config(),
            generator=generator,
            device=self._device,
            progress=self.verbose,
            description=description,
        )

    # ------------------------------------------------------------------ persistence
    def _params_to_json(self) -> dict[str, Any]:
        params = super()._params_to_json()
        network = as_network_param(self.network)
        if isinstance(network, (MLPSpec, LeNetSpec)):
            params["network"] = spec_to_dict(network)
        params["lr_milestones"] = list(check_milestones("lr_milestones", self.lr_milestones))
        return params

    def _common_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, meta = super()._common_state()
        meta.update({"spec": spec_to_dict(self.spec_), "loss_history": list(self.loss_history_)})
        return arrays, meta

    def _restore_common(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._restore_common(arrays, meta)
        self.spec_ = spec_from_dict(meta["spec"])
        self.loss_history_ = list(meta["loss_history"])
