"""Time the dataset loaders on the real files.

Usage::

    python benchmarks/bench_data_loading.py [--data-root D] [--repeat N]

Prints one row per dataset: the best of N wall-clock times to load it fully (images
decoded and scaled to float32 in [0, 1]; ODDS .mat read and cast), plus shape.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from deepsad.data import load_images, load_odds, resolve_data_root  # noqa: E402
from deepsad.errors import DeepSADError  # noqa: E402

ODDS = ("arrhythmia", "cardio", "satellite", "satimage-2", "shuttle", "thyroid")


def _images(name: str, root: Path):
    X, _ = load_images(name, "train", root)
    Xt, _ = load_images(name, "test", root)
    return f"train {tuple(X.shape)} + test {tuple(Xt.shape)}"


def _odds(name: str, root: Path):
    X, y = load_odds(name, root)
    return f"{tuple(X.shape)}, {int(y.sum())} outliers"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="data root (default: $DEEPSAD_DATA, else the cache folder)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per dataset; the best is shown (default 3)")
    args = parser.parse_args(argv)
    # the partial CIFAR-10 test batch of some workplaces is reported in the shape column instead
    logging.getLogger("deepsad.data.cifar").setLevel(logging.ERROR)
    root = resolve_data_root(args.data_root)
    cases = [("mnist (.gz, train+test)", _images, "mnist"), ("fmnist (.gz, train+test)", _images, "fmnist"),
             ("cifar10 (train+test batches)", _images, "cifar10")] + [(f"odds {n}", _odds, n) for n in ODDS]
    print(f"data root: {root}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs; best of {args.repeat}")
    print(f"{'dataset':30s} {'seconds':>8s}  result")
    for label, loader, name in cases:
        best = float("inf")
        try:
            for _ in range(args.repeat):
                start = time.perf_counter()
                result = loader(name, root)
                best = min(best, time.perf_counter() - start)
        except DeepSADError as error:
            print(f"{label:30s} {'-':>8s}  skipped: {error}")
            continue
        print(f"{label:30s} {best:8.3f}  {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
