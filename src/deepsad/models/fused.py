"""Swap deepsad's fused speed layers into a stock-layer network, and back, keeping every name.

deepsad's networks are built from stock torch layers, so that their state dicts are what
any PyTorch user expects. For training on CPU, some runs of stock layers have faster,
exactly equivalent fused forms; :func:`use_fused_layers` puts them in place, and
:func:`use_stock_layers` / :func:`to_stock_layers` take them out again:

====================================================  ===================================================
stock layers (in one ``nn.Sequential``)               fused form, at the same indices
====================================================  ===================================================
``BatchNorm2d(affine=False)``, ``LeakyReLU``,         :class:`~deepsad.models.pooled_batchnorm.BatchNormLeakyMaxPool2d`,
``MaxPool2d(k)``                                      :class:`FusedPlaceholder`, :class:`FusedPlaceholder`
``Upsample(nearest, s)``, ``ConvTranspose2d``         :class:`FusedPlaceholder`,
(stride 1, "same" padding)                            :class:`~deepsad.models.resize_conv.UpsamplingConvTranspose2d`
any other ``BatchNorm2d``                             :class:`~deepsad.models.batchnorm.FastBatchNorm2d`
====================================================  ===================================================

A fused layer sits at the index of the stock layer that holds the parameters and buffers,
and takes over those very tensors; the placeholders keep the other indices. So names,
tensors (an optimizer built before the swap stays valid) and the state dict are the same
in both forms.
"""

from __future__ import annotations

import copy

from torch import nn

from deepsad.models.batchnorm import FastBatchNorm2d
from deepsad.models.pooled_batchnorm import BatchNormLeakyMaxPool2d
from deepsad.models.resize_conv import UpsamplingConvTranspose2d


class FusedPlaceholder(nn.Identity):
    """Holds the index of a stock layer whose work the fused layer next to it does."""


def use_fused_layers(module: nn.Module) -> nn.Module:
    """Swap the fused forms into ``module`` in place of its stock layer runs that have one.

    Parameters
    ----------
    module : torch.nn.Module
        Any network; runs of stock layers in an ``nn.Sequential`` that have a fused form
        (module docstring) are swapped, everything else is left alone.

    Returns
    -------
    torch.nn.Module
        ``module`` itself, computing the same function with the same parameter and
        buffer names and tensors.
    """
    for sequence in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        layers = list(sequence)
        i = 0
        while i < len(layers):
            swapped = _fused_run(layers[i:])
            for offset, layer in enumerate(swapped):
                sequence[i + offset] = layer
            i += max(len(swapped), 1)
    return module


def use_stock_layers(module: nn.Module) -> nn.Module:
    """Undo :func:`use_fused_layers`, in place: stock torch layers under the same names.

    A fused layer found outside the layout :func:`use_fused_layers` makes (no
    placeholders next to it) becomes an ``nn.Sequential`` of its stock layers, so its
    parameter names gain a level there; their order is unchanged.

    Parameters
    ----------
    module : torch.nn.Module
        Any network.

    Returns
    -------
    torch.nn.Module
        ``module`` itself, free of deepsad-specific layers.
    """
    for parent in list(module.modules()):
        if isinstance(parent, nn.Sequential):
            _unfuse_runs(parent)
        for name, child in list(parent.named_children()):
            stock = _stock_block(child)
            if stock is not None:
                setattr(parent, name, stock)
    return module


def to_stock_layers(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every deepsad-specific layer replaced by stock torch layers.

    The yardstick the equivalence tests compare the fused layers to, and what ONNX
    export sees.

    Parameters
    ----------
    module : torch.nn.Module
        Any network; it is left untouched.

    Returns
    -------
    torch.nn.Module
        The copy (see :func:`use_stock_layers`): a network built by deepsad gets its
        canonical layout back, with the original's parameter and buffer names.
    """
    return use_stock_layers(copy.deepcopy(module))


def _fused_run(layers: list[nn.Module]) -> list[nn.Module]:
    """The fused replacement of the stock run that starts ``layers``, or ``[]`` for none."""
    first = layers[0]
    if (type(first) is nn.BatchNorm2d and len(layers) >= 3 and _is_leaky(layers[1])
            and _pool_size(layers[2]) is not None and not first.affine and layers[1].negative_slope >= 0):
        fused = _adopt(first, BatchNormLeakyMaxPool2d(
            first.num_features, eps=first.eps, momentum=first.momentum, track_running_stats=first.track_running_stats,
            negative_slope=layers[1].negative_slope, pool=_pool_size(layers[2]), device="meta"))
        return [fused, FusedPlaceholder(), FusedPlaceholder()]
    if len(layers) >= 2 and _upsample_factor(first) is not None and _has_resize_form(layers[1]):
        conv = layers[1]
        fused = _adopt(conv, UpsamplingConvTranspose2d(
            conv.in_channels, conv.out_channels, conv.kernel_size[0], padding=conv.padding[0],
            scale_factor=_upsample_factor(first), groups=conv.groups, bias=conv.bias is not None, device="meta"))
        return [FusedPlaceholder(), fused]
    if type(first) is nn.BatchNorm2d:
        return [_adopt(first, FastBatchNorm2d(first.num_features, eps=first.eps, momentum=first.momentum,
                                              affine=first.affine, track_running_stats=first.track_running_stats,
                                              device="meta"))]
    return []


def _unfuse_runs(sequence: nn.Sequential) -> None:
    """Restore the stock layers of the fused runs that :func:`use_fused_layers` laid out."""
    layers = list(sequence)
    for i, layer in enumerate(layers):
        if (isinstance(layer, BatchNormLeakyMaxPool2d) and len(layers) > i + 2
                and all(type(m) is FusedPlaceholder for m in layers[i + 1:i + 3])):
            sequence[i] = _stock_batchnorm(layer)
            sequence[i + 1] = nn.LeakyReLU(layer.negative_slope)
            sequence[i + 2] = nn.MaxPool2d(layer.pool)
        elif isinstance(layer, UpsamplingConvTranspose2d) and i > 0 and type(layers[i - 1]) is FusedPlaceholder:
            sequence[i - 1] = nn.Upsample(scale_factor=layer.scale_factor, mode="nearest")
            sequence[i] = _stock_transposed_conv(layer)


def _stock_block(layer: nn.Module) -> nn.Module | None:
    """The stock form of a fused layer left outside a placeholder layout, or ``None``."""
    if isinstance(layer, BatchNormLeakyMaxPool2d):
        return nn.Sequential(_stock_batchnorm(layer), nn.LeakyReLU(layer.negative_slope),
                             nn.MaxPool2d(layer.pool)).train(layer.training)
    if isinstance(layer, FastBatchNorm2d):
        return _stock_batchnorm(layer)
    if isinstance(layer, UpsamplingConvTranspose2d):
        return nn.Sequential(nn.Upsample(scale_factor=layer.scale_factor, mode="nearest"),
                             _stock_transposed_conv(layer)).train(layer.training)
    return None


def _stock_batchnorm(layer: FastBatchNorm2d) -> nn.BatchNorm2d:
    return _adopt(layer, nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum,
                                        affine=layer.affine, track_running_stats=layer.track_running_stats,
                                        device="meta"))


def _stock_transposed_conv(layer: UpsamplingConvTranspose2d) -> nn.ConvTranspose2d:
    return _adopt(layer, nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                            padding=layer.padding, groups=layer.groups,
                                            bias=layer.bias is not None, device="meta"))


def _adopt(old: nn.Module, new: nn.Module) -> nn.Module:
    """``new`` (built on the meta device: no memory, no draws from the RNG) holding ``old``'s tensors."""
    for name in new._parameters:
        new._parameters[name] = old._parameters[name]
    for name in new._buffers:
        new._buffers[name] = old._buffers[name]
    return new.train(old.training)


def _is_leaky(layer: nn.Module) -> bool:
    return type(layer) is nn.LeakyReLU


def _pool_size(layer: nn.Module) -> int | None:
    """``k`` for a plain non-overlapping ``MaxPool2d(k)`` (the fused layer's pool), else ``None``."""
    if type(layer) is not nn.MaxPool2d or layer.ceil_mode or layer.return_indices:
        return None
    kernel, stride, padding, dilation = (_as_pair(v) for v in
                                         (layer.kernel_size, layer.stride, layer.padding, layer.dilation))
    if kernel[0] != kernel[1] or stride != kernel or padding != (0, 0) or dilation != (1, 1):
        return None
    return int(kernel[0])


def _as_pair(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (value, value)


def _upsample_factor(layer: nn.Module) -> int | None:
    """``s`` for ``Upsample(scale_factor=s, mode="nearest")`` with one integer ``s``, else ``None``."""
    if type(layer) is not nn.Upsample or layer.mode != "nearest" or layer.size is not None:
        return None
    factor = layer.scale_factor
    factors = factor if isinstance(factor, tuple) else (factor,)
    if len(set(factors)) != 1 or float(factors[0]) != int(factors[0]) or int(factors[0]) < 1:
        return None
    return int(factors[0])


def _has_resize_form(layer: nn.Module) -> bool:
    """Whether ``layer`` is a transposed conv that :class:`UpsamplingConvTranspose2d` computes."""
    return (
        type(layer) is nn.ConvTranspose2d
        and layer.stride == (1, 1) and layer.dilation == (1, 1) and layer.output_padding == (0, 0)
        and layer.padding_mode == "zeros" and isinstance(layer.padding, tuple)
        and layer.kernel_size[0] == layer.kernel_size[1] and layer.padding[0] == layer.padding[1]
        and 2 * layer.padding[0] == layer.kernel_size[0] - 1
    )
