"""Deep SAD and Deep SVDD on ODDS cardio with the paper's protocol and schedule.

Stratified, disjoint 60:40 split, gamma_l = 0.01 labeled anomalies, gamma_p = 0,
features standardized with training statistics, 150 + 150 epochs (lr 1e-4 -> 1e-5 after
50), batch 200 by default. Prints test AUC and wall time (pretraining + training) per
seed, and the mean ± std.

    python benchmarks/bench_cardio_deepsad.py [--data-root D] [--seeds 0 1 2] [--batch-size 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from deepsad import DeepSAD, DeepSVDD
from deepsad.data import load_odds, resolve_data_root
from deepsad.data.scenarios import sample_odds_scenario
from deepsad.training import tuned_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--dataset", default="cardio")
    args = parser.parse_args()
    X, truth = load_odds(args.dataset, resolve_data_root(args.data_root))
    print(f"{args.dataset}: torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{args.epochs} + {args.epochs} epochs")
    print(f"{'method':>9} {'seed':>4} {'test AUC':>8} {'wall s':>7}")
    for cls in (DeepSAD, DeepSVDD):
        aucs, times = [], []
        for seed in args.seeds:
            draw = sample_odds_scenario(truth, gamma_l=0.01, rng=np.random.default_rng(seed), seed=seed)
            est = cls(
                epochs=args.epochs,
                pretrain_epochs=args.epochs,
                batch_size=args.batch_size,
                standardize=True,
                random_state=seed,
            )
            started = time.perf_counter()
            with tuned_threads():  # the deepsad command's CPU thread choice
                est.fit(X[draw.train_indices], draw.train_semi_labels)
            times.append(time.perf_counter() - started)
            aucs.append(roc_auc_score(draw.test_ground_truth, est.anomaly_score(X[draw.test_indices])))
            print(f"{cls.__name__:>9} {seed:>4} {aucs[-1]:>8.4f} {times[-1]:>7.1f}")
        print(f"{cls.__name__:>9} {'mean':>4} {np.mean(aucs):>8.4f} {np.mean(times):>7.1f}   (AUC std {np.std(aucs):.4f})")


if __name__ == "__main__":
    main()
