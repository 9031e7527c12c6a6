"""deepsad's fused LeNet layers vs the stock layers they replace, forward + backward.

For each LeNet variant's conv-block and decoder-stage shapes (batch 200, channels_last,
training mode): milliseconds of one forward and backward of

* ``BatchNormLeakyMaxPool2d`` vs ``BatchNorm2d -> LeakyReLU -> MaxPool2d`` (stock), and
  vs the same three with deepsad's ``FastBatchNorm2d`` (the layout before the fusion);
* ``UpsamplingConvTranspose2d`` vs ``Upsample -> ConvTranspose2d`` (stock),

fastest of ``--repeats`` timed batches of ``--steps`` steps, with
``deepsad.training.keep_freed_memory`` in effect as in training (``--default-malloc``
leaves glibc's malloc alone, to see what the page faults cost).

    python benchmarks/bench_layers.py [--threads 2] [--steps 20] [--repeats 3] [--default-malloc]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from deepsad.models import BatchNormLeakyMaxPool2d, FastBatchNorm2d, UpsamplingConvTranspose2d, to_stock_layers
from deepsad.models.pooled_batchnorm import uses_pool_first_path
from deepsad.training import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batchnorm import _milliseconds, timing_parser  # noqa: E402

#: (channels, height = width) of the BN -> leaky ReLU -> pool inputs (the conv outputs)
POOLED_SHAPES = {
    "mnist": [(8, 28), (4, 14)],
    "mnist, grouped pair": [(16, 28), (8, 14)],
    "fmnist": [(16, 28), (32, 14)],
    "cifar10": [(32, 32), (64, 16), (128, 8)],
}
#: (in channels, out channels, input height = width) of the decoder stages
UPSAMPLING_SHAPES = {
    "mnist": [(4, 8, 7), (8, 1, 14)],
    "fmnist": [(32, 16, 7), (16, 1, 14)],
    "cifar10": [(128, 64, 4), (64, 32, 8), (32, 3, 16)],
}
SLOPE = 0.1


def _channels_last(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator).contiguous(memory_format=torch.channels_last)


def main() -> None:
    parser = timing_parser(__doc__)
    parser.add_argument("--default-malloc", action="store_true", help="do not call keep_freed_memory()")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kept = False if args.default_malloc else keep_freed_memory()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, channels_last, "
          f"keep_freed_memory {'on' if kept else 'off'}")
    time_it = (lambda module, x, upstream: _milliseconds(module, x, upstream, args.steps, args.repeats))

    print("\n| network | BN input (c, h, w) | stock BN -> leaky -> pool ms | with FastBatchNorm2d ms "
          "| BatchNormLeakyMaxPool2d ms | stock / fused | pools first |")
    print("|---|---|---|---|---|---|---|")
    for network, shapes in POOLED_SHAPES.items():
        for channels, size in shapes:
            generator = torch.Generator().manual_seed(0)
            x = _channels_last((args.batch_size, channels, size, size), generator)
            upstream = _channels_last((args.batch_size, channels, size // 2, size // 2), generator)
            fused = BatchNormLeakyMaxPool2d(channels, eps=1e-4, negative_slope=SLOPE)
            stock = to_stock_layers(nn.Sequential(fused))
            separate = nn.Sequential(FastBatchNorm2d(channels, eps=1e-4, affine=False), nn.LeakyReLU(SLOPE),
                                     nn.MaxPool2d(2))
            stock_ms, separate_ms, fused_ms = time_it(stock, x, upstream), time_it(separate, x, upstream), \
                time_it(fused, x, upstream)
            print(f"| {network} | ({channels}, {size}, {size}) | {stock_ms:.2f} | {separate_ms:.2f} | {fused_ms:.2f} "
                  f"| {stock_ms / fused_ms:.2f} | {'yes' if uses_pool_first_path(x, channels) else 'no'} |", flush=True)

    print("\n| network | stage (in -> out, input h = w) | stock Upsample -> ConvTranspose2d ms "
          "| UpsamplingConvTranspose2d ms | stock / fused |")
    print("|---|---|---|---|---|")
    for network, stages in UPSAMPLING_SHAPES.items():
        for c_in, c_out, size in stages:
            generator = torch.Generator().manual_seed(0)
            x = _channels_last((args.batch_size, c_in, size, size), generator)
            upstream = _channels_last((args.batch_size, c_out, 2 * size, 2 * size), generator)
            fused = UpsamplingConvTranspose2d(c_in, c_out, 5, padding=2, bias=False).to(memory_format=torch.channels_last)
            stock = to_stock_layers(nn.Sequential(fused)).to(memory_format=torch.channels_last)
            stock_ms, fused_ms = time_it(stock, x, upstream), time_it(fused, x, upstream)
            print(f"| {network} | {c_in} -> {c_out}, {size} | {stock_ms:.2f} | {fused_ms:.2f} "
                  f"| {stock_ms / fused_ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
