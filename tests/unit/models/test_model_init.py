"""init_weights_: Glorot weights, zero biases, deterministic, global RNG untouched."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepsad.models import Autoencoder, LeNetSpec, MLPSpec, build_decoder, build_encoder, init_weights_


def _autoencoder(spec, shape):
    return Autoencoder(build_encoder(spec, shape), build_decoder(spec, shape))


SETUPS = [(MLPSpec(), (21,)), (LeNetSpec("mnist"), (1, 28, 28)), (LeNetSpec("fmnist"), (1, 28, 28))]


@pytest.mark.parametrize(("spec", "shape"), SETUPS)
def test_same_seed_same_weights_different_seed_different(spec, shape):
    a, b, c = (_autoencoder(spec, shape) for _ in range(3))
    init_weights_(a, torch.Generator().manual_seed(7))
    init_weights_(b, torch.Generator().manual_seed(7))
    init_weights_(c, torch.Generator().manual_seed(8))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    weights = [k for k in sa if k.endswith("weight")]
    assert weights and all(not torch.equal(sa[k], sc[k]) for k in weights)


def test_global_rng_untouched():
    before = torch.get_rng_state()
    module = _autoencoder(LeNetSpec("mnist"), (1, 28, 28))  # building leaves it alone too
    assert torch.equal(torch.get_rng_state(), before)
    init_weights_(module, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), before)


def test_glorot_bounds_and_zero_biases():
    module = nn.Sequential(nn.Linear(30, 20), nn.Conv2d(3, 6, 5), nn.ConvTranspose2d(6, 2, 3))
    for m in module:
        nn.init.constant_(m.bias, 5.0)
    init_weights_(module, torch.Generator().manual_seed(0))
    for m in module:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert m.weight.abs().max() <= bound
        # a uniform sample this size comes close to its bound; a default init would not match
        assert m.weight.abs().max() > 0.8 * bound
        assert torch.count_nonzero(m.bias) == 0


def test_same_values_in_channels_last_layout():
    # the draw must not depend on the weights' memory format
    a = build_encoder(LeNetSpec("mnist"), (1, 28, 28))
    b = build_encoder(LeNetSpec("mnist"), (1, 28, 28)).to(memory_format=torch.channels_last)
    init_weights_(a, torch.Generator().manual_seed(3))
    init_weights_(b, torch.Generator().manual_seed(3))
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name


def test_does_not_track_gradients():
    module = nn.Linear(4, 3)
    init_weights_(module, torch.Generator().manual_seed(0))
    assert module.weight.grad_fn is None and module.weight.requires_grad
