"""One MNIST cell the way deepsad trains it vs the way the reference code computes it.

Both run the same bare loop (forward, loss, backward, Adam step over preloaded batches of
200; the autoencoder, then the encoder with a Deep SAD-style loss) on the training set
of the issue's cell (normal class 0, known anomaly class 1, gamma_l = 0.05: 6,235 MNIST
images), each in its own fresh process, alternating ``--pairs`` times:

* ``deepsad``: deepsad's LeNets with the fused layers swapped in
  (:func:`deepsad.models.use_fused_layers`) in channels_last, fused Adam, and
  :func:`deepsad.training.keep_freed_memory` (as ``DeepSAD.fit`` on a CPU);
* ``reference way``: the same networks of stock torch layers, as deepsad builds them,
  in the default NCHW layout, the default Adam
  and glibc's default malloc settings, i.e. how the authors' reference code computes
  (without its per-sample DataLoader, so a lower bound on its time).

Prints seconds per epoch (fastest of the timed epochs after a warm-up epoch) and one
cell at the paper's 150 + 150 epochs for each process, and the ratio per pair. Unlike
the in-process stock loop of ``compare_peers`` (which runs under deepsad's malloc
settings), this shows what the reference's way costs as it is run.

    python benchmarks/bench_reference_way.py [--data-root D] [--pairs 3] [--epochs 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from pathlib import Path

import torch

from deepsad.models import LeNetDecoder, LeNetEncoder, use_fused_layers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peerbench.workloads import load_workload  # noqa: E402

BATCH = 200
PAPER_EPOCHS = 150


def _cell_images(data_root: str | None) -> torch.Tensor:
    """The training images of the cell, drawn as compare_peers draws its MNIST workload."""
    return torch.from_numpy(load_workload("mnist", data_root, seed=0).X_train)


def _worker(way: str, data_root: str | None, epochs: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    network = torch.nn.Sequential(LeNetEncoder("mnist"), LeNetDecoder("mnist"))
    if way == "deepsad":
        from deepsad.training import keep_freed_memory

        keep_freed_memory()
        # deepsad's way: the fused layers swapped in, channels_last, fused Adam
        network, layout, adam = use_fused_layers(network), torch.channels_last, {"fused": True}
    else:
        layout, adam = torch.contiguous_format, {}  # the stock layers deepsad builds, NCHW
    network = network.to(memory_format=layout)
    images = _cell_images(data_root).contiguous(memory_format=layout)
    batches = [images[start:start + BATCH] for start in range(0, len(images), BATCH)]
    encoder = network[0]
    centre = torch.full((encoder.rep_dim,), 0.1)  # any fixed centre: only the cost is measured
    autoencoder_optimizer = torch.optim.Adam(network.parameters(), lr=1e-4, **adam)
    encoder_optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-4, **adam)

    def autoencoder_epoch() -> None:
        for batch in batches:
            loss = ((network(batch) - batch) ** 2).sum(dim=(1, 2, 3)).mean()
            autoencoder_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            autoencoder_optimizer.step()

    def deep_sad_epoch() -> None:
        for batch in batches:
            loss = ((encoder(batch) - centre) ** 2).sum(dim=1).mean()
            encoder_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            encoder_optimizer.step()

    seconds: dict[str, list[float]] = {"autoencoder": [], "deep_sad": []}
    for _ in range(epochs + 1):  # the first epoch of each is a warm-up
        for name, epoch in (("autoencoder", autoencoder_epoch), ("deep_sad", deep_sad_epoch)):
            started = time.perf_counter()
            epoch()
            seconds[name].append(time.perf_counter() - started)
    return {name: min(values[1:]) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per phase (after one warm-up epoch)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=["deepsad", "reference"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.data_root, args.epochs, args.threads)))
        return
    print(f"torch {torch.__version__}, {args.threads} threads, MNIST cell (6,235 images), batch {BATCH}, "
          f"fastest of {args.epochs} epochs per process")
    print("| pair | way | AE s/epoch | Deep SAD s/epoch | cell at 150 + 150, s | reference way / deepsad |")
    print("|---|---|---|---|---|---|")
    for pair in range(1, args.pairs + 1):
        cells = {}
        for way in ("reference", "deepsad"):
            command = [sys.executable, __file__, "--worker", way, "--epochs", str(args.epochs),
                       "--threads", str(args.threads), *(["--data-root", args.data_root] if args.data_root else [])]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            cells[way] = PAPER_EPOCHS * (result["autoencoder"] + result["deep_sad"])
            label = "deepsad" if way == "deepsad" else "reference way (stock layers, NCHW, default malloc)"
            ratio = f"{cells['reference'] / cells['deepsad']:.2f}x" if way == "deepsad" else ""
            print(f"| {pair} | {label} | {result['autoencoder']:.3f} | {result['deep_sad']:.3f} | "
                  f"{cells[way]:.0f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
