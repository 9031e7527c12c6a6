"""Sequential vs stacked training of a grid cell's seeds: experiments per hour and AUCs.

For K seeds of one grid cell (each seed draws its own training set), fits Deep SAD K
times one after another (``est.fit``) and once with :func:`deepsad.fit_stacked` per
stacking strategy (``grouped``: one network of grouped layers; ``vmap``: a functional
forward mapped over stacked weights), and prints wall time, experiments per hour, the
AUCs of every path and the largest difference to the sequential ones (stacking must not
change the results beyond float rounding).

Workloads:
  cardio  ODDS cardio, Table 6 protocol (stratified 60:40, gamma_l = .01), MLP 32-16-8,
          the paper's schedule 150 + 150 epochs by default.
  mnist   MNIST scenario (i) cell normal 0 / known 1 / gamma_l = .05 (6235 images),
          LeNet; few epochs by default (the paper's 150 + 150 take ~4 min per fit).

    python benchmarks/bench_stacked.py [--data-root D] [--workload cardio|mnist|all]
        [--seeds 10] [--epochs E] [--threads T] [--strategies grouped,vmap]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from deepsad import DeepSAD, fit_stacked
from deepsad.data import load_images, load_odds, resolve_data_root
from deepsad.data.scenarios import sample_image_scenario, sample_odds_scenario
from deepsad.training import tuned_threads

DEFAULT_EPOCHS = {"cardio": 150, "mnist": 5}


def _cardio(root, seeds):
    X, truth = load_odds("cardio", root)
    cells = []
    for seed in seeds:
        draw = sample_odds_scenario(truth, gamma_l=0.01, rng=np.random.default_rng(seed), seed=seed)
        cells.append((X[draw.train_indices], draw.train_semi_labels, X[draw.test_indices], draw.test_ground_truth))
    return cells, dict(standardize=True)


def _mnist(root, seeds):
    X_train, c_train = load_images("mnist", "train", root)
    X_test, c_test = load_images("mnist", "test", root)
    cells = []
    for seed in seeds:
        draw = sample_image_scenario(
            c_train, c_test, normal_classes=[0], known_anomaly_classes=[1], gamma_l=0.05, gamma_p=0.0,
            rng=np.random.default_rng(seed), seed=seed,
        )
        cells.append((X_train[draw.train_indices], draw.train_semi_labels, X_test, draw.test_ground_truth))
    return cells, {}


def run(workload: str, root, n_seeds: int, epochs: int, strategies: list[str]) -> dict:
    seeds = list(range(n_seeds))
    cells, extra = (_cardio if workload == "cardio" else _mnist)(root, seeds)
    milestones = (50,) if epochs > 50 else ()
    params = dict(epochs=epochs, pretrain_epochs=epochs, lr_milestones=milestones,
                  pretrain_lr_milestones=milestones, batch_size=200, device="cpu", **extra)
    # warm-up: the first fit of a process pays one-off costs (imports, allocator)
    DeepSAD(**dict(params, epochs=1, pretrain_epochs=1), random_state=0).fit(cells[0][0][:400], cells[0][1][:400])

    def auc(models):
        return [roc_auc_score(t, m.anomaly_score(X)) for m, (_, _, X, t) in zip(models, cells)]

    started = time.perf_counter()
    plain = [DeepSAD(**params, random_state=s).fit(X, y) for s, (X, y, _, _) in zip(seeds, cells)]
    seconds = {"sequential": time.perf_counter() - started}
    aucs = {"sequential": auc(plain)}
    for strategy in strategies:
        started = time.perf_counter()
        stacked = fit_stacked([DeepSAD(**params, random_state=s) for s in seeds],
                              [c[0] for c in cells], [c[1] for c in cells], strategy=strategy)
        seconds[strategy] = time.perf_counter() - started
        aucs[strategy] = auc(stacked)
    return dict(workload=workload, seeds=n_seeds, epochs=epochs, n_train=cells[0][0].shape[0],
                seconds=seconds, aucs=aucs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--workload", choices=("cardio", "mnist", "all"), default="all")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=None, help="pretraining and training epochs each")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--strategies", default="grouped,vmap", help="comma-separated fit_stacked strategies")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    strategies = [s for s in args.strategies.split(",") if s]
    root = resolve_data_root(args.data_root)
    workloads = ("cardio", "mnist") if args.workload == "all" else (args.workload,)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"Deep SAD, batch 200, K seeds of one cell")
    print("| workload | K | epochs (AE+SAD) | n_train | path | wall s | speed-up | exp/h | AUC mean ± sd | "
          "max abs AUC diff to sequential |")
    print("|" + "---|" * 10)
    for workload in workloads:
        epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[workload]
        with tuned_threads():  # the deepsad command's CPU thread choice, for both paths
            r = run(workload, root, args.seeds, epochs, strategies)
        base_s, base_auc = r["seconds"]["sequential"], r["aucs"]["sequential"]
        for path, seconds in r["seconds"].items():
            aucs = r["aucs"][path]
            diff = max(abs(a - b) for a, b in zip(base_auc, aucs))
            label = path if path == "sequential" else f"stacked, {path}"
            print(f"| {workload} | {r['seeds']} | {epochs}+{epochs} | {r['n_train']} | {label} | {seconds:.1f} | "
                  f"{base_s / seconds:.2f}x | {3600 * r['seeds'] / seconds:.0f} | "
                  f"{np.mean(aucs):.4f} ± {np.std(aucs, ddof=1):.4f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
