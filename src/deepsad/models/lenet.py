"""LeNet-type convolutional encoders and their mirrored decoders (paper, Appendix D).

All three variants share one shape: conv modules (5x5 conv, padding 2, no bias ->
BatchNorm2d without affine -> leaky ReLU -> 2x2 max-pool), a flatten, optional dense
layers, and a final bias-free Linear to the representation. They differ only in the
numbers in :data:`LENET_ARCHITECTURES`.

The networks are made of stock torch layers, so their state dicts read as any PyTorch
user expects; built with ``fused=True`` (or after
:func:`~deepsad.models.fused.use_fused_layers`, which the detectors call on the
networks they train) they compute some layer runs in the equivalent, faster forms of
:mod:`deepsad.models.fused`, under the same parameter and buffer names. They work in
either memory format; channels_last is faster on CPU (DESIGN §6), so callers may use
``model.to(memory_format=torch.channels_last)`` with channels_last inputs and get the
same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepsad.errors import InvalidInputError
from deepsad.models.blocks import dense_block, output_activation_module
from deepsad.models.fused import use_fused_layers
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

    ``features`` holds per conv module ``Conv2d, BatchNorm2d, LeakyReLU, MaxPool2d``
    (stage t at indices ``4t .. 4t + 3``), ``flatten`` reshapes to ``(n, flat_size)``
    and ``head`` holds the dense layers and the final Linear.

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
    fused : bool, default=False
        Compute with the fused layers of :mod:`deepsad.models.fused` (same function,
        same state dict); ``False`` keeps the stock layers. A detector trains a copy of
        a LeNet passed as ``network`` in the fused form either way.

    Attributes
    ----------
    rep_dim : int
        Representation size.
    input_shape : tuple of int
        The ``(c, h, w)`` this encoder accepts.
    """

    def __init__(
        self,
        variant: str,
        rep_dim: int | None = None,
        *,
        negative_slope: float = 0.1,
        bn_eps: float = 1e-4,
        fused: bool = False,
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
                nn.BatchNorm2d(out_channels, eps=bn_eps, affine=False),
                nn.LeakyReLU(negative_slope),
                nn.MaxPool2d(2),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*conv_layers)
        # flatten(1) copies a channels_last map, so the order is always (c, h, w) and the
        # Linear weights mean the same in both memory formats
        self.flatten = nn.Flatten()

        head: list[nn.Module] = []
        width = arch.flat_size
        for dense in arch.dense_sizes:
            head += dense_block(width, dense, negative_slope=negative_slope, bn_eps=bn_eps)
            width = dense
        head.append(nn.Linear(width, self.rep_dim, bias=False))
        self.head = nn.Sequential(*head)
        if fused:
            use_fused_layers(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (n, c, h, w) -> (n, c_last, h / 2^k, w / 2^k)
        x = self.flatten(x)  # (n, flat_size)
        return self.head(x)  # (n, rep_dim)


class LeNetDecoder(nn.Module):
    """The mirror of :class:`LeNetEncoder`: ``(n, rep_dim) -> (n, c, h, w)``.

    ``head`` holds the dense layers reversed (each Linear -> BN1d -> leaky ReLU, no bias)
    up to the flat size, ``unflatten`` reshapes to the last feature map, and ``deconvs``
    holds per conv module, in reverse, ``Upsample`` (2x nearest, replacing the max-pool),
    ``ConvTranspose2d`` (5x5, replacing the conv), ``BatchNorm2d``, ``LeakyReLU`` (stage t
    at indices ``4t .. 4t + 3``); the last stage's transposed conv has a bias and is
    followed by the output activation instead.

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
    fused : bool, default=False
        As in the encoder.
    """

    def __init__(
        self,
        variant: str,
        rep_dim: int | None = None,
        *,
        negative_slope: float = 0.1,
        bn_eps: float = 1e-4,
        output_activation: str = "sigmoid",
        fused: bool = False,
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
        self.unflatten = nn.Unflatten(1, self.feature_shape)

        # channels run backwards: e.g. mnist 4 -> 8 -> 1
        channels = [*reversed(arch.channels), arch.input_shape[0]]
        layers: list[nn.Module] = []
        for i, (in_channels, out_channels) in enumerate(zip(channels[:-1], channels[1:])):
            last = i == len(channels) - 2
            # a stride-1, padding-2 transposed conv keeps h and w: only the upsampling grows them
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.ConvTranspose2d(in_channels, out_channels, KERNEL_SIZE, padding=PADDING, bias=last),
            ]
            if last:
                layers.append(output_activation_module(output_activation))
            else:
                layers += [nn.BatchNorm2d(out_channels, eps=bn_eps, affine=False), nn.LeakyReLU(negative_slope)]
        self.deconvs = nn.Sequential(*layers)
        if fused:
            use_fused_layers(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.head(z)  # (n, rep_dim) -> (n, flat_size)
        x = self.unflatten(x)  # (n, c_last, h / 2^k, w / 2^k)
        return self.deconvs(x)  # (n, c, h, w)


def with_fused_lenets(module: nn.Module) -> nn.Module:
    """``module`` with every deepsad LeNet in it computing in its fused form, in place.

    The one place where the detectors' networks get :func:`deepsad.models.use_fused_layers`:
    every network a detector builds, trains, scores with or loads passes through here.
    Parameter and buffer names stay the canonical ones, so state dicts and saved files
    do not depend on it.

    Parameters
    ----------
    module : torch.nn.Module
        A network the detector owns (built from a spec, or its copy of a user's module).
        Only :class:`~deepsad.models.LeNetEncoder` / :class:`~deepsad.models.LeNetDecoder`
        parts are swapped: a user's other modules train with the layers they were given.

    Returns
    -------
    torch.nn.Module
        ``module`` itself.
    """
    # the fused layers are the LeNets' CPU speed layer (docs/performance.md); they are
    # exact replacements up to float reassociation, so the detectors use them for every
    # fit and every score, which keeps fitted and loaded models' scores identical
    for lenet in [m for m in module.modules() if isinstance(m, (LeNetEncoder, LeNetDecoder))]:
        use_fused_layers(lenet)
    return module
