"""The real files under the data root: facts from PROVENANCE.md and the paper."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepsad.data import load_images, load_labels, load_odds, sample_image_scenario, sample_odds_scenario

from helpers import require_file

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
ODDS = {
    "arrhythmia": ((452, 274), 66),
    "cardio": ((1831, 21), 176),
    "satellite": ((6435, 36), 2036),
    "satimage-2": ((5803, 36), 71),
    "shuttle": ((49097, 9), 3511),
    "thyroid": ((3772, 6), 93),
}


@pytest.fixture(scope="module")
def mnist(data_root):
    require_file(data_root / "mnist" / "train-images-idx3-ubyte.gz")
    require_file(data_root / "mnist" / "t10k-images-idx3-ubyte.gz")
    return load_images("mnist", "train", data_root), load_images("mnist", "test", data_root)


def test_mnist_counts_shapes_pixels(mnist):
    (X, y), (Xt, yt) = mnist
    assert X.shape == (60000, 1, 28, 28) and Xt.shape == (10000, 1, 28, 28)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == MNIST_TRAIN and np.bincount(yt).tolist() == MNIST_TEST
    assert X.min() == 0.0 and X.max() == 1.0 and Xt.min() == 0.0 and Xt.max() == 1.0
    assert abs(float(X.mean(dtype=np.float64)) - 0.1307) < 1e-4


def test_fashion_mnist(data_root):
    require_file(data_root / "fashion_mnist" / "train-images-idx3-ubyte.gz")
    X, y = load_images("fmnist", "train", data_root)
    assert X.shape == (60000, 1, 28, 28) and np.bincount(y).tolist() == [6000] * 10
    assert abs(float(X.mean(dtype=np.float64)) - 0.2860) < 1e-4
    assert np.bincount(load_labels("fmnist", "test", data_root)).tolist() == [1000] * 10


def test_cifar10_channel_means(data_root):
    folder = data_root / "cifar10" / "cifar-10-batches-py"
    require_file(folder / "data_batch_5")
    X, y = load_images("cifar10", "train", data_root)
    assert X.shape == (50000, 3, 32, 32) and X.dtype == np.float32
    means = X.mean(axis=(0, 2, 3), dtype=np.float64)
    assert np.allclose(means, [0.4914, 0.4822, 0.4465], atol=1e-3)
    assert np.bincount(y).tolist() == [5000] * 10
    assert y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    require_file(folder / "test_batch")
    _, yt = load_images("cifar10", "test", data_root)
    assert yt[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]


@pytest.mark.parametrize("name", sorted(ODDS))
def test_odds_shapes_and_outliers(data_root, name):
    require_file(data_root / "odds" / f"{name}.mat")
    X, y = load_odds(name, data_root)
    shape, outliers = ODDS[name]
    assert X.shape == shape and X.dtype == np.float64 and y.dtype == np.int64
    assert int(y.sum()) == outliers and set(np.unique(y).tolist()) == {0, 1}
    draw = sample_odds_scenario(y, gamma_l=0.01, gamma_p=0.0, rng=np.random.default_rng(0), seed=0)
    assert np.intersect1d(draw.train_indices, draw.test_indices).size == 0
    split = draw.summary["split"]
    assert split["test_anomaly"] + split["train_anomaly"] == outliers
    assert abs(split["test_normal"] / (shape[0] - outliers) - 0.4) < 0.01


def test_mnist_paper_scenario_counts(data_root, capsys):
    require_file(data_root / "mnist" / "train-labels-idx1-ubyte.gz")
    train = load_labels("mnist", "train", data_root)
    test = load_labels("mnist", "test", data_root)
    draw = sample_image_scenario(train, test, normal_classes=0, known_anomaly_classes=[1], gamma_l=0.05,
                                 gamma_p=0.1, rng=np.random.default_rng(0), seed=0)
    with capsys.disabled():
        print("\nMNIST normal 0, known 1, gamma_l .05, gamma_p .1:", json.dumps(draw.summary["train"]))
    t = draw.summary["train"]
    # n_un = 5923; pollution R(.1 * 5923 / .9) = 658; n = 6581; m = R(.05 * 6581 / .95) = 346
    assert t["unlabeled_normal"] == 5923 and t["pollution"] == 658 and t["labeled_anomaly"] == 346
    assert t["total"] == 6927 and t["labeled_normal"] == 0
    assert set(train[draw.train_indices[draw.train_semi_labels == -1]].tolist()) == {1}
    assert draw.summary["test"] == {"total": 10000, "normal": 980, "anomaly": 9020}
