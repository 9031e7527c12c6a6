"""UpsamplingConvTranspose2d: upsampling + transposed conv computed on the small map."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from deepsad.errors import InvalidInputError
from deepsad.models import UpsamplingConvTranspose2d

# (in, out, kernel, padding, groups, scale, input size): the LeNet decoders' layers and
# other "same" settings, incl. grouped (the stacked trainer's form), odd sizes, scale 3
CASES = [
    (4, 8, 5, 2, 1, 2, 7),
    (8, 1, 5, 2, 1, 2, 14),
    (128, 64, 5, 2, 1, 2, 4),
    (8, 16, 5, 2, 2, 2, 7),
    (3, 5, 3, 1, 1, 3, 4),
    (2, 2, 1, 0, 1, 2, 5),
    (4, 4, 7, 3, 1, 2, 6),
]


def _reference(layer: UpsamplingConvTranspose2d) -> nn.ConvTranspose2d:
    conv = nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding,
                              groups=layer.groups, bias=layer.bias is not None, dtype=layer.weight.dtype)
    conv.load_state_dict(layer.state_dict())
    return conv


@pytest.mark.parametrize(("c_in", "c_out", "kernel", "padding", "groups", "scale", "size"), CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_equals_upsample_then_transposed_conv(c_in, c_out, kernel, padding, groups, scale, size, bias) -> None:
    torch.manual_seed(0)
    layer = UpsamplingConvTranspose2d(c_in, c_out, kernel, padding=padding, groups=groups, scale_factor=scale,
                                      bias=bias).double()
    reference = _reference(layer)
    x = torch.randn(3, c_in, size, size, dtype=torch.float64)
    x_fast, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_fast = layer(x_fast)
    y_ref = reference(F.interpolate(x_ref, scale_factor=scale, mode="nearest"))
    assert y_fast.shape == (3, c_out, size * scale, size * scale)
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-10, atol=1e-10)
    upstream = torch.randn_like(y_ref)
    fast_grads = torch.autograd.grad(y_fast, [x_fast, *layer.parameters()], upstream)
    ref_grads = torch.autograd.grad(y_ref, [x_ref, *reference.parameters()], upstream)
    for fast, ref in zip(fast_grads, ref_grads):
        torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)


def test_channels_last_input_gives_the_same_numbers_in_channels_last() -> None:
    torch.manual_seed(0)
    layer = UpsamplingConvTranspose2d(4, 8, 5, padding=2, bias=False)
    x = torch.randn(5, 4, 7, 7)
    y = layer(x)
    y_cl = layer.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y_cl, y, rtol=1e-5, atol=1e-6)


def test_state_dict_is_that_of_a_transposed_conv() -> None:
    layer = UpsamplingConvTranspose2d(4, 8, 5, padding=2, bias=True)
    stock = nn.ConvTranspose2d(4, 8, 5, padding=2)
    assert {k: v.shape for k, v in layer.state_dict().items()} == {k: v.shape for k, v in stock.state_dict().items()}
    assert "scale_factor=2" in repr(layer)


def test_vmap_over_stacked_copies_matches_each_copy() -> None:
    """The stacked trainer's vmap strategy runs the layer under functional_call + vmap."""
    torch.manual_seed(0)
    layers = [UpsamplingConvTranspose2d(4, 2, 5, padding=2, bias=True) for _ in range(3)]
    params, buffers = stack_module_state(layers)
    x = torch.randn(3, 6, 4, 7, 7)

    def run(p, b, xi):
        return functional_call(layers[0], (p, b), (xi,))

    stacked = vmap(run)(params, buffers, x)
    for k, layer in enumerate(layers):
        torch.testing.assert_close(stacked[k], layer(x[k]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_size": 5, "padding": 1}, "same' padding"),
        ({"kernel_size": 4, "padding": 2}, "same' padding"),
        ({"kernel_size": (5, 3), "padding": 2}, "square kernel"),
        ({"kernel_size": 5, "padding": 2, "scale_factor": 0}, "scale_factor"),
        ({"kernel_size": 5, "padding": 2, "scale_factor": 1.5}, "scale_factor"),
    ],
)
def test_unsupported_settings_are_refused(kwargs, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        UpsamplingConvTranspose2d(4, 8, **kwargs)


def test_output_size_argument_is_refused() -> None:
    layer = UpsamplingConvTranspose2d(4, 8, 5, padding=2)
    with pytest.raises(InvalidInputError, match="output_size"):
        layer(torch.randn(1, 4, 3, 3), output_size=[6, 6])
