"""The MNIST LeNet's convolutions alone: a lower bound on any CPU training loop of it.

Runs only the convolutions of one training step, with the shapes of an MNIST cell
(batch 200, 32 steps per epoch for 6,235 images), channels_last, each with the
backward parts training needs (the first conv's weight gradient; input and weight
gradients of the others): the encoder's two 5x5 convs in the Deep SAD phase, plus the
decoder's two upsampling transposed convs as deepsad computes them (3x3 phase kernels on
the small maps, deepsad.models.UpsamplingConvTranspose2d) in the autoencoder phase.
Everything else of a step (BatchNorm, activations, pooling, loss, optimizer) is left
out, so no implementation that uses torch's CPU convolutions can train a cell faster
than these seconds per epoch; times 150 + 150 epochs they bound one experiment at the
paper's schedule, times 450 the MNIST column of Table 3.

    python benchmarks/bench_conv_floor.py [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

from deepsad.models import LENET_ARCHITECTURES, UpsamplingConvTranspose2d
from deepsad.training import keep_freed_memory

BATCH = 200
STEPS_PER_EPOCH = 32  # ceil(6235 / 200): normal class 0 + 5 % labeled anomalies
PAPER_EPOCHS = 150
COLUMN_EXPERIMENTS = 450


def _channels_last(*shape: int, grad: bool = False) -> torch.Tensor:
    return torch.randn(*shape).contiguous(memory_format=torch.channels_last).requires_grad_(grad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    torch.manual_seed(0)
    arch = LENET_ARCHITECTURES["mnist"]
    (c_in, size, _), (c1, c2) = arch.input_shape, arch.channels
    images = _channels_last(BATCH, c_in, size, size)
    conv1 = _channels_last(c1, c_in, 5, 5, grad=True)
    conv2 = _channels_last(c2, c1, 5, 5, grad=True)
    features1 = _channels_last(BATCH, c1, size // 2, size // 2, grad=True)  # conv2's input
    # the decoder stages c2 -> c1 on 7x7 and c1 -> c_in on 14x14, as phase convolutions
    stage1 = UpsamplingConvTranspose2d(c2, c1, 5, padding=2, bias=False)
    stage2 = UpsamplingConvTranspose2d(c1, c_in, 5, padding=2, bias=True)
    phase1 = stage1.phase_weight().detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    phase2 = stage2.phase_weight().detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    code_map = _channels_last(BATCH, c2, size // 4, size // 4, grad=True)
    features2 = _channels_last(BATCH, c1, size // 2, size // 2, grad=True)

    def encoder_convs() -> list[torch.Tensor]:
        return [F.conv2d(images, conv1, padding=2), F.conv2d(features1, conv2, padding=2)]

    def autoencoder_step() -> None:
        outputs = [*encoder_convs(), F.conv2d(code_map, phase1, padding=1), F.conv2d(features2, phase2, padding=1)]
        torch.autograd.backward(outputs, [torch.ones_like(y) for y in outputs])

    def deep_sad_step() -> None:
        outputs = encoder_convs()
        torch.autograd.backward(outputs, [torch.ones_like(y) for y in outputs])

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; MNIST LeNet convolutions only, batch {BATCH}, "
          f"{STEPS_PER_EPOCH} steps per epoch, fastest of {args.repeats} epochs")
    print("| phase | s per epoch | x 150 epochs, s |")
    print("|---|---|---|")
    total = 0.0
    for name, step in (("autoencoder", autoencoder_step), ("Deep SAD", deep_sad_step)):
        for _ in range(5):
            step()
        best = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            for _ in range(STEPS_PER_EPOCH):
                step()
            best = min(best, time.perf_counter() - started)
        total += PAPER_EPOCHS * best
        print(f"| {name} | {best:.3f} | {PAPER_EPOCHS * best:.0f} |", flush=True)
    print(f"one experiment at 150 + 150 epochs: >= {total:.0f} s in convolutions alone; the MNIST column "
          f"({COLUMN_EXPERIMENTS} experiments): >= {COLUMN_EXPERIMENTS * total / 3600:.1f} h on these threads")


if __name__ == "__main__":
    main()
