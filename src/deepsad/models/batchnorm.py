"""BatchNorm2d that trains fast on channels_last CPU tensors with few channels.

torch's CPU kernels for BatchNorm2d handle a channels_last input whose channel count is
below the vector width (the MNIST LeNet's 8 and 4 channels) with a slow path, which the
same statistics written as plain reductions and elementwise products beat. From 16
channels on, and for contiguous (NCHW) inputs, the native kernel is as fast or faster,
so it is kept there (figures: docs/performance.md, "Where the speed layer's numbers
come from"; ``benchmarks/bench_batchnorm.py``).

:class:`FastBatchNorm2d` is an ``nn.BatchNorm2d`` (same arguments, buffers, state dict
and running-statistics update); only the training-mode forward and backward on such
inputs are computed differently, to float32 rounding of the native result.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: channels_last inputs with fewer channels than this take the reduction-based path
#: (the crossover: native is as fast or faster from 16 channels on; see the module docstring)
FAST_PATH_MAX_CHANNELS = 15

_REDUCED_DIMS = (0, 2, 3)  # every dimension but the channel one


class _NormalizeWithBatchStatistics(torch.autograd.Function):
    """``(x - mean) / sqrt(var + eps)`` per channel with batch statistics, and its gradient.

    Returns the normalised input together with the batch mean and the biased variance
    (both non-differentiable; the module uses them for its running statistics). Written
    with reductions and elementwise products only, so :func:`torch.func.vmap` can batch it
    (``generate_vmap_rule``) for the stacked trainer.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # statistics always in float32: a bfloat16 input (autocast) is widened, and the
        # output narrowed back to its dtype, as the native kernel does
        work = x if x.dtype == torch.float32 else x.float()
        count = work.numel() // work.shape[1]
        mean = work.sum(_REDUCED_DIMS, keepdim=True) / count
        centred = work - mean
        # two passes (mean, then squared deviations): the one-pass E[x^2] - E[x]^2 loses
        # digits when |mean| >> std, which the native kernel does not
        var = (centred * centred).sum(_REDUCED_DIMS, keepdim=True) / count
        inv_std = torch.rsqrt(var + eps)
        normalized = centred.mul_(inv_std)  # centred is ours alone; reuse its memory
        return normalized.to(x.dtype), inv_std, mean, var

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        normalized, inv_std, mean, var = output
        ctx.mark_non_differentiable(inv_std, mean, var)
        ctx.input_dtype = inputs[0].dtype
        if normalized.dtype == torch.float32:
            ctx.save_for_backward(normalized, inv_std)
        else:
            # the narrowed output is too coarse for the gradient: keep the input and
            # recompute the float32 normalisation in backward
            ctx.save_for_backward(inputs[0], inv_std, mean)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *_unused: Any) -> tuple[torch.Tensor, None]:
        if ctx.input_dtype == torch.float32:
            normalized, inv_std = ctx.saved_tensors
        else:
            x, inv_std, mean = ctx.saved_tensors
            normalized = (x.float() - mean).mul_(inv_std)
            grad = grad.float()
        count = grad.numel() // grad.shape[1]
        # d/dx of (x - mean) * inv_std with batch statistics:
        # inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
        grad_mean = grad.sum(_REDUCED_DIMS, keepdim=True) / count
        grad_dot_normalized = (grad * normalized).sum(_REDUCED_DIMS, keepdim=True) / count
        grad_input = (grad - grad_mean).sub_(normalized * grad_dot_normalized).mul_(inv_std)
        return grad_input.to(ctx.input_dtype), None


def uses_fast_path(x: torch.Tensor, num_features: int) -> bool:
    """Whether :class:`FastBatchNorm2d` computes a training step on ``x`` itself.

    Only float32 or bfloat16 (autocast) CPU tensors in channels_last layout with fewer
    than 16 channels, where the native kernel is slow; everything else (CUDA, NCHW, wide
    layers) goes to ``nn.BatchNorm2d``.
    """
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and x.dim() == 4
        and num_features <= FAST_PATH_MAX_CHANNELS
        and x.shape[0] * x.shape[2] * x.shape[3] > 1  # native raises its own error for one value
        and _is_channels_last(x)
    )


def _is_channels_last(x: torch.Tensor) -> bool:
    # by strides, not x.is_contiguous(memory_format=...): vmap (the stacked trainer)
    # answers that query only for the default format, but reports per-sample strides
    n, c, h, w = x.shape
    expected = (h * w * c, 1, w * c, c)
    return all(size == 1 or stride == want for size, stride, want in zip(x.shape, x.stride(), expected))


class FastBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with a faster training step for narrow channels_last CPU inputs.

    Parameters and attributes are those of :class:`torch.nn.BatchNorm2d`. In training mode,
    for inputs that :func:`uses_fast_path` accepts, the batch statistics, the normalisation,
    its gradient and the running-statistics update (unbiased variance, ``momentum`` or the
    cumulative average when ``momentum=None``) are computed with plain reductions; all other
    cases, and evaluation mode, run the native kernel. Results agree with the native module
    to float32 rounding.

    Examples
    --------
    >>> import torch
    >>> bn = FastBatchNorm2d(8, affine=False)
    >>> x = torch.randn(4, 8, 6, 6).contiguous(memory_format=torch.channels_last)
    >>> y = bn(x)
    >>> y.shape, bool(abs(float(y.mean())) < 1e-5)
    (torch.Size([4, 8, 6, 6]), True)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and uses_fast_path(x, self.num_features)):
            return super().forward(x)
        normalized, _inv_std, mean, var = _NormalizeWithBatchStatistics.apply(x, self.eps)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            self._update_running_statistics(mean, var, count=x.numel() // x.shape[1])
        if self.affine:
            normalized = normalized * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return normalized

    @torch.no_grad()
    def _update_running_statistics(self, mean: torch.Tensor, var: torch.Tensor, *, count: int) -> None:
        # the same update as nn.BatchNorm2d: exponential average with `momentum`, or the
        # cumulative average when momentum is None; the variance enters unbiased
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased_var = var.flatten() * (count / (count - 1))
        self.running_mean.mul_(1.0 - factor).add_(mean.flatten(), alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(unbiased_var, alpha=factor)
