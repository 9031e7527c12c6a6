"""The MNIST column of Table 3 for Deep SAD through the experiment runner: experiments per hour.

Runs a slice of the column (gamma_l = 0.05; chosen normal classes x known classes; the
paper's full MNIST training sets) with the runner's serial executor, once plainly and
once with ``--stack K``, and with the local executor (``--workers N`` processes sharing
the threads), plainly and with ``--stack K``, in fresh results files, and prints experiments per hour, the AUCs of the
runs and their largest difference from the sequential run, and the projected time of the full
column (10 normal x 9 known classes x 5 ratios = 450 experiments) at the paper's
150 + 150 epochs. For the projection each run is repeated with twice the epochs: the
difference is the cost per epoch, the rest the fixed cost per experiment (data, centre,
threshold, scoring); the table shows the runs at the given epochs.

    python benchmarks/bench_grid.py [--data-root D] [--normal-classes 0] [--known-classes 4]
        [--epochs 3] [--stack 2] [--threads 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deepsad.experiments.config import config_from_dict, find_config, read_toml
from deepsad.experiments.executors import LocalExecutor, SerialExecutor
from deepsad.experiments.runner import run_experiment
from deepsad.experiments.store import read_results

FULL_COLUMN_EXPERIMENTS = 450  # 10 normal classes x 9 known classes x 5 ratios
PAPER_EPOCHS = 150


def column_config(normal_classes: list[int], known: int, epochs: int) -> object:
    raw = read_toml(find_config("table3"))
    raw.pop("profiles", None)
    raw["datasets"] = ["mnist"]
    raw["networks"] = {"mnist": raw["networks"]["mnist"]}
    raw["methods"] = {"deepsad": raw["methods"]["deepsad"]}
    raw["sweep"] = {**raw["sweep"], "values": [0.05]}
    raw["scenario"] = {**raw["scenario"], "normal_classes": normal_classes, "max_known_classes": known}
    raw["training"] = {**raw["training"], "epochs": epochs, "device": "cpu"}
    raw["autoencoder"] = {**raw["autoencoder"], "epochs": epochs}
    if epochs <= 50:
        raw["training"]["lr_milestones"] = []
        raw["autoencoder"]["lr_milestones"] = []
    return config_from_dict(raw, source="table3 (MNIST Deep SAD column slice)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--normal-classes", type=int, nargs="+", default=[0])
    parser.add_argument("--known-classes", type=int, default=4, help="known anomaly classes per normal class (max 9)")
    parser.add_argument("--epochs", type=int, default=3, help="pretraining and training epochs each")
    parser.add_argument("--stack", type=int, default=2,
                        help="setups per stacked unit (2: the CPU group size of the MNIST LeNet)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2,
                        help="processes of the parallel run, threads // workers threads each (0: no parallel run)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {args.threads} threads; MNIST Deep SAD, gamma_l = 0.05, "
          f"normal {args.normal_classes} x {args.known_classes} known classes, {args.epochs}+{args.epochs} epochs")
    rows = []
    aucs = {}
    with tempfile.TemporaryDirectory() as folder:
        # warm-up, untimed: pays torch's first-fit costs and warms the OS file cache for MNIST
        # (each worker of a run below loads MNIST once, into the caches it keeps for that run)
        run_experiment(column_config(args.normal_classes[:1], 1, 1), Path(folder) / "warm-up.sqlite",
                       SerialExecutor(threads=args.threads), data_root=args.data_root, progress=False)
        threads_each = max(1, args.threads // max(1, args.workers))
        runs = [("sequential", 1, None), (f"stacked (--stack {args.stack})", args.stack, None)]
        if args.workers:
            parallel = f"parallel ({args.workers} workers x {threads_each} thread{'s' * (threads_each > 1)})"
            runs.append((parallel, 1, args.workers))
            if args.stack > 1:
                runs.append((f"{parallel}, stacked (--stack {args.stack})", args.stack, args.workers))
        for run_index, (label, stack, workers) in enumerate(runs):
            seconds = {}
            # E and 2E epochs: the difference is the cost of E epochs, the rest is fixed per
            # experiment (data, centre, threshold, scoring), which separates the two for the projection
            for epochs in (args.epochs, 2 * args.epochs):
                results = Path(folder) / f"run{run_index}-e{epochs}" / "results.sqlite"
                results.parent.mkdir()
                started = time.perf_counter()
                executor = (SerialExecutor(threads=args.threads) if workers is None
                            else LocalExecutor(workers=workers, threads_per_worker=threads_each))
                summary = run_experiment(column_config(args.normal_classes, args.known_classes, epochs), results,
                                         executor, data_root=args.data_root, progress=False, stack=stack)
                seconds[epochs] = time.perf_counter() - started
                if epochs == args.epochs:
                    frame = read_results(results)
                    n_done, n_failed = summary.n_done, summary.n_failed
            per_experiment = seconds[args.epochs] / max(1, n_done)
            per_epoch = (seconds[2 * args.epochs] - seconds[args.epochs]) / max(1, n_done) / args.epochs
            projected = per_experiment + (PAPER_EPOCHS - args.epochs) * per_epoch
            aucs[label] = dict(zip(frame["task_key"], frame["auc"]))
            rows.append((label, n_done, n_failed, seconds[args.epochs], 3600 / per_experiment,
                         np.mean(frame["auc"]), np.std(frame["auc"], ddof=1) if len(frame) > 1 else 0.0,
                         projected, projected * FULL_COLUMN_EXPERIMENTS / 3600))
    first, *others = aucs.values()
    diff = max((abs(first[k] - other[k]) for other in others for k in first), default=0.0)
    print("| run | experiments | failed | wall s | exp/h | AUC mean ± std | s per experiment at 150+150, projected "
          "| full column (450), projected h |")
    print("|---|---|---|---|---|---|---|---|")
    for label, done, failed, seconds, per_hour, mean, std, per_exp, projected in rows:
        print(f"| {label} | {done} | {failed} | {seconds:.1f} | {per_hour:.0f} | {mean:.4f} ± {std:.4f} | "
              f"{per_exp:.0f} | {projected:.1f} |")
    print(f"largest per-experiment AUC difference from the sequential run: {diff:.1e}")


if __name__ == "__main__":
    main()
