"""The generic trainer: batching, schedule, reproducibility and divergence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepsad.errors import TrainingError
from deepsad.training import OptimizerConfig, batch_slices, make_generator, train


def test_batches_cover_every_sample_once():
    bounds = batch_slices(1001, 200)
    covered = [i for start, stop in bounds for i in range(start, stop)]
    assert covered == list(range(1001))


def test_a_trailing_single_sample_is_merged_into_the_previous_batch():
    assert batch_slices(401, 200) == [(0, 200), (200, 401)]
    assert batch_slices(1, 200) == [(0, 1)]


def _regression_problem():
    generator = make_generator(0)
    X = torch.randn(300, 3, generator=generator)
    target = X @ torch.tensor([1.0, -2.0, 0.5])
    return X, target


def _fit(seed: int, epochs: int = 20, lr: float = 0.05):
    X, target = _regression_problem()
    model = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    config = OptimizerConfig(epochs=epochs, lr=lr, milestones=(10,), weight_decay=0.0, batch_size=64)

    def loss(indices):
        return ((model(X[indices]).squeeze(1) - target[indices]) ** 2).mean()

    history = train(model, loss, 300, config, generator=make_generator(seed), device=torch.device("cpu"))
    return model, history


def test_training_decreases_the_loss_and_records_each_epoch():
    model, history = _fit(0)
    assert len(history) == 20
    assert history[-1] < 0.05 * history[0]
    assert torch.allclose(model.weight, torch.tensor([[1.0, -2.0, 0.5]]), atol=0.1)


def test_same_seed_same_result_different_seed_different_order():
    assert _fit(1)[1] == _fit(1)[1]
    assert _fit(1)[1] != _fit(2)[1]


def test_learning_rate_drops_at_the_milestone():
    X, target = _regression_problem()
    model = nn.Linear(3, 1, bias=False)
    seen = []
    config = OptimizerConfig(epochs=3, lr=1.0, milestones=(1, 2), weight_decay=0.0, batch_size=300)
    optimizer_lrs = []

    def loss(indices):
        seen.append(len(indices))
        return (model(X[indices]) ** 2).mean()

    original_step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        optimizer_lrs.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        train(model, loss, 300, config, generator=make_generator(0), device=torch.device("cpu"))
    finally:
        torch.optim.Adam.step = original_step
    assert optimizer_lrs == pytest.approx([1.0, 0.1, 0.01])


def test_zero_epochs_leaves_the_module_untouched():
    model = nn.Linear(3, 1, bias=False)
    before = model.weight.clone()
    config = OptimizerConfig(epochs=0, lr=1.0, milestones=(), weight_decay=0.0, batch_size=10)
    assert train(model, lambda i: model.weight.sum(), 5, config, generator=make_generator(0), device=torch.device("cpu")) == []
    assert torch.equal(model.weight, before)


def test_a_diverging_loss_raises_a_clear_error():
    model = nn.Linear(3, 1, bias=False)
    config = OptimizerConfig(epochs=2, lr=0.1, milestones=(), weight_decay=0.0, batch_size=10)

    def loss(indices):
        return model.weight.sum() * float("nan")

    with pytest.raises(TrainingError, match="NaN|nan"):
        train(model, loss, 20, config, generator=make_generator(0), device=torch.device("cpu"))


def test_limited_threads_lowers_and_restores_the_thread_count():
    from deepsad.training import limited_threads

    before = torch.get_num_threads()
    with limited_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with limited_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), limited_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
