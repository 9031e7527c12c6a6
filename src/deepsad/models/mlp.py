"""Fully connected encoder and decoder for tabular data (the paper's ODDS networks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepsad.models.blocks import dense_block, output_activation_module


class MLPEncoder(nn.Module):
    """phi for tabular data: ``(n, in_features) -> (n, rep_dim)``.

    Every hidden layer is Linear (no bias) -> BatchNorm1d (no affine) -> leaky ReLU; the
    last layer is a bias-free Linear with nothing after it, so phi is unbounded and has
    no constant offset (both would allow a collapsed solution).

    Parameters
    ----------
    in_features : int
        Number of input features d.
    hidden_sizes : sequence of int
        Hidden layer widths, input side first.
    rep_dim : int
        Representation size.
    negative_slope : float
        Leaky ReLU slope.
    bn_eps : float
        BatchNorm epsilon.
    batch_norm : bool, default=True
        BatchNorm after each hidden Linear (the paper's network).

    Attributes
    ----------
    rep_dim : int
        Representation size (read by :func:`deepsad.models.representation_dim`).
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        rep_dim: int,
        *,
        negative_slope: float = 0.1,
        bn_eps: float = 1e-4,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.rep_dim = int(rep_dim)
        widths = [self.in_features, *hidden_sizes]
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += dense_block(
                width_in, width_out, negative_slope=negative_slope, bn_eps=bn_eps, batch_norm=batch_norm
            )
        layers.append(nn.Linear(widths[-1], self.rep_dim, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (n, d) -> (n, rep_dim)


class MLPDecoder(nn.Module):
    """The mirror of :class:`MLPEncoder`: ``(n, rep_dim) -> (n, out_features)``.

    Hidden layers as in the encoder, in reverse order; the output Linear has a bias
    (the decoder is not part of phi, and the bias lets it reproduce the data mean)
    followed by the output activation.

    Parameters
    ----------
    out_features : int
        Number of features d to reconstruct.
    hidden_sizes : sequence of int
        The *encoder's* hidden widths, input side first (they are used reversed).
    rep_dim : int
        Representation size.
    negative_slope, bn_eps : float
        As in the encoder.
    batch_norm : bool, default=True
        As in the encoder.
    output_activation : {"sigmoid", "identity"}
        ``"sigmoid"`` for data in [0, 1], ``"identity"`` for standardized data.
    """

    def __init__(
        self,
        out_features: int,
        hidden_sizes: Sequence[int],
        rep_dim: int,
        *,
        negative_slope: float = 0.1,
        bn_eps: float = 1e-4,
        output_activation: str = "sigmoid",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.out_features = int(out_features)
        self.rep_dim = int(rep_dim)
        widths = [self.rep_dim, *reversed(tuple(hidden_sizes))]
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += dense_block(
                width_in, width_out, negative_slope=negative_slope, bn_eps=bn_eps, batch_norm=batch_norm
            )
        layers += [nn.Linear(widths[-1], self.out_features, bias=True), output_activation_module(output_activation)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (n, rep_dim) -> (n, d)
