"""LeNet-type convolutional encoders and their mirrored decoders (paper, Appendix D).

All three variants share one shape: conv modules (5x5 conv, padding 2, no bias ->
BatchNorm2d without affine -> leaky ReLU -> 2x2 max-pool), a flatten, optional dense
layers, and a final bias-free Linear to the representation. They differ only in the
numbers in :data:`LENET_ARCHITECTURES`.

The modules work in either memory format; channels_last is faster on CPU (DESIGN §6),
so callers may use ``model.to(memory_format=torch.channels_last)`` with channels_last
inputs and get the same numbers. Some layer sequences are computed in equivalent,
cheaper forms: each conv module's BN -> leaky ReLU -> max-pool is one
:class:`~deepsad.models.pooled_batchnorm.BatchNormLeakyMaxPool2d` (which pools first),
each decoder stage's upsampling + transposed conv one
:class:`~deepsad.models.resize_conv.UpsamplingConvTranspose2d` (which convolves the small
map), and the decoder's BatchNorm is :class:`~deepsad.models.batchnorm.FastBatchNorm2d`.
:func:`~deepsad.models.stock.to_stock_layers` rebuilds a network from stock torch layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepsad.errors import InvalidInputError
from deepsad.models.batchnorm import FastBatchNorm2d
from deepsad.models.blocks import dense_block, output_activation_module
from deepsad.models.pooled_batchnorm import BatchNormLeakyMaxPool2d
from deepsad.models.resize_conv import UpsamplingConvTranspose2d
from deepsad.models.specs import LENET_DEFAULT_REP_DIM

KERNEL_SIZE = 5
PADDING = 2  # keeps h and w through every 5x5 conv; only pooling / upsampling changes them


@dataclass(frozen=True)
class LeNetArchitecture:
    """The numbers that define one LeNet variant.

    Attributes
    ----------
    input_shape : tuple of int
        ``(c, h, w)`` of one input image.
    channels : tuple of int
        Output channels of each conv module.
    dense_sizes : tuple of int
        Widths of the dense layers between the flatten and the final Linear.
    """

    input_shape: tuple[int, int, int]
    channels: tuple[int, ...]
    dense_sizes: tuple[int, ...] = ()

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """``(c, h, w)`` after the last pool: each pool halves h and w."""
        _, h, w = self.input_shape
        scale = 2 ** len(self.channels)
        return (self.channels[-1], h // scale, w // scale)

    @property
    def flat_size(self) -> int:
        """Number of features after the flatten, i.e. the first dense layer's input."""
        c, h, w = self.feature_shape
        return c * h * w


#: Appendix D; Fashion-MNIST as in DESIGN §3 / the reference code (dense 128 with BN, then rep 64).
LENET_ARCHITECTURES: dict[str, LeNetArchitecture] = {
    "mnist": LeNetArchitecture(input_shape=(1, 28, 28), channels=(8, 4)),
    "fmnist": LeNetArchitecture(input_shape=(1, 28, 28), channels=(16, 32), dense_sizes=(128,)),
    "cifar10": LeNetArchitecture(input_shape=(3, 32, 32), channels=(32, 64, 128)),
}


def _architecture(variant: str) -> LeNetArchitecture:
    try:
        return LENET_ARCHITECTURES[variant]
    except KeyError:
        raise InvalidInputError(
            f"LeNet variant must be one of {sorted(LENET_ARCHITECTURES)}, got {variant!r}"
        ) from None


class LeNetEncoder(nn.Module):
    """phi for images: ``(n, c, h, w) -> (n, rep_dim)``.

    Each conv module is a 5x5 conv and one :class:`~deepsad.models.pooled_batchnorm.BatchNormLeakyMaxPool2d`
    (BN, leaky ReLU and 2x2 max-pool). State dicts of the earlier layout, with separate
    BN / leaky ReLU / pool layers (deepsad 0.1.0 model files), load unchanged: their
    keys are renumbered on load.

    Parameters
    ----------
    variant : {"mnist", "fmnist", "cifar10"}
        Which architecture (see :data:`LENET_ARCHITECTURES`).
    rep_dim : int or None, default=None
        Representation size; ``None`` means the paper's size for the variant.
    negative_slope : float, default=0.1
        Leaky ReLU slope.
    bn_eps : float, default=1e-4
        BatchNorm epsilon.

    Attributes
    ----------
    rep_dim : int
        Representation size.
    input_shape : tuple of int
        The ``(c, h, w)`` this encoder accepts.
    """

    def __init__(
        self, variant: str, rep_dim: int | None = None, *, negative_slope: float = 0.1, bn_eps: float = 1e-4
    ) -> None:
        super().__init__()
        arch = _architecture(variant)
        self.variant = variant
        self.input_shape = arch.input_shape
        self.rep_dim = int(rep_dim) if rep_dim is not None else LENET_DEFAULT_REP_DIM[variant]

        conv_layers: list[nn.Module] = []
        in_channels = arch.input_shape[0]
        for out_channels in arch.channels:
            conv_layers += [
                nn.Conv2d(in_channels, out_channels, KERNEL_SIZE, padding=PADDING, bias=False),
                # BN -> leaky ReLU -> 2x2 max-pool in one layer, which pools first where
                # that is faster (see deepsad.models.pooled_batchnorm)
                BatchNormLeakyMaxPool2d(out_channels, eps=bn_eps, negative_slope=negative_slope, pool=2),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*conv_layers)
        self.register_load_state_dict_pre_hook(_renumber_separate_encoder_layers)

        head: list[nn.Module] = []
        width = arch.flat_size
        for dense in arch.dense_sizes:
            head += dense_block(width, dense, negative_slope=negative_slope, bn_eps=bn_eps)
            width = dense
        head.append(nn.Linear(width, self.rep_dim, bias=False))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (n, c, h, w) -> (n, c_last, h / 2^k, w / 2^k)
        # flatten(1) copies when x is channels_last, so the order is always (c, h, w)
        # and the Linear weights mean the same in both memory formats
        x = x.flatten(1)  # (n, flat_size)
        return self.head(x)  # (n, rep_dim)


class LeNetDecoder(nn.Module):
    """The mirror of :class:`LeNetEncoder`: ``(n, rep_dim) -> (n, c, h, w)``.

    Dense layers reversed (each Linear -> BN1d -> leaky ReLU, no bias) up to the flat
    size, a reshape to the last feature map, then per conv module, in reverse: 2x
    nearest upsampling (replacing the max-pool) and a 5x5 transposed convolution
    (replacing the conv), both in one :class:`~deepsad.models.resize_conv.UpsamplingConvTranspose2d`,
    with BN2d and leaky ReLU, except after the last one, which has a bias and the
    output activation instead.

    State dicts of the earlier layout, with a separate ``nn.Upsample`` before each
    transposed convolution (deepsad 0.1.0 model files), load unchanged: their keys are
    renumbered on load.

    Parameters
    ----------
    variant : {"mnist", "fmnist", "cifar10"}
        Architecture to mirror.
    rep_dim : int or None, default=None
        Representation size; ``None`` means the paper's size for the variant.
    negative_slope, bn_eps : float
        As in the encoder.
    output_activation : {"sigmoid", "identity"}, default="sigmoid"
        ``"sigmoid"`` for pixels in [0, 1], ``"identity"`` for standardized images.
    """

    def __init__(
        self,
        variant: str,
        rep_dim: int | None = None,
        *,
        negative_slope: float = 0.1,
        bn_eps: float = 1e-4,
        output_activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        arch = _architecture(variant)
        self.variant = variant
        self.output_shape = arch.input_shape
        self.rep_dim = int(rep_dim) if rep_dim is not None else LENET_DEFAULT_REP_DIM[variant]
        self.feature_shape = arch.feature_shape

        head: list[nn.Module] = []
        widths = [self.rep_dim, *reversed(arch.dense_sizes), arch.flat_size]
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            head += dense_block(width_in, width_out, negative_slope=negative_slope, bn_eps=bn_eps)
        self.head = nn.Sequential(*head)

        # channels run backwards: e.g. mnist 4 -> 8 -> 1
        channels = [*reversed(arch.channels), arch.input_shape[0]]
        layers: list[nn.Module] = []
        for i, (in_channels, out_channels) in enumerate(zip(channels[:-1], channels[1:])):
            last = i == len(channels) - 2
            # 2x nearest upsampling + a stride-1, padding-2 transposed conv (which keeps
            # h and w), computed on the small map: the same function with ~1/3 of the
            # multiplications (see deepsad.models.resize_conv)
            layers.append(UpsamplingConvTranspose2d(in_channels, out_channels, KERNEL_SIZE, padding=PADDING,
                                                    scale_factor=2, bias=last))
            if last:
                layers.append(output_activation_module(output_activation))
            else:
                layers += [FastBatchNorm2d(out_channels, eps=bn_eps, affine=False), nn.LeakyReLU(negative_slope)]
        self.deconvs = nn.Sequential(*layers)
        self.register_load_state_dict_pre_hook(_renumber_separate_decoder_layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.head(z)  # (n, rep_dim) -> (n, flat_size)
        x = x.unflatten(1, self.feature_shape)  # (n, c_last, h / 2^k, w / 2^k)
        return self.deconvs(x)  # (n, c, h, w)


def _renumber_separate_encoder_layers(module: nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
    """Map a state dict of the encoder layout with separate BN / leaky ReLU / pool layers onto this one.

    Old stage ``features.{4t .. 4t + 3}`` = conv, BN, leaky ReLU, pool; now ``features.{2t, 2t + 1}``
    = conv, BN with leaky ReLU and pool. An old state dict has a weight at
    ``features.4`` (its second conv) but none at ``features.2`` (a parameter-free layer there).
    """
    if f"{prefix}features.4.weight" in state_dict and f"{prefix}features.2.weight" not in state_dict:
        _renumber_stages(state_dict, f"{prefix}features.", old_stage_layers=4, new_stage_layers=2,
                         new_position={0: 0, 1: 1})


def _renumber_separate_decoder_layers(module: nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
    """Map a state dict of the decoder layout with separate ``nn.Upsample`` layers onto this one.

    Old stage ``deconvs.{4t .. 4t + 3}`` = upsample, transposed conv, BN, leaky ReLU; now
    ``deconvs.{3t .. 3t + 2}`` = upsampling transposed conv, BN, leaky ReLU. An old state
    dict has a weight at ``deconvs.1``, a parameter-free BatchNorm now.
    """
    if f"{prefix}deconvs.1.weight" in state_dict:
        _renumber_stages(state_dict, f"{prefix}deconvs.", old_stage_layers=4, new_stage_layers=3,
                         new_position={1: 0, 2: 1})


def _renumber_stages(state_dict: dict, head: str, *, old_stage_layers: int, new_stage_layers: int,
                     new_position: dict[int, int]) -> None:
    """Rename ``{head}{i}.*`` keys in place: old layer i of a stage moves to its new position.

    deepsad 0.1.0 model files hold the older layouts; their layers with state are the
    ones in ``new_position`` (the others had no parameters or buffers).
    """
    renumbered = {}
    for key in [k for k in state_dict if k.startswith(head)]:
        index, _, rest = key[len(head):].partition(".")
        if not index.isdigit() or int(index) % old_stage_layers not in new_position:
            continue  # not a layer of the old layout: load_state_dict reports it as unexpected
        stage, position = divmod(int(index), old_stage_layers)
        renumbered[f"{head}{stage * new_stage_layers + new_position[position]}.{rest}"] = state_dict.pop(key)
    # inserted only after every old key is gone: an old and a new name may coincide
    state_dict.update(renumbered)
