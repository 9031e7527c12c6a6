"""pretrain_autoencoders: the one autoencoder pretraining, one by one or stacked."""

from __future__ import annotations

import pytest
import torch

from deepsad.errors import InvalidInputError
from deepsad.models import Autoencoder, MLPSpec, build_decoder, build_encoder, init_weights_
from deepsad.training import OptimizerConfig, make_generator, pretrain_autoencoders, reconstruction_loss, train

SPEC = MLPSpec(hidden_sizes=(8,), rep_dim=4)
CONFIG = OptimizerConfig(epochs=3, lr=1e-3, milestones=(2,), weight_decay=1e-6, batch_size=32)
CPU = torch.device("cpu")


def _autoencoder(seed: int) -> tuple[Autoencoder, torch.Generator]:
    generator = make_generator(seed)
    encoder, decoder = build_encoder(SPEC, (6,)), build_decoder(SPEC, (6,), "identity")
    init_weights_(encoder, generator)
    init_weights_(decoder, generator)
    return Autoencoder(encoder, decoder), generator


def _data(seed: int) -> torch.Tensor:
    return torch.randn(100, 6, generator=make_generator(seed))


def test_one_autoencoder_equals_the_plain_loop_on_the_reconstruction_loss():
    X = _data(0)
    mine, mine_generator = _autoencoder(1)
    plain, plain_generator = _autoencoder(1)
    (history,) = pretrain_autoencoders([mine], X, CONFIG, generators=[mine_generator], device=CPU)
    expected = train(plain, lambda i: reconstruction_loss(plain(X[i]), X[i]), 100, CONFIG,
                     generator=plain_generator, device=CPU)
    assert history == expected
    for name, tensor in plain.state_dict().items():
        assert torch.equal(mine.state_dict()[name], tensor)


@pytest.mark.parametrize("strategy", ["auto", "vmap"])
def test_stacked_pretraining_equals_one_by_one(strategy):
    datasets = [_data(k) for k in range(3)]
    stacked = [_autoencoder(10 + k) for k in range(3)]
    alone = [_autoencoder(10 + k) for k in range(3)]
    histories = pretrain_autoencoders([a for a, _ in stacked], datasets, CONFIG, generators=[g for _, g in stacked],
                                      device=CPU, strategy=strategy)
    expected = pretrain_autoencoders([a for a, _ in alone], datasets, CONFIG, generators=[g for _, g in alone],
                                     device=CPU)
    for got, want in zip(histories, expected):
        assert got == pytest.approx(want, rel=1e-5)
    for (a, _), (b, _) in zip(stacked, alone):
        for name, tensor in b.state_dict().items():
            torch.testing.assert_close(a.state_dict()[name], tensor, rtol=1e-4, atol=1e-5)


def test_counts_must_agree():
    autoencoder, generator = _autoencoder(0)
    with pytest.raises(InvalidInputError, match="one of each per autoencoder"):
        pretrain_autoencoders([autoencoder], [_data(0), _data(1)], CONFIG, generators=[generator], device=CPU)
    with pytest.raises(InvalidInputError, match="at least one autoencoder"):
        pretrain_autoencoders([], _data(0), CONFIG, generators=[], device=CPU)
