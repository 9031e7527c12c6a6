"""BatchNorm2d forward + backward: torch's kernel vs deepsad's FastBatchNorm2d.

For the feature maps of the LeNet networks (batch 200, channels_last and NCHW): the
milliseconds of one training-mode forward and backward, fastest of ``--repeats`` timed
batches of ``--steps`` steps, and whether FastBatchNorm2d takes its own path there.
Shows where the native CPU kernel is slow (channels_last with fewer than 16 channels)
and why FastBatchNorm2d leaves the other cases to it.

    python benchmarks/bench_batchnorm.py [--threads 2] [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from deepsad.models.batchnorm import FastBatchNorm2d, uses_fast_path

#: (channels, height = width) of the BatchNorm inputs in the LeNet autoencoders
SHAPES = {
    "mnist": [(8, 28), (4, 14), (8, 14)],
    "fmnist": [(16, 28), (32, 14), (16, 14)],
    "cifar10": [(32, 32), (64, 16), (128, 8)],
}


def _milliseconds(module: nn.Module, x: torch.Tensor, upstream: torch.Tensor, steps: int, repeats: int) -> float:
    def step() -> None:
        leaf = x.detach().requires_grad_()
        module(leaf).backward(upstream)

    for _ in range(3):
        step()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - started) / steps)
    return best * 1000


def timing_parser(description: str | None) -> argparse.ArgumentParser:
    """The options of the layer benchmarks: threads, steps per timed batch, repeats, batch size."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=200)
    return parser


def main() -> None:
    args = timing_parser(__doc__).parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}")
    print("| network | input (c, h, w) | layout | nn.BatchNorm2d ms | FastBatchNorm2d ms | native / fast | own path |")
    print("|---|---|---|---|---|---|---|")
    for network, shapes in SHAPES.items():
        for channels, size in shapes:
            for layout in (torch.channels_last, torch.contiguous_format):
                generator = torch.Generator().manual_seed(0)
                x = torch.randn(args.batch_size, channels, size, size, generator=generator)
                x = x.contiguous(memory_format=layout)
                upstream = torch.randn(x.shape, generator=generator).contiguous(memory_format=layout)
                native = _milliseconds(nn.BatchNorm2d(channels, eps=1e-4, affine=False), x, upstream,
                                       args.steps, args.repeats)
                fast = _milliseconds(FastBatchNorm2d(channels, eps=1e-4, affine=False), x, upstream,
                                     args.steps, args.repeats)
                name = "channels_last" if layout is torch.channels_last else "NCHW"
                print(f"| {network} | ({channels}, {size}, {size}) | {name} | {native:.2f} | {fast:.2f} | "
                      f"{native / fast:.2f} | {'yes' if uses_fast_path(x, channels) else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
