"""fit_stacked: K estimators fitted together equal K plain fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepsad import DeepSAD, DeepSVDD, LeNetSpec, fit_stacked, load
from deepsad.errors import InvalidInputError

FAST = dict(pretrain=True, n_networks=1, epochs=3, pretrain_epochs=3, batch_size=64, lr_milestones=(2,), pretrain_lr_milestones=(2,))


def _draws(n_models, shape=(6,), n_samples=200):
    """Different training sets of one shape (as seeds of a grid cell draw them)."""
    rng = np.random.default_rng(0)
    datasets, labels = [], []
    for _ in range(n_models):
        X = rng.normal(size=(n_samples, *shape)).astype(np.float32)
        X[:10] += 3.0
        y = np.zeros(n_samples, dtype=np.int64)
        y[:3] = -1
        y[50:60] = 1
        datasets.append(X)
        labels.append(y)
    return datasets, labels


def _assert_same_fit(stacked, plain, X, rtol=1e-4, atol=1e-5):
    np.testing.assert_allclose(stacked.anomaly_score(X), plain.anomaly_score(X), rtol=rtol, atol=atol)
    np.testing.assert_allclose(stacked.center_, plain.center_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(stacked.loss_history_, plain.loss_history_, rtol=rtol)
    np.testing.assert_allclose(stacked.pretrain_loss_history_, plain.pretrain_loss_history_, rtol=rtol)
    assert stacked.threshold_ == pytest.approx(plain.threshold_, rel=rtol, abs=atol)
    assert stacked.n_labeled_anomaly_ == plain.n_labeled_anomaly_


@pytest.mark.parametrize("strategy", ["auto", "vmap"])
@pytest.mark.parametrize("detector", [DeepSAD, DeepSVDD], ids=["deepsad", "deepsvdd"])
def test_stacked_fits_equal_plain_fits_seed_by_seed(detector, strategy):
    datasets, labels = _draws(3)
    stacked = fit_stacked([detector(**FAST, random_state=s) for s in range(3)], datasets, labels, strategy=strategy)
    for seed, (model, X, y) in enumerate(zip(stacked, datasets, labels)):
        plain = detector(**FAST, random_state=seed).fit(X, y)
        _assert_same_fit(model, plain, X)
    # different seeds and data gave different models
    assert not np.allclose(stacked[0].anomaly_score(datasets[0]), stacked[1].anomaly_score(datasets[0]))


@pytest.mark.parametrize("strategy", ["auto", "vmap"])
def test_stacked_lenet_fits_equal_plain_fits(strategy):
    # three models: on CPU the grouped strategy trains the MNIST LeNet in pairs, so this
    # covers a full pair and a group of one
    datasets, labels = _draws(3, shape=(1, 28, 28), n_samples=96)
    datasets = [np.clip(X * 0.2 + 0.5, 0.0, 1.0) for X in datasets]  # pixels in [0, 1]
    params = dict(FAST, epochs=2, pretrain_epochs=2, network=LeNetSpec(variant="mnist"))
    stacked = fit_stacked([DeepSAD(**params, random_state=s) for s in (4, 5, 6)], datasets, labels, strategy=strategy)
    for seed, model, X, y in zip((4, 5, 6), stacked, datasets, labels):
        _assert_same_fit(model, DeepSAD(**params, random_state=seed).fit(X, y), X, rtol=1e-3, atol=1e-4)


def test_without_pretraining_and_with_shared_data_and_standardization():
    datasets, labels = _draws(1)
    X, y = datasets[0] * 5.0 + 2.0, labels[0]
    params = dict(FAST, pretrain=False, standardize=True)
    stacked = fit_stacked([DeepSAD(**params, random_state=s) for s in (0, 1)], [X, X], [y, y])
    for seed, model in zip((0, 1), stacked):
        assert model.autoencoder_ is None
        _assert_same_fit(model, DeepSAD(**params, random_state=seed).fit(X, y), X)


def test_a_stacked_fit_saves_and_loads(tmp_path):
    datasets, labels = _draws(2)
    model = fit_stacked([DeepSAD(**FAST, random_state=s) for s in (0, 1)], datasets, labels)[1]
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").anomaly_score(datasets[1]), model.anomaly_score(datasets[1]))


def test_unlabeled_default_y_is_all_unlabeled():
    datasets, labels = _draws(2)
    stacked = fit_stacked([DeepSAD(**FAST, random_state=s) for s in (0, 1)], datasets)
    plain = DeepSAD(**FAST, random_state=1).fit(datasets[1])
    _assert_same_fit(stacked[1], plain, datasets[1])


@pytest.mark.parametrize(
    ("estimators", "n_data", "message"),
    [
        ([], 0, "at least one estimator"),
        ([DeepSAD(**FAST), DeepSAD(**dict(FAST, lr=1e-3))], 2, "differs from estimator 0 in lr"),
        ([DeepSAD(**FAST), DeepSVDD(**FAST)], 2, "estimator 1 is a DeepSVDD"),
        ([DeepSVDD(**FAST, objective="soft-boundary") for _ in range(2)], 2, "soft-boundary"),
        ([DeepSAD(**FAST) for _ in range(2)], 3, "2 estimators, 3 datasets"),
        ([DeepSAD(**dict(FAST, eta=-1.0)) for _ in range(2)], 2, "eta"),
        ([DeepSAD(**FAST)] * 2, 2, "same estimator appears twice"),
    ],
    ids=["empty", "settings", "classes", "soft-boundary", "lengths", "bad-param", "same-object"],
)
def test_bad_requests_name_the_problem(estimators, n_data, message):
    datasets, _ = _draws(max(n_data, 1))
    with pytest.raises(InvalidInputError, match=message):
        fit_stacked(estimators, datasets[:n_data])


def test_training_sets_of_different_shapes_are_refused():
    a, _ = _draws(1, n_samples=200)
    b, _ = _draws(1, n_samples=199)
    with pytest.raises(InvalidInputError, match="one shape"):
        fit_stacked([DeepSAD(**FAST, random_state=s) for s in (0, 1)], [a[0], b[0]])


def test_bad_data_is_refused_as_by_fit():
    datasets, labels = _draws(2)
    datasets[1] = datasets[1].copy()
    datasets[1][5, 2] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        fit_stacked([DeepSAD(**FAST, random_state=s) for s in (0, 1)], datasets, labels)


def test_given_autoencoders_replace_pretraining_as_in_fit():
    datasets, labels = _draws(2)
    # with the labels: Deep SAD's "auto" network depends on whether any sample is a labeled anomaly
    pretrained = [DeepSAD(**dict(FAST, epochs=0), random_state=s).fit(X, y).autoencoder_
                  for s, X, y in zip((0, 1), datasets, labels)]
    stacked = fit_stacked([DeepSAD(**FAST, random_state=s) for s in (0, 1)], datasets, labels, autoencoders=pretrained)
    for seed, model, X, y, ae in zip((0, 1), stacked, datasets, labels, pretrained):
        assert model.autoencoder_ is ae and model.autoencoder_reused_
        plain = DeepSAD(**FAST, random_state=seed).fit(X, y)  # pretrains the same autoencoder itself
        np.testing.assert_allclose(model.anomaly_score(X), plain.anomaly_score(X), rtol=1e-4, atol=1e-5)
    with pytest.raises(InvalidInputError, match="2 estimators and 1 autoencoders"):
        fit_stacked([DeepSAD(**FAST, random_state=s) for s in (0, 1)], datasets, labels, autoencoders=pretrained[:1])


def test_small_mlps_are_stacked_on_one_thread_under_tuned_threads(monkeypatch):
    import torch

    import deepsad.detectors.deep_base as deep_base
    import deepsad.training.pretraining as pretraining
    from deepsad.training import tuned_threads

    seen = []
    original = deep_base.train_stacked

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    # the stacked loop runs twice: pretraining (pretrain_autoencoders) and phi's training
    monkeypatch.setattr(pretraining, "train_stacked", spy)
    monkeypatch.setattr(deep_base, "train_stacked", spy)
    datasets, labels = _draws(2)
    outer = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fit_stacked([DeepSAD(**FAST, random_state=s) for s in (0, 1)], datasets, labels)
        assert seen == [2, 2] and torch.get_num_threads() == 2  # the caller's setting
        seen.clear()
        with tuned_threads():
            fit_stacked([DeepSAD(**FAST, random_state=s) for s in (0, 1)], datasets, labels)
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(outer)


class _UserEncoder(torch.nn.Module):
    """A network deepsad has no grouped form for: stacking falls back to vmap."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(6, 3, bias=False)

    def forward(self, x):
        return self.linear(x)


def test_a_user_network_is_stacked_with_vmap_and_grouped_is_refused_for_it():
    datasets, labels = _draws(2)
    params = dict(FAST, pretrain=False, network=_UserEncoder())
    stacked = fit_stacked([DeepSAD(**params, random_state=s) for s in (0, 1)], datasets, labels)
    for seed, model, X, y in zip((0, 1), stacked, datasets, labels):
        _assert_same_fit(model, DeepSAD(**params, random_state=seed).fit(X, y), X)
    with pytest.raises(InvalidInputError, match="strategy='grouped' needs deepsad's own networks"):
        fit_stacked([DeepSAD(**params, random_state=s) for s in (0, 1)], datasets, labels, strategy="grouped")


def test_an_unknown_strategy_is_refused():
    datasets, labels = _draws(2)
    with pytest.raises(InvalidInputError, match="strategy must be one of"):
        fit_stacked([DeepSAD(**FAST, random_state=s) for s in (0, 1)], datasets, labels, strategy="fastest")
