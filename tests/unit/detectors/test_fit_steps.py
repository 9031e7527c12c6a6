"""The public fit steps of BaseDeepDetector: plan_fit, pretrain_plans, train_plans, pretrain_autoencoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepsad import DeepSAD, DeepSVDD
from deepsad.detectors.deep_base import pretrain_plans, train_plans
from deepsad.detectors.stacked import fit_stacked, pretrain_stacked
from deepsad.errors import InvalidInputError

FAST = dict(pretrain=True, n_networks=1, epochs=2, pretrain_epochs=2, batch_size=64, lr_milestones=(1,),
            pretrain_lr_milestones=(1,))


def _data(seed=0, n=150):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = np.zeros(n, dtype=np.int64)
    y[:3] = -1
    y[40:50] = 1
    return X, y


def _same_weights(a, b):
    for (name, x), (_, z) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, z), name


def test_the_steps_are_fit():
    X, y = _data()
    stepped = DeepSAD(**FAST, random_state=3)
    plan = stepped.plan_fit(X, y)
    assert plan.n_networks == 1 and plan.pretrains and plan.training_shape == X.shape
    pretrain_plans([plan])
    train_plans([plan])
    plain = DeepSAD(**FAST, random_state=3).fit(X, y)
    _same_weights(stepped.network_, plain.network_)
    np.testing.assert_array_equal(stepped.anomaly_score(X), plain.anomaly_score(X))
    assert stepped.loss_history_ == plain.loss_history_
    assert stepped.pretrain_loss_history_ == plain.pretrain_loss_history_


def test_pretrain_autoencoder_is_the_autoencoder_fit_starts_from():
    X, y = _data()
    autoencoder = DeepSAD(**FAST, random_state=5).pretrain_autoencoder(X, y)
    plain = DeepSAD(**FAST, random_state=5).fit(X, y)
    _same_weights(autoencoder, plain.autoencoder_)
    reused = DeepSAD(**FAST, random_state=5).fit(X, y, autoencoder=autoencoder)
    np.testing.assert_array_equal(reused.anomaly_score(X), plain.anomaly_score(X))
    assert reused.autoencoder_reused_


def test_pretrain_autoencoder_refuses_what_does_not_pretrain_one():
    X, _ = _data()
    with pytest.raises(InvalidInputError, match="does not pretrain"):
        DeepSVDD(**dict(FAST, pretrain=False)).pretrain_autoencoder(X)
    with pytest.raises(InvalidInputError, match="pretrains its own"):
        DeepSVDD(**dict(FAST, n_networks=2)).pretrain_autoencoder(X)


def test_pretrain_stacked_is_the_pretraining_of_fit_stacked():
    datasets = [_data(seed)[0] for seed in range(3)]
    autoencoders = pretrain_stacked([DeepSVDD(**FAST, random_state=s) for s in range(3)], datasets)
    fitted = fit_stacked([DeepSVDD(**FAST, random_state=s) for s in range(3)], datasets)
    for autoencoder, model in zip(autoencoders, fitted):
        _same_weights(autoencoder, model.autoencoder_)
    with pytest.raises(InvalidInputError, match="pretrain"):
        pretrain_stacked([DeepSVDD(**dict(FAST, pretrain=False), random_state=s) for s in range(2)], datasets[:2])
