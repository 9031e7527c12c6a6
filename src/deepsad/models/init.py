"""Deterministic Glorot initialisation (paper, Appendix E) from a local generator."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

# Every module type whose weight is a dense or convolutional kernel; BatchNorm is not
# included (ours has no affine parameters, and a user's keeps PyTorch's ones/zeros).
_KERNEL_MODULES = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)


def leaving_global_rng_alone() -> contextlib.AbstractContextManager[None]:
    """A context in which PyTorch's default layer init cannot advance the global CPU RNG.

    Layers draw their default weights from the global generator on construction; the
    real weights come from :func:`init_weights_` and a local generator, so building a
    network should not change what unrelated code gets from ``torch.rand``.

    Returns
    -------
    contextlib.AbstractContextManager
        Restores the global CPU generator's state on exit.
    """
    return torch.random.fork_rng(devices=[])


@torch.no_grad()
def init_weights_(module: nn.Module, generator: torch.Generator, *, gain: float = 1.0) -> None:
    """Glorot/Xavier-uniform every Linear / Conv / ConvTranspose weight; zero every bias.

    Random numbers come only from ``generator``, so the same seed gives the same
    weights and torch's global RNG is left untouched. Weights are drawn on the
    generator's device in the standard (contiguous) layout and then copied in, so a
    module gets the same values whether it lives on CPU or GPU and in whatever memory
    format.

    Parameters
    ----------
    module : nn.Module
        Initialised in place, with all its submodules.
    generator : torch.Generator
        Source of randomness, e.g. ``torch.Generator().manual_seed(seed)``.
    gain : float, default=1.0
        Scale of the Glorot bound (1 = the paper's init).
    """
    for submodule in module.modules():
        if not isinstance(submodule, _KERNEL_MODULES):
            continue
        weight = getattr(submodule, "weight", None)
        if isinstance(weight, torch.Tensor) and not isinstance(weight, nn.parameter.UninitializedParameter):
            fresh = torch.empty(weight.shape, dtype=weight.dtype, device=generator.device)
            nn.init.xavier_uniform_(fresh, gain=gain, generator=generator)
            weight.copy_(fresh)
        bias = getattr(submodule, "bias", None)
        if isinstance(bias, torch.Tensor) and not isinstance(bias, nn.parameter.UninitializedParameter):
            bias.zero_()
