"""Time per epoch of Deep SAD on one MNIST cell of scenario (i).

Normal class 0, known anomaly class 1, gamma_l = 0.05, gamma_p = 0 (6235 training
images), LeNet, batch 200: seconds per autoencoder epoch and per Deep SAD epoch (the
training loops alone), to compare with the reference implementation's 1.31 s and 0.46 s
on these machines (DESIGN §6 and issue 6), plus the test AUC after the given epochs; for each training
precision (float32, and bfloat16 autocast, which uses AMX / AVX-512 BF16 where the CPU
has them).

    python benchmarks/bench_mnist_epoch.py [--data-root D] [--epochs 3] [--threads N]
        [--precision float32 bfloat16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from deepsad import DeepSAD
from deepsad.data import load_images, resolve_data_root
from deepsad.data.scenarios import sample_image_scenario
from deepsad.training import PRECISIONS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peerbench.runners import fit_ours_timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = resolve_data_root(args.data_root)
    X_train, c_train = load_images("mnist", "train", root)
    X_test, c_test = load_images("mnist", "test", root)
    draw = sample_image_scenario(
        c_train, c_test, normal_classes=[0], known_anomaly_classes=[1], gamma_l=0.05, gamma_p=0.0,
        rng=np.random.default_rng(0), seed=0,
    )
    X_fit, y_fit = X_train[draw.train_indices], draw.train_semi_labels
    print(f"MNIST cell: {len(X_fit)} training images, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| precision | AE s/epoch | Deep SAD s/epoch | reference AE / Deep SAD | "
          f"test AUC after {args.epochs} + {args.epochs} epochs |")
    print("|---|---|---|---|---|")
    for precision in args.precision:
        est = DeepSAD(random_state=0, precision=precision, pretrain_epochs=args.epochs, epochs=args.epochs)
        # the two training loops only (as the reference's per-epoch figures): not the
        # centre initialisation or the scoring of the training set for the threshold
        _, pretrain_s, train_s = fit_ours_timed(est, SimpleNamespace(X_train=X_fit, semi_labels=y_fit))
        auc = roc_auc_score(draw.test_ground_truth, est.anomaly_score(X_test[draw.test_indices]))
        print(f"| {precision} | {pretrain_s / args.epochs:.3f} | {train_s / args.epochs:.3f} | 1.31 / 0.46 "
              f"| {auc:.4f} |", flush=True)

if __name__ == "__main__":
    main()
