"""BatchNorm2d -> leaky ReLU -> max-pool as one layer that pools first.

Every LeNet conv module ends in BatchNorm2d without affine parameters, a leaky ReLU and
a 2x2 max-pool. For fixed statistics, the normalisation ``(x - mean) * inv_std`` and the
leaky ReLU are strictly increasing in x, so the max-pool picks the same element whether
it runs before or after them: ``pool(leaky(bn(x))) == leaky(bn(pool(x)))`` with the
statistics of the full x. Pooling first normalises and activates a quarter of the
values, and the gradient folds into two passes over the full map: the pooled gradient
scattered back to the maxima, plus a per-channel ``a * x + b`` from the statistics' terms.

That pays on narrow channels_last CPU inputs; from 16 channels on the native kernels
are faster, so wider inputs, like NCHW inputs and GPUs, run the three native layers one
after the other (the same narrow-channel rule as
:class:`~deepsad.models.batchnorm.FastBatchNorm2d`; figures: docs/performance.md, "Where
the speed layer's numbers come from"). :func:`deepsad.models.fused.use_fused_layers`
swaps it in for the three stock layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from deepsad.errors import InvalidInputError
from deepsad.models.batchnorm import FastBatchNorm2d, uses_fast_path

_REDUCED_DIMS = (0, 2, 3)


class _PoolFirstBatchNormLeaky(torch.autograd.Function):
    """``leaky(bn(pool(x)))`` with the batch statistics of the full ``x``, and its gradient.

    Returns the output, then (non-differentiable) the normalised pooled values, the pool
    indices, the batch mean, the biased variance (the module updates its running statistics
    with these two) and the inverse standard deviation. Statistics and the normalised
    values are float32 also for a bfloat16 input (autocast); the output has the input's dtype.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, eps: float, negative_slope: float,
                pool: int) -> tuple[torch.Tensor, ...]:
        # lower precisions (bfloat16 under autocast) are widened; float64 stays (gradcheck)
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        count = work.numel() // work.shape[1]
        mean = work.sum(_REDUCED_DIMS, keepdim=True) / count
        centred = work - mean
        # two passes, as FastBatchNorm2d: E[x^2] - E[x]^2 loses digits when |mean| >> std
        var = (centred * centred).sum(_REDUCED_DIMS, keepdim=True) / count
        del centred
        inv_std = torch.rsqrt(var + eps)
        pooled, indices = F.max_pool2d_with_indices(x, pool)
        normalized = (pooled.to(work.dtype) - mean).mul_(inv_std)
        output = F.leaky_relu(normalized, negative_slope)
        return output.to(x.dtype), normalized, indices, mean, var, inv_std

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        x, _eps, negative_slope, pool = inputs
        _output, normalized, indices, mean, var, inv_std = output
        ctx.mark_non_differentiable(normalized, indices, mean, var, inv_std)
        ctx.negative_slope = negative_slope
        ctx.pool = pool
        ctx.save_for_backward(x, normalized, indices, mean, inv_std)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *_unused: Any) -> tuple[torch.Tensor | None, None, None, None]:
        x, normalized, indices, mean, inv_std = ctx.saved_tensors
        grad = grad.to(normalized.dtype)
        # through the leaky ReLU, on the pooled values
        grad = torch.where(normalized > 0, grad, grad * ctx.negative_slope)
        count = x.numel() // x.shape[1]
        # BatchNorm's gradient with g zero off the maxima:
        # inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), x_hat = (x - mean) * inv_std,
        # is scatter(inv_std * g) + a * x + b per channel
        grad_mean = grad.sum(_REDUCED_DIMS, keepdim=True) / count
        grad_dot_normalized = (grad * normalized).sum(_REDUCED_DIMS, keepdim=True) / count
        slope = -inv_std * inv_std * grad_dot_normalized
        offset = -inv_std * grad_mean - slope * mean
        work = x.to(normalized.dtype)  # float32 for a bfloat16 input, else x itself
        pool = [ctx.pool, ctx.pool]
        scattered = torch.ops.aten.max_pool2d_with_indices_backward(
            grad * inv_std, work, pool, pool, [0, 0], [1, 1], False, indices
        )
        # out of place first: vmap (the stacked trainer) has no batching rule for addcmul_
        grad_input = torch.addcmul(offset, work, slope).add_(scattered)
        return grad_input.to(x.dtype), None, None, None


def uses_pool_first_path(x: torch.Tensor, num_features: int) -> bool:
    """Whether :class:`BatchNormLeakyMaxPool2d` trains on ``x`` with its pool-first kernel.

    On the inputs where :class:`~deepsad.models.batchnorm.FastBatchNorm2d` takes its own
    path (float32 or bfloat16 CPU tensors in channels_last with fewer than 16 channels):
    the crossover is the same for both (module docstring). Everything else runs
    the native layers one after the other.
    """
    return uses_fast_path(x, num_features)


class BatchNormLeakyMaxPool2d(FastBatchNorm2d):
    """``MaxPool2d(pool)(LeakyReLU(negative_slope)(BatchNorm2d(x)))`` as one layer.

    A :class:`~deepsad.models.FastBatchNorm2d` without affine parameters (the same
    buffers and state dict) that also applies the leaky ReLU and the max-pool; where
    :func:`uses_pool_first_path` accepts the input it pools first (module docstring),
    in evaluation mode always (the running statistics make that exact everywhere).
    Results agree with the three separate layers to float32 rounding.

    Parameters
    ----------
    num_features, eps, momentum, track_running_stats, device, dtype
        As for :class:`torch.nn.BatchNorm2d`; ``affine`` must stay False (a negative
        scale would reverse the order the pool relies on).
    negative_slope : float, default=0.01
        The leaky ReLU's slope, >= 0 (0 is a ReLU).
    pool : int, default=2
        Kernel size and stride of the max-pool.

    Examples
    --------
    >>> import torch
    >>> layer = BatchNormLeakyMaxPool2d(8, eps=1e-4, negative_slope=0.1)
    >>> layer(torch.randn(4, 8, 6, 6)).shape
    torch.Size([4, 8, 3, 3])
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = True,
        *,
        negative_slope: float = 0.01,
        pool: int = 2,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if affine:
            raise InvalidInputError("BatchNormLeakyMaxPool2d has no affine form: a negative scale breaks pooling first")
        if not negative_slope >= 0:
            # a negative slope makes the activation decreasing for x < 0: pooling first would pick other elements
            raise InvalidInputError(f"BatchNormLeakyMaxPool2d needs negative_slope >= 0, got {negative_slope!r}")
        super().__init__(num_features, eps=eps, momentum=momentum, affine=False,
                         track_running_stats=track_running_stats, device=device, dtype=dtype)
        self.negative_slope = float(negative_slope)
        self.pool = int(pool)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, negative_slope={self.negative_slope}, pool={self.pool}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_statistics = self.training or not self.track_running_stats
        if batch_statistics and uses_pool_first_path(x, self.num_features):
            output, _normalized, _indices, mean, var, _inv_std = _PoolFirstBatchNormLeaky.apply(
                x, self.eps, self.negative_slope, self.pool)
            if self.training and self.track_running_stats:
                self._update_running_statistics(mean, var, count=x.numel() // x.shape[1])
            return output
        if not batch_statistics:
            # running statistics: normalising is a fixed increasing map per channel
            x = F.max_pool2d(x, self.pool)
            return F.leaky_relu(super().forward(x), self.negative_slope)
        return F.max_pool2d(F.leaky_relu(super().forward(x), self.negative_slope), self.pool)
