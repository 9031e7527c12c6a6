"""Nearest-neighbour upsampling followed by a transposed convolution, without the upsampled map.

The LeNet decoders grow their maps with a 2x nearest upsampling followed by a 5x5,
stride-1, "same"-padded transposed convolution. Computed as written, the convolution
runs over the upsampled map, in which every value is repeated 2x2 times: of its 25 taps
per output pixel, only 3x3 distinct input pixels are ever read, so most of the
multiplications are repeats of others.

:class:`UpsamplingConvTranspose2d` computes the same function on the small map: each of
the s*s output phases ``(a, b)`` (the output pixels at ``(s*i + a, s*j + b)``) is a
plain convolution of the *input* with a small kernel whose taps are sums of the original
kernel's taps that land on the same input pixel; all phases run as one convolution with
``s*s`` times the output channels, and :func:`torch.nn.functional.pixel_shuffle`
interleaves them into the full-size map. The parameter is still the transposed
convolution's ``(in, out / groups, k, k)`` weight (the state dict is that of an
``nn.ConvTranspose2d``), and the phase kernels are derived from it on every forward, so
gradients, optimisers and initialisation see the original parameterisation (figures:
docs/performance.md, "Where the speed layer's numbers come from").
:func:`deepsad.models.fused.use_fused_layers` swaps it in for the two stock layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from deepsad.errors import InvalidInputError


def _phase_taps(kernel_size: int, padding: int, scale: int) -> tuple[torch.Tensor, int]:
    """Which original taps each phase's small kernel sums, and the small kernel's padding.

    Returns ``taps`` of shape ``(scale, small, kernel_size)`` with ``taps[a, r, u] = 1``
    when tap ``u`` of the (flipped, i.e. correlation) kernel reads input offset ``r - pad``
    for output phase ``a``, and ``pad``. Output pixel ``s*i + a`` of the upsampled
    correlation reads upsampled pixel ``s*i + a + u - padding``, i.e. input pixel
    ``i + floor((a + u - padding) / s)``.
    """
    # "same" padding (2 * padding == kernel_size - 1) makes the offsets symmetric
    if 2 * padding != kernel_size - 1:
        raise InvalidInputError(
            f"UpsamplingConvTranspose2d needs 'same' padding (2 * padding == kernel_size - 1), "
            f"got kernel_size={kernel_size}, padding={padding}"
        )
    offsets = [[(a + u - padding) // scale for u in range(kernel_size)] for a in range(scale)]
    low = min(min(row) for row in offsets)
    high = max(max(row) for row in offsets)
    taps = torch.zeros(scale, high - low + 1, kernel_size)
    for a, row in enumerate(offsets):
        for u, offset in enumerate(row):
            taps[a, offset - low, u] = 1.0
    return taps, -low


class UpsamplingConvTranspose2d(nn.ConvTranspose2d):
    """``ConvTranspose2d(Upsample(scale_factor, "nearest")(x))``, computed on the small map.

    Same constructor as :class:`torch.nn.ConvTranspose2d` plus ``scale_factor``; only
    stride 1, dilation 1, no output padding, zero padding and "same" padding
    (``2 * padding == kernel_size - 1``) are supported — the decoders' case.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, padding, groups, bias, device, dtype
        As for :class:`torch.nn.ConvTranspose2d`.
    scale_factor : int, default=2
        The nearest-neighbour upsampling factor applied before the convolution.

    Examples
    --------
    >>> import torch
    >>> layer = UpsamplingConvTranspose2d(4, 8, 5, padding=2)
    >>> layer(torch.rand(3, 4, 7, 7)).shape
    torch.Size([3, 8, 14, 14])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        *,
        scale_factor: int = 2,
        groups: int = 1,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, groups=groups, bias=bias,
                         device=device, dtype=dtype)
        if self.kernel_size[0] != self.kernel_size[1] or self.padding[0] != self.padding[1]:
            raise InvalidInputError("UpsamplingConvTranspose2d needs a square kernel and equal padding")
        if int(scale_factor) != scale_factor or scale_factor < 1:
            raise InvalidInputError(f"scale_factor must be a positive integer, got {scale_factor!r}")
        self.scale_factor = int(scale_factor)
        taps, self.phase_padding = _phase_taps(self.kernel_size[0], self.padding[0], self.scale_factor)
        # a constant of the layout, not state: neither a parameter nor a buffer, so that
        # state dicts, stacking (which stacks buffers) and grouping never see it
        self._phase_taps = taps

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale_factor={self.scale_factor}"

    def phase_weight(self) -> torch.Tensor:
        """The one convolution weight of all phases: ``(out * s * s, in / groups, small, small)``.

        Output channel ``o * s * s + a * s + b`` is phase ``(a, b)`` of channel ``o``, the
        order :func:`~torch.nn.functional.pixel_shuffle` expects.
        """
        groups = self.groups
        in_per_group = self.in_channels // groups
        out_per_group = self.out_channels // groups
        k = self.kernel_size[0]
        # the transposed convolution as a correlation: swap in / out within each group, flip
        correlation = (
            self.weight.reshape(groups, in_per_group, out_per_group, k, k)
            .transpose(1, 2)
            .reshape(self.out_channels, in_per_group, k, k)
            .flip(-2, -1)
        )
        if self._phase_taps.device != correlation.device or self._phase_taps.dtype != correlation.dtype:
            self._phase_taps = self._phase_taps.to(device=correlation.device, dtype=correlation.dtype)
        taps = self._phase_taps
        phases = torch.einsum("aru,ocuv,bsv->oabcrs", taps, correlation, taps)
        small = taps.shape[1]
        return phases.reshape(self.out_channels * self.scale_factor**2, in_per_group, small, small)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None:
            raise InvalidInputError("UpsamplingConvTranspose2d does not take output_size")
        bias = None if self.bias is None else self.bias.repeat_interleave(self.scale_factor**2)
        phases = F.conv2d(x, self.phase_weight(), bias, padding=self.phase_padding, groups=self.groups)
        return F.pixel_shuffle(phases, self.scale_factor)
