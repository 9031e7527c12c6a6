"""deepsad's networks rebuilt from stock torch layers, the way the reference code computes them.

deepsad computes some layer sequences in faster but equivalent forms (FastBatchNorm2d,
BatchNormLeakyMaxPool2d, UpsamplingConvTranspose2d). :func:`to_stock_layers` undoes
that: the copy it returns computes the same function with stock ``nn.BatchNorm2d``,
``nn.LeakyReLU``, ``nn.MaxPool2d``, ``nn.Upsample`` and ``nn.ConvTranspose2d`` layers.
It is the yardstick the equivalence tests and the benchmarks' "stock loop" compare to.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from deepsad.models.batchnorm import FastBatchNorm2d
from deepsad.models.pooled_batchnorm import BatchNormLeakyMaxPool2d
from deepsad.models.resize_conv import UpsamplingConvTranspose2d


def to_stock_layers(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every deepsad-specific layer replaced by stock layers.

    Parameters
    ----------
    module : torch.nn.Module
        Any network; its parameters and buffers are copied, the original is untouched.

    Returns
    -------
    torch.nn.Module
        The copy. Fused layers become ``nn.Sequential`` blocks, so parameter and buffer
        names differ from the original's, but their order (``parameters()``,
        ``buffers()``) is the same.
    """
    stock = copy.deepcopy(module)
    for parent in list(stock.modules()):
        for name, child in list(parent.named_children()):
            replacement = _stock_form(child)
            if replacement is not None:
                setattr(parent, name, replacement.train(child.training))
    return stock


def _stock_form(layer: nn.Module) -> nn.Module | None:
    if isinstance(layer, BatchNormLeakyMaxPool2d):
        return nn.Sequential(_stock_batchnorm(layer), nn.LeakyReLU(layer.negative_slope), nn.MaxPool2d(layer.pool))
    if isinstance(layer, FastBatchNorm2d):
        return _stock_batchnorm(layer)
    if isinstance(layer, UpsamplingConvTranspose2d):
        conv = nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding,
                                  groups=layer.groups, bias=layer.bias is not None,
                                  device=layer.weight.device, dtype=layer.weight.dtype)
        conv.load_state_dict(layer.state_dict())
        return nn.Sequential(nn.Upsample(scale_factor=layer.scale_factor, mode="nearest"), conv)
    return None


def _stock_batchnorm(layer: FastBatchNorm2d) -> nn.BatchNorm2d:
    stock = nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
                           track_running_stats=layer.track_running_stats, device=_device_of(layer))
    stock.load_state_dict(layer.state_dict())
    return stock


def _device_of(layer: nn.Module) -> torch.device | None:
    tensors = [*layer.parameters(), *layer.buffers()]
    return tensors[0].device if tensors else None
