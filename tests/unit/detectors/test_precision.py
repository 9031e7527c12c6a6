"""precision="bfloat16": training under bfloat16 autocast, float32 weights and scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from deepsad import DeepSAD, DeepSVDD, LeNetSpec, fit_stacked, load
from deepsad.data import load_images
from deepsad.data.scenarios import sample_image_scenario
from deepsad.errors import InvalidInputError
from deepsad.experiments.runner import autoencoder_settings
from deepsad.training import OptimizerConfig, SlowBFloat16Warning, train, training_autocast

from helpers import require_file

# this module trains in bfloat16 on whatever CPU runs the tests; the warning has its own tests
pytestmark = pytest.mark.filterwarnings("ignore::deepsad.training.SlowBFloat16Warning")

FAST = dict(pretrain=True, n_networks=1, epochs=3, pretrain_epochs=3, batch_size=64, lr_milestones=(2,), pretrain_lr_milestones=(2,), device="cpu")


def _tabular(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:10] += 3.0
    y = np.zeros(n, dtype=np.int64)
    y[:3] = -1
    return X, y


def test_the_training_step_runs_its_products_in_bfloat16():
    seen = []
    linear = torch.nn.Linear(4, 2, bias=False)

    def batch_loss(indices):
        out = linear(torch.ones(len(indices), 4))
        seen.append(out.dtype)
        return out.float().pow(2).mean()

    config = OptimizerConfig(epochs=1, lr=1e-3, milestones=(), weight_decay=0.0, batch_size=4, precision="bfloat16")
    train(linear, batch_loss, 8, config, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert seen == [torch.bfloat16, torch.bfloat16]
    assert linear.weight.dtype == torch.float32  # the weights stay float32
    with training_autocast("float32", torch.device("cpu")):
        assert linear(torch.ones(1, 4)).dtype == torch.float32


@pytest.mark.parametrize("detector", [DeepSAD, DeepSVDD], ids=["deepsad", "deepsvdd"])
def test_a_bfloat16_fit_differs_slightly_and_scores_in_float32(detector):
    X, y = _tabular()
    exact = detector(**FAST, random_state=0).fit(X, y)
    mixed = detector(**FAST, precision="bfloat16", random_state=0).fit(X, y)
    # bfloat16 keeps 8 significant bits: the losses move, but only a little
    assert mixed.loss_history_ != exact.loss_history_
    np.testing.assert_allclose(mixed.pretrain_loss_history_, exact.pretrain_loss_history_, rtol=0.05)
    scores = mixed.anomaly_score(X)
    assert scores.dtype == np.float64 and np.isfinite(scores).all()
    assert next(mixed.network_.parameters()).dtype == torch.float32


def test_bad_precision_values_are_refused_by_name():
    X, y = _tabular()
    for bad in ("float16", "bf16", None, 16):
        with pytest.raises(InvalidInputError, match="precision"):
            DeepSAD(**FAST, precision=bad).fit(X, y)


def test_precision_is_saved_and_keys_the_autoencoder_cache(tmp_path):
    X, y = _tabular()
    model = DeepSAD(**FAST, precision="bfloat16", random_state=0).fit(X, y)
    model.save(tmp_path / "m")
    restored = load(tmp_path / "m")
    assert restored.get_params()["precision"] == "bfloat16"
    np.testing.assert_array_equal(restored.anomaly_score(X), model.anomaly_score(X))
    assert autoencoder_settings(model, X.shape[1:])["precision"] == "bfloat16"
    # float32 autoencoders keep the cache keys they had before the parameter existed
    assert "precision" not in autoencoder_settings(DeepSAD(**FAST), X.shape[1:])


def test_fit_stacked_refuses_bfloat16_by_name():
    datasets, labels = zip(*(_tabular(seed=s) for s in (0, 1)))
    estimators = [DeepSAD(**FAST, precision="bfloat16", random_state=s) for s in (0, 1)]
    with pytest.raises(InvalidInputError, match="float32 only.*bfloat16"):
        fit_stacked(estimators, list(datasets), list(labels))


@pytest.mark.slow
def test_bfloat16_lenet_on_real_mnist_ranks_like_float32(data_root):
    require_file(data_root / "mnist" / "train-images-idx3-ubyte.gz")
    X_train, c_train = load_images("mnist", "train", data_root)
    X_test, c_test = load_images("mnist", "test", data_root)
    draw = sample_image_scenario(c_train, c_test, normal_classes=[0], known_anomaly_classes=[1], gamma_l=0.05,
                                 gamma_p=0.0, rng=np.random.default_rng(0), seed=0)
    train_idx = draw.train_indices[:1200]
    test_idx = np.random.default_rng(1).choice(len(c_test), 2000, replace=False)
    params = dict(FAST, epochs=4, pretrain_epochs=4, batch_size=200, lr=1e-3, pretrain_lr=1e-3,
                  network=LeNetSpec(variant="mnist"))
    aucs = {}
    for precision in ("float32", "bfloat16"):
        model = DeepSAD(**params, precision=precision, random_state=0)
        model.fit(X_train[train_idx], draw.train_semi_labels[:1200])
        aucs[precision] = roc_auc_score(draw.test_ground_truth[test_idx], model.anomaly_score(X_test[test_idx]))
    assert aucs["float32"] > 0.8, aucs  # a working Deep SAD on normal 0 vs the rest
    assert abs(aucs["bfloat16"] - aucs["float32"]) < 0.03, aucs


def test_train_stacked_refuses_bfloat16():
    from deepsad.training.stacked import train_stacked

    config = OptimizerConfig(epochs=1, lr=1e-3, milestones=(), weight_decay=0.0, batch_size=4, precision="bfloat16")
    modules = [torch.nn.Linear(2, 1, bias=False) for _ in range(2)]
    with pytest.raises(InvalidInputError, match="float32 only"):
        train_stacked(modules, lambda out, t, i: out.pow(2).mean(), [(torch.ones(4, 2),)] * 2, 4, config,
                      generators=[torch.Generator(), torch.Generator()], device=torch.device("cpu"))


@pytest.mark.parametrize("capability, warns", [("AVX2", True), ("DEFAULT", True), ("AVX512", False)])
def test_bfloat16_on_a_cpu_without_avx512_warns_that_it_is_slow(monkeypatch, capability, warns):
    import warnings

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with training_autocast("bfloat16", torch.device("cpu")):
            pass
        with training_autocast("float32", torch.device("cpu")):  # float32 never warns
            pass
    slow = [w for w in caught if issubclass(w.category, SlowBFloat16Warning)]
    assert len(slow) == int(warns)
    if warns:
        assert capability in str(slow[0].message) and "precision='float32'" in str(slow[0].message)
