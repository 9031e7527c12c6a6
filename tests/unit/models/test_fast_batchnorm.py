"""FastBatchNorm2d: the native BatchNorm2d's numbers, from its own kernel where that is faster."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from deepsad.models import LENET_ARCHITECTURES, LeNetDecoder, LeNetEncoder
from deepsad.models.batchnorm import FastBatchNorm2d, uses_fast_path
from deepsad.models.stock import to_stock_layers


def _channels_last(shape: tuple[int, ...], seed: int, *, offset: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator) * 3.0 + offset
    return x.contiguous(memory_format=torch.channels_last)


def _pair(num_features: int, **kwargs: object) -> tuple[nn.BatchNorm2d, FastBatchNorm2d]:
    native = nn.BatchNorm2d(num_features, **kwargs)
    fast = FastBatchNorm2d(num_features, **kwargs)
    fast.load_state_dict(native.state_dict())
    return native, fast


@pytest.mark.parametrize("num_features", [1, 4, 8])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_training_steps_match_native_outputs_gradients_and_running_statistics(
    num_features: int, affine: bool, momentum: float | None
) -> None:
    native, fast = _pair(num_features, eps=1e-4, affine=affine, momentum=momentum)
    if affine:
        with torch.no_grad():
            for module in (native, fast):
                module.weight.copy_(torch.linspace(0.5, 2.0, num_features))
                module.bias.copy_(torch.linspace(-1.0, 1.0, num_features))
    for step in range(3):
        # a large offset: a one-pass variance would lose digits here
        x = _channels_last((6, num_features, 7, 5), seed=step, offset=50.0 * step)
        upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(100 + step))
        assert uses_fast_path(x, num_features)
        x_native = x.detach().clone().requires_grad_()
        x_fast = x.detach().clone().requires_grad_()
        y_native, y_fast = native(x_native), fast(x_fast)
        (y_native * upstream).sum().backward()
        (y_fast * upstream).sum().backward()
        # both round differently; neither is more than float32 noise away from float64
        torch.testing.assert_close(y_fast, y_native, rtol=1e-4, atol=5e-5)
        exact = nn.functional.batch_norm(x.double(), None, None, training=True, eps=1e-4)
        if affine:
            weight, bias = native.weight.detach().double(), native.bias.detach().double()
            exact = exact * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
        error_fast = float((y_fast.detach().double() - exact).abs().max())
        error_native = float((y_native.detach().double() - exact).abs().max())
        assert error_fast <= 2 * error_native + 1e-6
        torch.testing.assert_close(x_fast.grad, x_native.grad, rtol=1e-4, atol=5e-5)
        if affine:
            torch.testing.assert_close(fast.weight.grad, native.weight.grad, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(fast.bias.grad, native.bias.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.running_mean, native.running_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.running_var, native.running_var, rtol=1e-5, atol=1e-5)
    assert int(fast.num_batches_tracked) == int(native.num_batches_tracked) == 3
    fast.eval()
    native.eval()
    x = _channels_last((4, num_features, 5, 5), seed=9)
    torch.testing.assert_close(fast(x), native(x))


def test_fast_path_only_where_the_native_kernel_is_slow() -> None:
    narrow = _channels_last((4, 8, 6, 6), seed=0)
    assert uses_fast_path(narrow, 8)
    assert not uses_fast_path(narrow.contiguous(), 8)  # NCHW: native is faster
    assert not uses_fast_path(_channels_last((4, 16, 6, 6), seed=0), 16)  # wide: native is faster
    assert not uses_fast_path(narrow.to(torch.float64), 8)
    assert not uses_fast_path(_channels_last((1, 8, 1, 1), seed=0), 8)  # native's one-value error


def test_one_value_per_channel_raises_the_native_error() -> None:
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        FastBatchNorm2d(8)(_channels_last((1, 8, 1, 1), seed=0))


def test_state_dict_is_interchangeable_with_native_batchnorm() -> None:
    native, fast = _pair(8, affine=False)
    fast(_channels_last((5, 8, 4, 4), seed=1))
    assert set(fast.state_dict()) == set(native.state_dict())
    native.load_state_dict(fast.state_dict())
    torch.testing.assert_close(native.running_mean, fast.running_mean)


def test_batches_under_vmap_like_the_native_module() -> None:
    """The stacked trainer maps the loss over K models' weights and buffers with vmap."""
    k = 3
    modules = [FastBatchNorm2d(4, eps=1e-4, affine=False) for _ in range(k)]
    natives = [nn.BatchNorm2d(4, eps=1e-4, affine=False) for _ in range(k)]
    x = torch.stack([_channels_last((6, 4, 5, 5), seed=s) for s in range(k)])  # (k, n, c, h, w)

    def stacked_sum(module: nn.Module, group: list[nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        params, buffers = stack_module_state(group)
        x_leaf = x.clone().requires_grad_()

        def one(buffer_values: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
            assert uses_fast_path(xi, 4)  # strides are readable per model under vmap
            return (functional_call(module, buffer_values, (xi,)) ** 3).sum()

        vmap(one)(buffers, x_leaf).sum().backward()
        assert x_leaf.grad is not None
        return x_leaf.grad, buffers

    grad_fast, buffers_fast = stacked_sum(modules[0], modules)
    grad_native, buffers_native = stacked_sum(natives[0], natives)
    torch.testing.assert_close(grad_fast, grad_native, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(buffers_fast["running_var"], buffers_native["running_var"])
    torch.testing.assert_close(buffers_fast["running_mean"], buffers_native["running_mean"])


def test_lenet_autoencoder_trains_as_with_stock_layers() -> None:
    """Three Adam steps of the MNIST LeNet autoencoder: same losses, weights and running
    statistics as the same network built from stock torch layers (native BatchNorm2d,
    separate leaky ReLU and pool, upsampling before each transposed conv)."""
    variant = "mnist"

    def build(stock: bool) -> nn.Module:
        torch.manual_seed(0)
        model = nn.Sequential(LeNetEncoder(variant), LeNetDecoder(variant))
        if stock:
            model = to_stock_layers(model)
        return model.to(memory_format=torch.channels_last)

    shape = LENET_ARCHITECTURES[variant].input_shape
    x = torch.rand(64, *shape, generator=torch.Generator().manual_seed(3)).contiguous(
        memory_format=torch.channels_last
    )
    results = []
    for stock in (True, False):
        model = build(stock)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = []
        for _ in range(3):
            optimizer.zero_grad()
            loss = ((model(x) - x) ** 2).sum(dim=(1, 2, 3)).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        # names differ (the stock blocks are nested), the order of tensors does not
        results.append((losses, [t.detach() for t in [*model.parameters(), *model.buffers()]]))
    (losses_stock, state_stock), (losses_fast, state_fast) = results
    assert len(state_fast) == len(state_stock)
    assert losses_fast == pytest.approx(losses_stock, rel=1e-5)
    for i, (fast, stock) in enumerate(zip(state_fast, state_stock)):
        torch.testing.assert_close(fast, stock, rtol=1e-4, atol=1e-5, msg=f"tensor {i}")


@pytest.mark.parametrize("variant", sorted(LENET_ARCHITECTURES))
def test_lenet_gradients_match_stock_layers(variant: str) -> None:
    """Every LeNet variant, channels_last: encoder outputs and the gradients of a Deep SAD
    style loss equal those of the stock-layer network to float32 rounding. (Adam steps
    and the wider autoencoders amplify rounding too much for a tight multi-step check:
    a 3e-6 change of the Fashion-MNIST code moves its decoder's gradient by 0.2 %.)"""
    torch.manual_seed(0)
    encoder = LeNetEncoder(variant).to(memory_format=torch.channels_last)
    stock = to_stock_layers(encoder)
    x = torch.rand(48, *LENET_ARCHITECTURES[variant].input_shape,
                   generator=torch.Generator().manual_seed(1)).contiguous(memory_format=torch.channels_last)
    centre = torch.randn(encoder.rep_dim, generator=torch.Generator().manual_seed(2))
    outputs = []
    for network in (encoder, stock):
        z = network(x)
        ((z - centre) ** 2).sum(dim=1).mean().backward()
        outputs.append(z.detach())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)
    for i, (fast, reference) in enumerate(zip(encoder.parameters(), stock.parameters())):
        error = float((fast.grad - reference.grad).norm() / reference.grad.norm())
        assert error < 1e-4, f"parameter {i}: relative gradient difference {error:.1e}"


def test_bfloat16_inputs_are_normalised_in_float32_like_native() -> None:
    """Under bfloat16 autocast the convolutions hand BatchNorm bfloat16 maps."""
    native, fast = _pair(8, eps=1e-4, affine=False)
    x = _channels_last((6, 8, 7, 5), seed=4, offset=5.0).to(torch.bfloat16)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    assert uses_fast_path(x, 8)
    x_native, x_fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_native, y_fast = native(x_native), fast(x_fast)
    (y_native * upstream).sum().backward()
    (y_fast * upstream).sum().backward()
    assert y_fast.dtype == y_native.dtype == torch.bfloat16
    assert x_fast.grad is not None and x_fast.grad.dtype == torch.bfloat16
    # one bfloat16 rounding step apart at most (8 bits of mantissa)
    torch.testing.assert_close(y_fast.float(), y_native.float(), rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(x_fast.grad.float(), x_native.grad.float(), rtol=3e-2, atol=3e-2)
    torch.testing.assert_close(fast.running_mean, native.running_mean, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(fast.running_var, native.running_var, rtol=1e-3, atol=1e-3)
