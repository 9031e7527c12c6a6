"""BatchNormLeakyMaxPool2d: BN -> leaky ReLU -> max-pool as one layer that pools first."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from deepsad.errors import InvalidInputError
from deepsad.models import BatchNormLeakyMaxPool2d
from deepsad.models.pooled_batchnorm import _PoolFirstBatchNormLeaky, uses_pool_first_path

SLOPE = 0.1


def _channels_last(shape: tuple[int, ...], seed: int, *, offset: float = 0.0,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2.0 + offset
    return x.contiguous(memory_format=torch.channels_last)


def _pair(channels: int, **kwargs: object) -> tuple[BatchNormLeakyMaxPool2d, nn.Sequential]:
    fused = BatchNormLeakyMaxPool2d(channels, eps=1e-4, negative_slope=SLOPE, **kwargs)
    stock = nn.Sequential(nn.BatchNorm2d(channels, eps=1e-4, affine=False, **kwargs), nn.LeakyReLU(SLOPE),
                          nn.MaxPool2d(2))
    return fused, stock


@pytest.mark.parametrize("shape", [(6, 8, 12, 12), (5, 4, 7, 9), (4, 15, 6, 6), (3, 16, 8, 8), (2, 64, 4, 4)])
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_training_step_matches_the_three_stock_layers(shape, layout, momentum) -> None:
    """Outputs, input gradients and running statistics over two steps, on the pool-first
    path (narrow channels_last) and on the native one (wide or NCHW); odd sizes drop
    the last row / column as MaxPool2d does."""
    fused, stock = _pair(shape[1], momentum=momentum)
    for step in range(2):
        x = _channels_last(shape, seed=step, offset=3.0)
        if layout == "contiguous":
            x = x.contiguous()
        assert uses_pool_first_path(x, shape[1]) == (layout == "channels_last" and shape[1] < 16)
        x_fused, x_stock = x.clone().requires_grad_(), x.clone().requires_grad_()
        y_fused, y_stock = fused(x_fused), stock(x_stock)
        torch.testing.assert_close(y_fused, y_stock, rtol=1e-5, atol=1e-5)
        upstream = torch.randn(y_stock.shape, generator=torch.Generator().manual_seed(10 + step))
        y_fused.backward(upstream)
        y_stock.backward(upstream)
        torch.testing.assert_close(x_fused.grad, x_stock.grad, rtol=1e-4, atol=1e-5)
    bn = stock[0]
    torch.testing.assert_close(fused.running_mean, bn.running_mean)
    torch.testing.assert_close(fused.running_var, bn.running_var)
    assert int(fused.num_batches_tracked) == int(bn.num_batches_tracked) == 2


def test_gradient_is_exact_in_float64() -> None:
    """torch.autograd.gradcheck of the pool-first Function (channels_last and NCHW, odd width)."""
    for x in (_channels_last((3, 4, 6, 5), seed=0, dtype=torch.float64),
              torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))):
        x.requires_grad_()
        assert torch.autograd.gradcheck(lambda t: _PoolFirstBatchNormLeaky.apply(t, 1e-4, SLOPE, 2)[0], (x,))


def test_evaluation_uses_running_statistics_like_stock() -> None:
    fused, stock = _pair(8)
    for step in range(3):  # some running statistics to evaluate with
        x = _channels_last((4, 8, 6, 6), seed=step, offset=1.0)
        fused(x)
        stock(x)
    fused.eval()
    stock.eval()
    x = _channels_last((4, 8, 6, 6), seed=9, offset=1.0)
    torch.testing.assert_close(fused(x), stock(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused(x.contiguous()), stock(x.contiguous()), rtol=1e-5, atol=1e-6)


def test_without_running_statistics_batch_statistics_are_used_in_evaluation() -> None:
    fused, stock = _pair(8, track_running_stats=False)
    fused.eval()
    stock.eval()
    x = _channels_last((4, 8, 6, 6), seed=3)
    torch.testing.assert_close(fused(x), stock(x), rtol=1e-5, atol=1e-5)


def test_bfloat16_input_gives_bfloat16_output_close_to_float32() -> None:
    """Under autocast the convolutions hand the layer bfloat16 maps; statistics stay float32."""
    fused, _ = _pair(8)
    x = _channels_last((6, 8, 10, 10), seed=4, offset=5.0)
    x16 = x.to(torch.bfloat16).requires_grad_()
    assert uses_pool_first_path(x16, 8)
    y16 = fused(x16)
    assert y16.dtype == torch.bfloat16
    y32 = BatchNormLeakyMaxPool2d(8, eps=1e-4, negative_slope=SLOPE)(x16.detach().float())
    torch.testing.assert_close(y16.float(), y32, rtol=2e-2, atol=2e-2)
    y16.float().sum().backward()
    assert x16.grad is not None and x16.grad.dtype == torch.bfloat16


def test_vmap_over_stacked_copies_matches_each_copy() -> None:
    """The stacked trainer's vmap strategy: per-model statistics, per-sample strides readable."""
    k = 3
    layers = [BatchNormLeakyMaxPool2d(4, eps=1e-4, negative_slope=SLOPE) for _ in range(k)]
    references = [_pair(4)[1] for _ in range(k)]
    params, buffers = stack_module_state(layers)
    x = torch.stack([_channels_last((5, 4, 6, 6), seed=i, offset=float(i)) for i in range(k)])

    def loss(p, b, xi):
        return functional_call(layers[0], (p, b), (xi,)).pow(2).sum()

    x_leaf = x.clone().requires_grad_()
    vmap(loss, in_dims=(0, 0, 0))(params, buffers, x_leaf).sum().backward()
    for i in range(k):
        xi = x[i].clone().requires_grad_()
        references[i](xi).pow(2).sum().backward()
        torch.testing.assert_close(x_leaf.grad[i], xi.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(buffers["running_mean"][i], references[i][0].running_mean)
        torch.testing.assert_close(buffers["running_var"][i], references[i][0].running_var)


def test_affine_form_and_negative_slopes_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="affine"):
        BatchNormLeakyMaxPool2d(8, affine=True)
    for slope in (-0.1, float("nan")):
        with pytest.raises(InvalidInputError, match="negative_slope"):
            BatchNormLeakyMaxPool2d(8, negative_slope=slope)


def test_relu_slope_zero_matches_stock() -> None:
    """Slope 0 (a ReLU) is non-decreasing: ties among clipped values carry no gradient either way."""
    fused = BatchNormLeakyMaxPool2d(8, eps=1e-4, negative_slope=0.0)
    stock = nn.Sequential(nn.BatchNorm2d(8, eps=1e-4, affine=False), nn.ReLU(), nn.MaxPool2d(2))
    x = _channels_last((4, 8, 6, 6), seed=5)
    x_fused, x_stock = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_fused, y_stock = fused(x_fused), stock(x_stock)
    torch.testing.assert_close(y_fused, y_stock, rtol=1e-5, atol=1e-5)
    upstream = torch.randn(y_stock.shape, generator=torch.Generator().manual_seed(6))
    y_fused.backward(upstream)
    y_stock.backward(upstream)
    torch.testing.assert_close(x_fused.grad, x_stock.grad, rtol=1e-4, atol=1e-5)


def test_single_value_per_channel_raises_like_native() -> None:
    with pytest.raises(ValueError):
        BatchNormLeakyMaxPool2d(8)(_channels_last((1, 8, 1, 1), seed=0))
