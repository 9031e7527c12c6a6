"""Stacked training (several models at once) gives each model what the plain loop gives it."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from deepsad.errors import InvalidInputError, TrainingError
from deepsad.models import LeNetSpec, MLPSpec, build_encoder, init_weights_
from deepsad.training import OptimizerConfig, deep_sad_loss, make_generator, squared_distance, train
from deepsad.training.stacked import train_stacked

CPU = torch.device("cpu")
CONFIG = OptimizerConfig(epochs=3, lr=1e-3, milestones=(2,), weight_decay=1e-6, batch_size=64)


def _loss(output, tensors, indices):
    _, labels, center = tensors
    return deep_sad_loss(squared_distance(output, center), labels[indices], eta=1.0, eps=1e-6)


def _models(spec, shape, n_models):
    models = []
    for k in range(n_models):
        model = build_encoder(spec, shape)
        init_weights_(model, make_generator(k))
        models.append(model)
    return models


def _inputs(shape, rep_dim, n_samples, n_models):
    rng = torch.Generator().manual_seed(1)
    return [
        (
            torch.randn(n_samples, *shape, generator=rng),
            torch.randint(-1, 2, (n_samples,), generator=rng),
            torch.randn(rep_dim, generator=rng),
        )
        for _ in range(n_models)
    ]


def _train_each(models, inputs, n_samples, config):
    histories = []
    for k, (model, tensors) in enumerate(zip(models, inputs)):
        histories.append(
            train(model, lambda idx, m=model, t=tensors: _loss(m(t[0][idx]), t, idx), n_samples, config,
                  generator=make_generator(100 + k), device=CPU)
        )
    return histories


@pytest.mark.parametrize("strategy", ["grouped", "vmap"])
@pytest.mark.parametrize(
    ("spec", "shape", "atol"),
    [(MLPSpec(hidden_sizes=(32, 16), rep_dim=8), (21,), 1e-6), (LeNetSpec(variant="mnist"), (1, 28, 28), 1e-5)],
    ids=["mlp", "lenet"],
)
def test_each_stacked_model_matches_its_plain_training(spec, shape, atol, strategy):
    n_models, n_samples = 3, 161  # 161 = two full batches of 64 and a ragged one
    rep_dim = build_encoder(spec, shape).rep_dim
    models = _models(spec, shape, n_models)
    plain = [copy.deepcopy(m) for m in models]
    inputs = _inputs(shape, rep_dim, n_samples, n_models)

    expected = _train_each(plain, inputs, n_samples, CONFIG)
    got = train_stacked(models, _loss, inputs, n_samples, CONFIG,
                        generators=[make_generator(100 + k) for k in range(n_models)], device=CPU, strategy=strategy)

    for k in range(n_models):
        assert got[k] == pytest.approx(expected[k], rel=1e-5)
        want, have = plain[k].state_dict(), models[k].state_dict()
        assert want.keys() == have.keys()
        for name in want:
            if want[name].dtype.is_floating_point:
                torch.testing.assert_close(have[name], want[name], atol=atol, rtol=1e-4, msg=name)
            else:  # BatchNorm's batch counter
                assert int(have[name]) == int(want[name]), name
    # the models really trained, and trained differently
    assert not torch.equal(models[0].state_dict()[next(iter(want))], models[1].state_dict()[next(iter(want))])


def test_zero_epochs_leaves_the_models_untouched():
    models = _models(MLPSpec(hidden_sizes=(8,), rep_dim=4), (5,), 2)
    before = [copy.deepcopy(m.state_dict()) for m in models]
    inputs = _inputs((5,), 4, 40, 2)
    config = OptimizerConfig(epochs=0, lr=1e-3, milestones=(), weight_decay=0.0, batch_size=16)
    assert train_stacked(models, _loss, inputs, 40, config, generators=[make_generator(0)] * 2, device=CPU) == [[], []]
    for model, state in zip(models, before):
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, state[name])


def test_models_of_different_architectures_are_refused():
    models = _models(MLPSpec(hidden_sizes=(8,), rep_dim=4), (5,), 1) + _models(MLPSpec(hidden_sizes=(9,), rep_dim=4), (5,), 1)
    with pytest.raises(InvalidInputError, match="model 1 differs"):
        train_stacked(models, _loss, _inputs((5,), 4, 40, 2), 40, CONFIG, generators=[make_generator(0)] * 2, device=CPU)


def test_counts_must_agree():
    models = _models(MLPSpec(hidden_sizes=(8,), rep_dim=4), (5,), 2)
    with pytest.raises(InvalidInputError, match="2 models, 1 input tuples and 2 generators"):
        train_stacked(models, _loss, _inputs((5,), 4, 40, 1), 40, CONFIG, generators=[make_generator(0)] * 2, device=CPU)
    with pytest.raises(InvalidInputError, match="at least one model"):
        train_stacked([], _loss, [], 40, CONFIG, generators=[], device=CPU)


def test_a_diverging_model_is_named():
    models = _models(MLPSpec(hidden_sizes=(8,), rep_dim=4), (5,), 3)
    inputs = _inputs((5,), 4, 40, 3)
    X, labels, center = inputs[1]
    inputs[1] = (X.clone().fill_(math.inf), labels, center)
    with pytest.raises(TrainingError, match=r"model\(s\) \[1\]"):
        train_stacked(models, _loss, inputs, 40, CONFIG, generators=[make_generator(k) for k in range(3)], device=CPU)


def test_a_diverging_model_in_a_later_group_is_named_by_its_place_in_the_stack():
    # the MNIST LeNet trains in pairs on CPU: model 2 is the first of the second pair
    spec, shape = LeNetSpec(variant="mnist"), (1, 28, 28)
    models = _models(spec, shape, 3)
    inputs = _inputs(shape, 32, 40, 3)
    X, labels, center = inputs[2]
    inputs[2] = (X.clone().fill_(math.inf), labels, center)
    with pytest.raises(TrainingError, match=r"model\(s\) \[2\]"):
        train_stacked(models, _loss, inputs, 40, CONFIG, generators=[make_generator(k) for k in range(3)], device=CPU)


def test_strategy_is_checked():
    models = _models(MLPSpec(hidden_sizes=(8,), rep_dim=4), (5,), 2)
    with pytest.raises(InvalidInputError, match="strategy must be one of"):
        train_stacked(models, _loss, _inputs((5,), 4, 40, 2), 40, CONFIG, generators=[make_generator(0)] * 2,
                      device=CPU, strategy="fast")
    users = [torch.nn.Linear(5, 4, bias=False) for _ in range(2)]
    with pytest.raises(InvalidInputError, match="strategy='grouped'"):
        train_stacked(users, _loss, _inputs((5,), 4, 40, 2), 40, CONFIG, generators=[make_generator(0)] * 2,
                      device=CPU, strategy="grouped")
