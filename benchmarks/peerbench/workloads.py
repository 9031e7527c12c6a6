"""The three workloads of the peer comparison, built from the real data under a data root.

* ``cardio``: ODDS cardio, the paper's protocol: stratified disjoint 60:40 split,
  gamma_l = 0.01 labeled anomalies, gamma_p = 0, features standardized with training
  statistics; MLP 32-16-8.
* ``mnist``: normal class 0, known anomaly class 1, gamma_l = 0.05, gamma_p = 0; test =
  the official 10000 test images; LeNet-MNIST.
* ``cifar10``: normal class 0 (airplane), known anomaly class 1 (automobile),
  gamma_l = 0.05, gamma_p = 0; test = the 1000 test images stored here (the first 1000
  of the official test set); LeNet-CIFAR.

A workload is built from a seed (which draws the split / the labeled anomalies) and an
optional subset size (``--quick``). Every method gets exactly the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

#: Per dataset: what it is, the paper's network for it, and the peers' MLP stand-in.
DATASETS = {
    "cardio": {
        "kind": "odds",
        "gamma_l": 0.01,
        "network": "MLP 21-32-16-8",
        "mlp_hidden": (32, 16),
        "rep_dim": 8,
    },
    "mnist": {
        "kind": "images",
        "normal": 0,
        "known_anomaly": 1,
        "gamma_l": 0.05,
        "network": "LeNet-MNIST (conv 8, conv 4, rep 32)",
        # the peers have no convolutional network: an MLP on flattened pixels with the
        # LeNet's representation size stands in (our choice, stated in the report)
        "mlp_hidden": (128, 64),
        "rep_dim": 32,
        "lenet": "mnist",
    },
    "cifar10": {
        "kind": "images",
        "normal": 0,
        "known_anomaly": 1,
        "gamma_l": 0.05,
        "network": "LeNet-CIFAR (conv 32, 64, 128, dense 128)",
        "mlp_hidden": (512, 256),
        "rep_dim": 128,
        "lenet": "cifar10",
    },
}


@dataclass
class Workload:
    """Training and test arrays of one draw, shared by all methods."""

    name: str
    seed: int
    X_train: np.ndarray  # raw for cardio (ours standardizes inside fit), [0, 1] images otherwise
    semi_labels: np.ndarray  # +1 / -1 / 0 (deepsad convention)
    X_test: np.ndarray
    y_test: np.ndarray  # 1 = anomaly
    summary: dict = field(default_factory=dict)

    @property
    def is_images(self) -> bool:
        return self.X_train.ndim == 4

    def standardizer(self) -> tuple[np.ndarray, np.ndarray]:
        """Training mean and scale exactly as ``DeepSAD(standardize=True)`` computes them."""
        mean = self.X_train.mean(axis=0, dtype=np.float64)
        scale = self.X_train.std(axis=0, dtype=np.float64)
        scale[scale == 0] = 1.0
        return mean.astype(np.float32), scale.astype(np.float32)

    def for_peers(self, X: np.ndarray) -> np.ndarray:
        """What the peers are given: standardized tabular rows / flattened images, float32."""
        if self.is_images:
            return X.reshape(X.shape[0], -1)
        mean, scale = self.standardizer()
        return ((X - mean) / scale).astype(np.float32)


def _subset(rng: np.random.Generator, n: int, size: int | None) -> np.ndarray:
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def load_workload(
    name: str, data_root, seed: int, *, train_subset: int | None = None, test_subset: int | None = None
) -> Workload:
    """Draw the workload ``name`` with ``seed``; optional subsets keep the label mix of the draw."""
    from deepsad.data import load_images, load_odds, resolve_data_root
    from deepsad.data.scenarios import sample_image_scenario, sample_odds_scenario

    root = resolve_data_root(data_root)
    info = DATASETS[name]
    rng = np.random.default_rng(seed)
    if info["kind"] == "odds":
        X, truth = load_odds(name, root)
        draw = sample_odds_scenario(truth, gamma_l=info["gamma_l"], rng=rng, seed=seed)
        X_train, X_test = X[draw.train_indices].astype(np.float32), X[draw.test_indices].astype(np.float32)
    else:
        X_tr, c_tr = load_images(name, "train", root)
        X_te, c_te = load_images(name, "test", root)
        draw = sample_image_scenario(
            c_tr, c_te, normal_classes=[info["normal"]], known_anomaly_classes=[info["known_anomaly"]],
            gamma_l=info["gamma_l"], gamma_p=0.0, rng=rng, seed=seed,
        )
        X_train, X_test = X_tr[draw.train_indices], X_te[draw.test_indices]
        del X_tr, X_te  # the full training split (600 MiB for CIFAR) need not stay resident
    semi, y_test = draw.train_semi_labels, draw.test_ground_truth
    keep = _subset(rng, len(X_train), train_subset)
    keep_test = _subset(rng, len(X_test), test_subset)
    X_train, semi = np.ascontiguousarray(X_train[keep]), semi[keep]
    X_test, y_test = np.ascontiguousarray(X_test[keep_test]), y_test[keep_test]
    summary = {
        "n_train": len(X_train),
        "n_labeled_anomaly": int((semi == -1).sum()),
        "n_test": len(X_test),
        "n_test_anomaly": int(y_test.sum()),
    }
    return Workload(name, seed, X_train, semi.astype(np.int8), X_test, y_test.astype(np.int8), summary)


def scoring_rows(workload: Workload, n_rows: int) -> np.ndarray:
    """Rows for the scoring-throughput measurement.

    Tabular: ``n_rows`` synthetic standard-normal rows (throughput does not depend on the
    values). Images: the test images tiled up to ``n_rows``.
    """
    if not workload.is_images:
        rng = np.random.default_rng(12345)
        return rng.standard_normal((n_rows, workload.X_train.shape[1]), dtype=np.float32)
    reps = -(-n_rows // len(workload.X_test))
    return np.ascontiguousarray(np.concatenate([workload.X_test] * reps)[:n_rows])


def warmup_workload(workload: Workload, batch_size: int) -> Workload:
    """A small slice of ``workload`` (both label kinds, both test classes) for an untimed first fit.

    The first fit in a fresh process pays one-off costs (lazy imports inside torch,
    allocator and kernel warm-up; about a second here) that belong to no epoch; every
    method gets the same warm-up before its timed fit.
    """
    unlabeled = np.flatnonzero(workload.semi_labels == 0)[: 2 * batch_size]
    labeled = np.flatnonzero(workload.semi_labels != 0)[:10]
    keep = np.sort(np.concatenate([unlabeled, labeled]))
    test = np.sort(np.concatenate([np.flatnonzero(workload.y_test == 0)[:100], np.flatnonzero(workload.y_test == 1)[:100]]))
    return replace(
        workload,
        X_train=workload.X_train[keep],
        semi_labels=workload.semi_labels[keep],
        X_test=workload.X_test[test],
        y_test=workload.y_test[test],
        summary=dict(workload.summary, n_train=len(keep), n_test=len(test)),
    )
