"""The autoencoder used to pretrain phi (and as the (C)AE baseline)."""

from __future__ import annotations

import torch
from torch import nn


class Autoencoder(nn.Module):
    """``decoder(encoder(x))``, with the encoder kept as a separate submodule.

    The encoder has phi's architecture, so after pretraining
    ``phi.load_state_dict(autoencoder.encoder.state_dict(), strict=True)`` transfers
    the weights; keeping it as the attribute ``encoder`` (not flattened into one
    Sequential) makes that state dict's keys exactly phi's.

    Parameters
    ----------
    encoder : nn.Module
        Maps ``(n, *input_shape)`` to ``(n, rep_dim)``.
    decoder : nn.Module
        Maps ``(n, rep_dim)`` back to ``(n, *input_shape)``.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # (n, *input_shape) -> (n, rep_dim) -> (n, *input_shape)
