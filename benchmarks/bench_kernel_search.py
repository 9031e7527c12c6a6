"""The paper's OC-SVM hyperparameter search with and without a shared Gram matrix.

One task of the OC-SVM: the (gamma, nu) grid of Appendix E (10 x 5 candidates) fitted
on an ODDS training set (Table 6: stratified 60:40, gamma_l = .01, standardized) or on
the flattened pixels of an MNIST / Fashion-MNIST / CIFAR-10 cell of scenario (i)
(normal class 0, known anomaly class 1, gamma_l = .05: Tables 3-5), and scored on the
paper's 10 % test subset, once with libsvm computing the kernel itself
(``share_gram=False``) and once with the candidates sharing one Gram matrix
(:class:`deepsad.baselines.GramMemo`). Prints wall time, the chosen parameters, the
test AUC of the choice and the largest AUC difference over the candidates (sharing
must not change the results beyond rounding).

    python benchmarks/bench_kernel_search.py [--data-root D] [--dataset shuttle|mnist|...]
        [--max-train N] [--seed 0] [--threads T]

``--max-train`` keeps the first N training samples (shuttle's 27,351 take ~15 min per
plain search on one core).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from deepsad.baselines import OCSVM, PAPER_OCSVM_GRID, paper_test_subset, select_hyperparameters
from deepsad.data import load_images, load_odds, resolve_data_root
from deepsad.data.preprocessing import Standardizer
from deepsad.data.scenarios import sample_image_scenario, sample_odds_scenario

IMAGE_DATASETS = ("mnist", "fashion-mnist", "cifar10")


def _split(root, name: str, seed: int, max_train: int | None):
    rng = np.random.default_rng(seed)
    if name in IMAGE_DATASETS:
        X_train, c_train = load_images(name, "train", root)
        X_test, c_test = load_images(name, "test", root)
        draw = sample_image_scenario(c_train, c_test, normal_classes=[0], known_anomaly_classes=[1],
                                     gamma_l=0.05, gamma_p=0.0, rng=rng, seed=seed)
        train = draw.train_indices if max_train is None else draw.train_indices[:max_train]
        flat = (lambda images: images.reshape(len(images), -1).astype(np.float64))  # raw pixels, as the paper
        return flat(X_train[train]), flat(X_test), np.asarray(draw.test_ground_truth)
    X, truth = load_odds(name, root)
    draw = sample_odds_scenario(truth, gamma_l=0.01, rng=rng, seed=seed)
    train = draw.train_indices if max_train is None else draw.train_indices[:max_train]
    scaler = Standardizer().fit(X[train])
    return scaler.transform(X[train]), scaler.transform(X[draw.test_indices]), np.asarray(draw.test_ground_truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--dataset", default="shuttle")
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for the Gram matrix (libsvm itself runs on one); default: the environment's")
    args = parser.parse_args()
    if args.threads:
        threadpool_limits(args.threads)
    X_train, X_test, y_test = _split(resolve_data_root(args.data_root), args.dataset, args.seed, args.max_train)
    subset = paper_test_subset(y_test, fraction=0.1, random_state=args.seed).select_indices
    print(f"OC-SVM search, {args.dataset}: {X_train.shape[0]} training samples x {X_train.shape[1]} features, "
          f"{subset.size} selection samples, OC-SVM grid 10 gammas x 5 nus; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {platform.processor() or platform.machine()}")
    print("| Gram matrix | wall s | candidates/min | chosen (gamma, nu) | test AUC of the choice |")
    print("|---|---|---|---|---|")
    results = {}
    for share in (False, True):
        started = time.perf_counter()
        result = select_hyperparameters(OCSVM, PAPER_OCSVM_GRID, X_train, None, X_test[subset], y_test[subset],
                                        protocol="paper-test-subset", share_gram=share)
        seconds = time.perf_counter() - started
        auc = roc_auc_score(y_test, result.best_estimator.anomaly_score(X_test))
        results[share] = result
        chosen = (result.best_params["gamma"], result.best_params["nu"])
        print(f"| {'shared' if share else 'libsvm computes'} | {seconds:.1f} | {60 * 50 / seconds:.1f} | "
              f"{chosen} | {auc:.4f} |", flush=True)
    differences = [abs(a["auc"] - b["auc"]) for a, b in
                   zip(results[False].scores_per_candidate, results[True].scores_per_candidate)]
    print(f"largest |AUC difference| over the 50 candidates on the selection set: {max(differences):.1e}")


if __name__ == "__main__":
    main()
