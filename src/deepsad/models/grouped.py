"""K networks of one architecture as one network with K-fold wider, grouped layers.

For a grid's cells that differ only in data or seed, K copies of a small network can run
as one: a convolution from C to O channels becomes one from K*C to K*O channels with
``groups=K`` (model k sees only its own C input channels), a BatchNorm over C channels
one over K*C channels (statistics stay per model: a channel belongs to one model), a
Linear a batched matrix product over K weight matrices, and every elementwise layer
and pooling stays as it is. On CPU this fills vector units that one narrow network
leaves idle, where vmap-based stacking does not (measurements: docs/performance.md).

Layouts, with b samples per model:

- image activations: ``(b, K*C, h, w)``, model k's channels at ``k*C .. k*C + C - 1``;
- flat activations: ``(b, K*F)``, i.e. ``(b, K, F)`` flattened, model k's features at
  ``k*F .. k*F + F - 1``, which is also what a per-model ``flatten(1)`` of the image layout
  gives (order ``(k, c, h, w)``), so flatten and unflatten need no reordering.

The grouping follows the networks' structure: deepsad's networks
(:class:`~deepsad.models.Autoencoder`, the LeNet and MLP encoders and decoders) run
their children one after the other, and each child is an ``nn.Sequential``, an
``nn.Flatten`` / ``nn.Unflatten`` or another such network; every layer of those sequences
must be of a type with a grouped form (stock or fused). For anything else
:func:`group_networks` returns ``None`` and the caller uses vmap.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from deepsad.models.autoencoder import Autoencoder
from deepsad.models.batchnorm import FAST_PATH_MAX_CHANNELS, FastBatchNorm2d
from deepsad.models.fused import FusedPlaceholder
from deepsad.models.lenet import LeNetDecoder, LeNetEncoder
from deepsad.models.mlp import MLPDecoder, MLPEncoder
from deepsad.models.pooled_batchnorm import BatchNormLeakyMaxPool2d
from deepsad.models.resize_conv import UpsamplingConvTranspose2d

#: Layers that act on each channel or feature alone: one instance serves all K models.
_PER_CHANNEL_LAYERS = (nn.LeakyReLU, nn.Sigmoid, nn.Identity, FusedPlaceholder, nn.MaxPool2d, nn.Upsample)

#: Networks whose forward runs their children one after the other, in registration order
#: (a user's module may do anything in its forward, so only these are followed).
_CHAINED_NETWORKS = (Autoencoder, LeNetEncoder, LeNetDecoder, MLPEncoder, MLPDecoder)

#: Layers that decide whether a network reads images (the first such layer) or flat vectors.
_IMAGE_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.MaxPool2d, nn.Upsample)
_FLAT_LAYERS = (nn.Linear, nn.BatchNorm1d, nn.Flatten, nn.Unflatten)


@dataclass
class _Link:
    """How one grouped tensor splits back into the K source tensors it was built from.

    ``mode`` is ``"cat"`` (model k owns the k-th of K equal chunks along dim 0),
    ``"stack"`` (model k owns index k of dim 0) or ``"shared"`` (every model holds the
    same value, e.g. BatchNorm's batch counter, which all models advance in step).
    """

    grouped: torch.Tensor
    sources: list[torch.Tensor]
    mode: str

    def write_back(self) -> None:
        k_models = len(self.sources)
        if self.mode == "cat":
            parts = self.grouped.detach().chunk(k_models, dim=0)
        elif self.mode == "stack":
            parts = self.grouped.detach().unbind(0)
        else:
            parts = (self.grouped.detach(),) * k_models
        for source, part in zip(self.sources, parts):
            source.copy_(part)


class _GroupedLinear(nn.Module):
    """K Linear layers on the flat layout ``(b, K*in) -> (b, K*out)`` via one batched matmul."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)  # (K, out, in), as K stacked nn.Linear weights
        self.bias = nn.Parameter(bias) if bias is not None else None  # (K, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k_models, out_features, in_features = self.weight.shape
        per_model = x.reshape(x.shape[0], k_models, in_features).transpose(0, 1)  # (K, b, in)
        if self.bias is None:
            y = torch.bmm(per_model, self.weight.transpose(1, 2))
        else:
            y = torch.baddbmm(self.bias.unsqueeze(1), per_model, self.weight.transpose(1, 2))
        return y.transpose(0, 1).reshape(x.shape[0], k_models * out_features)  # (b, K*out)


class _Unflatten(nn.Module):
    """``(b, K*C*h*w) -> (b, K*C, h, w)``: the decoder's reshape, for all models at once."""

    def __init__(self, k_models: int, feature_shape: tuple[int, int, int]) -> None:
        super().__init__()
        c, h, w = feature_shape
        self.shape = (k_models * c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, self.shape)


class _Flatten(nn.Module):
    """``(b, K*C, h, w) -> (b, K*C*h*w)``; per model the order is LeNetEncoder's ``(c, h, w)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class _NotGroupable(Exception):
    """Raised inside the conversion when a module has no grouped form (caught by group_networks)."""


class GroupedNetwork(nn.Module):
    """K networks of one architecture run as one (see the module docstring for layouts).

    Build it with :func:`group_networks`; train it like any module; then
    :meth:`write_back` copies the trained parameters and buffers into the K sources.

    Attributes
    ----------
    n_models : int
        K.
    image_input, image_output : bool
        Whether the network reads / produces images (else flat vectors).
    channels_last : bool
        Whether image activations run in channels_last (CPU; see :func:`group_networks`).
    """

    def __init__(self, body: nn.Module, links: list[_Link], *, n_models: int, image_input: bool,
                 image_output: bool, channels_last: bool) -> None:
        super().__init__()
        # built on the sources' device and layout: the links hold the grouped tensors
        # themselves, which a later .to() could replace (buffers) and so disconnect
        self.body = body
        self.n_models = n_models
        self.image_input = image_input
        self.image_output = image_output
        self.channels_last = channels_last
        self._links = links

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Grouped input -> grouped output (see :meth:`group_input` and :meth:`split_output`)."""
        return self.body(x)

    def group_input(self, batches: torch.Tensor) -> torch.Tensor:
        """``(K, b, *shape)`` per-model batches -> the grouped input layout (one copy)."""
        k_models, b = batches.shape[:2]
        if self.image_input:
            _, _, c, h, w = batches.shape
            layout = torch.channels_last if self.channels_last else torch.contiguous_format
            grouped = torch.empty((b, k_models * c, h, w), dtype=batches.dtype, device=batches.device,
                                  memory_format=layout)
            # write through a (b, K, c, h, w) view of the result: one copy into the final layout
            # (a reshape can return a view in the wrong layout, e.g. for c = 1)
            grouped.unflatten(1, (k_models, c)).copy_(batches.transpose(0, 1))
            return grouped
        return batches.transpose(0, 1).reshape(b, -1)

    def split_output(self, output: torch.Tensor) -> torch.Tensor:
        """The grouped output -> ``(K, b, *shape)`` per-model outputs (a view)."""
        b = output.shape[0]
        if self.image_output:
            return output.unflatten(1, (self.n_models, -1)).movedim(1, 0)
        return output.reshape(b, self.n_models, -1).transpose(0, 1)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the grouped parameters and buffers into the K source networks."""
        for link in self._links:
            link.write_back()


def group_networks(modules: Sequence[nn.Module]) -> GroupedNetwork | None:
    """One :class:`GroupedNetwork` for K networks of one deepsad architecture, or ``None``.

    Parameters
    ----------
    modules : sequence of torch.nn.Module
        K networks with identical structure and settings: deepsad's encoders, decoders
        or autoencoders of them, on one device. Their current weights and buffers are
        copied (the sources are left untouched until :meth:`GroupedNetwork.write_back`).

    Returns
    -------
    GroupedNetwork or None
        ``None`` when any part has no grouped form (a user-supplied module, a layer
        with other settings than deepsad's, models on different devices), so that the
        caller can fall back to vmap. Image networks run in channels_last on CPU (the
        fast layout there, as for one model) and in the default layout elsewhere.
    """
    modules = list(modules)
    if not modules:
        return None
    devices = {t.device for m in modules for t in [*m.parameters(), *m.buffers()]}
    if len(devices) != 1:
        return None
    channels_last = devices.pop().type == "cpu"
    grouping = _Grouping(channels_last=channels_last)
    try:
        body = nn.Sequential(grouping.network(modules))
    except _NotGroupable:
        return None
    image_input = _reads_images(modules[0])
    # each flatten / unflatten between the input and the output switches the layout
    image_output = image_input
    for layer in body.modules():
        if isinstance(layer, (_Flatten, _Unflatten)):
            image_output = isinstance(layer, _Unflatten)
    return GroupedNetwork(body, grouping.links, n_models=len(modules), image_input=image_input,
                          image_output=image_output, channels_last=channels_last and (image_input or image_output))


def _reads_images(module: nn.Module) -> bool:
    """Whether the first layer that cares about the layout takes an image."""
    for layer in module.modules():
        if isinstance(layer, _IMAGE_LAYERS):
            return True
        if isinstance(layer, _FLAT_LAYERS):
            return False
    return False


class _Grouping:
    """Builds grouped layers and records how each grouped tensor maps back to its sources."""

    def __init__(self, *, channels_last: bool) -> None:
        self.channels_last = channels_last
        self.links: list[_Link] = []

    def network(self, modules: list[nn.Module]) -> nn.Module:
        """The grouped form of K corresponding networks, sequences or layers (one per model)."""
        kind = type(modules[0])
        if any(type(m) is not kind for m in modules):
            raise _NotGroupable
        if kind is nn.Sequential:
            return self.sequence(modules)
        if kind in _CHAINED_NETWORKS:
            children = [list(m.named_children()) for m in modules]
            if any([name for name, _ in c] != [name for name, _ in children[0]] for c in children):
                raise _NotGroupable
            return nn.Sequential(*(self.network([c[i][1] for c in children]) for i in range(len(children[0]))))
        if kind is nn.Flatten:
            _same_settings(modules, lambda m: (m.start_dim, m.end_dim))
            if (modules[0].start_dim, modules[0].end_dim) != (1, -1):
                raise _NotGroupable
            return _Flatten()
        if kind is nn.Unflatten:
            _same_settings(modules, lambda m: (m.dim, tuple(m.unflattened_size)))
            if modules[0].dim != 1 or len(modules[0].unflattened_size) != 3:
                raise _NotGroupable
            return _Unflatten(len(modules), tuple(modules[0].unflattened_size))
        raise _NotGroupable

    def sequence(self, sequences: list[nn.Module]) -> nn.Sequential:
        n_layers = len(sequences[0])
        if any(type(s) is not nn.Sequential or len(s) != n_layers for s in sequences):
            raise _NotGroupable
        return nn.Sequential(*(self.layer([s[i] for s in sequences]) for i in range(n_layers)))

    def layer(self, layers: list[nn.Module]) -> nn.Module:
        """The grouped form of K corresponding layers (one per model)."""
        kind = type(layers[0])
        if any(type(layer) is not kind for layer in layers):
            raise _NotGroupable
        if kind in _PER_CHANNEL_LAYERS:
            _same_settings(layers, lambda m: (m.extra_repr(),))
            return copy.deepcopy(layers[0])
        if kind in (nn.Conv2d, nn.ConvTranspose2d, UpsamplingConvTranspose2d):
            return self.convolution(layers)
        if kind in (nn.BatchNorm1d, nn.BatchNorm2d, FastBatchNorm2d, BatchNormLeakyMaxPool2d):
            return self.batchnorm(layers)
        if kind is nn.Linear:
            return self.linear(layers)
        raise _NotGroupable

    def convolution(self, layers: list[nn.Conv2d | nn.ConvTranspose2d]) -> nn.Module:
        first = layers[0]
        _same_settings(layers, lambda m: (m.extra_repr(), m.padding_mode, m.bias is None))
        if first.groups != 1 or first.padding_mode != "zeros":
            raise _NotGroupable
        k_models = len(layers)
        # Conv2d weight (out, in, kh, kw) and ConvTranspose2d weight (in, out, kh, kw) both
        # put the grouped dimension first, so K weights concatenate along dim 0
        if isinstance(first, UpsamplingConvTranspose2d):
            settings = {"scale_factor": first.scale_factor}  # stride, dilation, output padding are fixed
        elif isinstance(first, nn.ConvTranspose2d):
            settings = {"stride": first.stride, "dilation": first.dilation, "output_padding": first.output_padding}
        else:
            settings = {"stride": first.stride, "dilation": first.dilation}
        grouped = type(first)(
            first.in_channels * k_models, first.out_channels * k_models, first.kernel_size,
            padding=first.padding, groups=k_models, bias=first.bias is not None,
            device=first.weight.device, dtype=first.weight.dtype, **settings,
        )
        with torch.no_grad():
            grouped.weight.copy_(torch.cat([layer.weight for layer in layers]))
            if grouped.bias is not None:
                grouped.bias.copy_(torch.cat([layer.bias for layer in layers]))
        if self.channels_last:
            grouped = grouped.to(memory_format=torch.channels_last)
        self.links.append(_Link(grouped.weight, [layer.weight for layer in layers], "cat"))
        if grouped.bias is not None:
            self.links.append(_Link(grouped.bias, [layer.bias for layer in layers], "cat"))
        return grouped

    def batchnorm(self, layers: list[nn.modules.batchnorm._BatchNorm]) -> nn.Module:
        first = layers[0]
        # extra_repr lists every setting: eps, momentum, affine, track_running_stats (and the
        # fused layer's slope and pool)
        _same_settings(layers, lambda m: (m.extra_repr(),))
        if not first.track_running_stats or len({int(m.num_batches_tracked) for m in layers}) != 1:
            raise _NotGroupable
        # the fused layer's activation and pool act per channel: one setting serves all K
        extra = {"negative_slope": first.negative_slope, "pool": first.pool} \
            if isinstance(first, BatchNormLeakyMaxPool2d) else {}
        grouped = type(first)(first.num_features * len(layers), eps=first.eps, momentum=first.momentum,
                              affine=first.affine, device=first.running_mean.device, **extra)
        with torch.no_grad():
            for name in ("running_mean", "running_var", *(("weight", "bias") if first.affine else ())):
                getattr(grouped, name).copy_(torch.cat([getattr(layer, name) for layer in layers]))
                self.links.append(_Link(getattr(grouped, name), [getattr(layer, name) for layer in layers], "cat"))
            grouped.num_batches_tracked.copy_(first.num_batches_tracked)
        self.links.append(_Link(grouped.num_batches_tracked, [layer.num_batches_tracked for layer in layers], "shared"))
        return grouped

    def linear(self, layers: list[nn.Linear]) -> nn.Module:
        has_bias = layers[0].bias is not None
        if any((layer.bias is not None) != has_bias for layer in layers):
            raise _NotGroupable
        weight = torch.stack([layer.weight.detach() for layer in layers])
        bias = torch.stack([layer.bias.detach() for layer in layers]) if has_bias else None
        grouped = _GroupedLinear(weight, bias)
        self.links.append(_Link(grouped.weight, [layer.weight for layer in layers], "stack"))
        if grouped.bias is not None:
            self.links.append(_Link(grouped.bias, [layer.bias for layer in layers], "stack"))
        return grouped


def _same_settings(layers: list[nn.Module], describe: Callable[[nn.Module], tuple[object, ...]]) -> None:
    if len({describe(layer) for layer in layers}) != 1:
        raise _NotGroupable


#: On CPU, image networks whose convolutions all have fewer output channels than this
#: run two at a time (see :func:`preferred_group_size`): the same 16-float vector width
#: below which FastBatchNorm2d takes its own path
NARROW_CONV_CHANNELS = FAST_PATH_MAX_CHANNELS + 1

#: How many narrow image networks one CPU group holds.
NARROW_GROUP_SIZE = 2


def preferred_group_size(network: nn.Module, device: torch.device) -> int | None:
    """How many copies of ``network`` to train as one grouped network; ``None`` means all.

    On CPU: the MNIST-width LeNets (all convolutions narrower than the 16-float vector)
    in pairs (larger groups gain less), wider LeNets one by one (grouping only adds work
    there), MLPs all at once (per-step overhead dominates). On a GPU all at once: one
    small model cannot fill it. The measurements behind this rule are in
    docs/performance.md, "Where the speed layer's numbers come from".
    """
    if device.type != "cpu":
        return None
    convolutions = [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if not convolutions:
        return None
    if all(m.out_channels < NARROW_CONV_CHANNELS for m in convolutions):
        return NARROW_GROUP_SIZE
    return 1
