"""Layer blocks shared by the networks (MLP, LeNet, and SS-DGM's in :mod:`deepsad.baselines.ssdgm`)."""

from __future__ import annotations

from torch import nn

from deepsad.errors import InvalidInputError

#: Output activations a decoder can end with.
OUTPUT_ACTIVATIONS = ("sigmoid", "identity")


def dense_block(
    in_features: int, out_features: int, *, negative_slope: float, bn_eps: float, batch_norm: bool = True
) -> list[nn.Module]:
    """Linear (no bias) -> BatchNorm1d (no affine; only with ``batch_norm``) -> leaky ReLU.

    No bias and no affine BN shift: a constant offset would let phi map every input to
    the centre (hypersphere collapse, Ruff et al. 2018, Prop. 2).
    """
    layers: list[nn.Module] = [nn.Linear(in_features, out_features, bias=False)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(out_features, eps=bn_eps, affine=False))
    layers.append(nn.LeakyReLU(negative_slope))
    return layers


def output_activation_module(name: str) -> nn.Module:
    """``nn.Sigmoid()`` for ``"sigmoid"`` (data in [0, 1]), ``nn.Identity()`` for ``"identity"``."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "identity":
        return nn.Identity()
    raise InvalidInputError(f"output_activation must be one of {list(OUTPUT_ACTIVATIONS)}, got {name!r}")
