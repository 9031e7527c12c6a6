"""K networks as one grouped network: same outputs, same BatchNorm statistics, exact write-back."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from deepsad.models import Autoencoder, LeNetSpec, MLPSpec, build_decoder, build_encoder, init_weights_
from deepsad.models.grouped import NARROW_GROUP_SIZE, group_networks, preferred_group_size
from deepsad.training import make_generator

CPU = torch.device("cpu")

NETWORKS = {
    "mlp": (MLPSpec(hidden_sizes=(16, 8), rep_dim=4), (11,)),
    "mnist": (LeNetSpec(variant="mnist"), (1, 28, 28)),
    "fmnist": (LeNetSpec(variant="fmnist"), (1, 28, 28)),
    "cifar10": (LeNetSpec(variant="cifar10"), (3, 32, 32)),
}


def _networks(name, n_models, *, autoencoder):
    spec, shape = NETWORKS[name]
    networks = []
    for k in range(n_models):
        encoder = build_encoder(spec, shape)
        network = Autoencoder(encoder, build_decoder(spec, shape)) if autoencoder else encoder
        init_weights_(network, make_generator(k))
        networks.append(network.train())
    return networks, shape


@pytest.mark.parametrize("autoencoder", [False, True], ids=["encoder", "autoencoder"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_grouped_forward_equals_each_network(name, autoencoder):
    n_models, batch = 3, 6
    networks, shape = _networks(name, n_models, autoencoder=autoencoder)
    plain = [copy.deepcopy(n) for n in networks]
    x = torch.rand(n_models, batch, *shape, generator=torch.Generator().manual_seed(0))

    grouped = group_networks(networks)
    assert grouped is not None and grouped.n_models == n_models
    out = grouped.split_output(grouped(grouped.group_input(x)))  # (K, batch, ...)
    grouped.write_back()

    for k, network in enumerate(plain):
        want = network(x[k])  # train mode: batch statistics, running buffers updated
        torch.testing.assert_close(out[k], want, atol=1e-5, rtol=1e-4)
        # the running statistics each model gathered from its own batch were written back
        for (name_, have), (_, expected) in zip(networks[k].named_buffers(), network.named_buffers()):
            torch.testing.assert_close(have, expected, atol=1e-6, rtol=1e-5, msg=name_)


def test_write_back_reaches_every_parameter_and_buffer_of_every_model():
    networks, _ = _networks("mnist", 2, autoencoder=True)
    before = [copy.deepcopy(n.state_dict()) for n in networks]
    grouped = group_networks(networks)
    with torch.no_grad():
        for tensor in [*grouped.parameters(), *grouped.buffers()]:
            tensor.add_(1)
    grouped.write_back()
    for network, state in zip(networks, before):
        for name, tensor in network.state_dict().items():
            torch.testing.assert_close(tensor, state[name] + 1, msg=name)


def test_sources_stay_untouched_until_write_back():
    networks, shape = _networks("mlp", 2, autoencoder=False)
    before = [copy.deepcopy(n.state_dict()) for n in networks]
    grouped = group_networks(networks)
    grouped(grouped.group_input(torch.rand(2, 5, *shape)))  # updates the grouped running statistics only
    for network, state in zip(networks, before):
        for name, tensor in network.state_dict().items():
            assert torch.equal(tensor, state[name]), name


def test_image_activations_run_channels_last_on_cpu():
    networks, shape = _networks("mnist", 2, autoencoder=False)
    grouped = group_networks(networks)
    batch = grouped.group_input(torch.rand(2, 4, *shape))
    assert batch.shape == (4, 2, 28, 28)
    assert batch.stride() == (2 * 28 * 28, 1, 28 * 2, 2)  # channels_last strides
    first_conv = grouped.body[0][0][0]
    assert first_conv.groups == 2 and first_conv.weight.is_contiguous(memory_format=torch.channels_last)


class _UserNetwork(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.linear(x)


def test_what_has_no_grouped_form_gives_none():
    assert group_networks([]) is None
    assert group_networks([_UserNetwork(), _UserNetwork()]) is None
    # deepsad networks of different settings (leaky ReLU slope) or kinds
    spec, shape = NETWORKS["mlp"]
    steep = build_encoder(MLPSpec(hidden_sizes=(16, 8), rep_dim=4, negative_slope=0.2), shape)
    assert group_networks([build_encoder(spec, shape), steep]) is None
    encoder = build_encoder(spec, shape)
    assert group_networks([encoder, Autoencoder(build_encoder(spec, shape), build_decoder(spec, shape))]) is None


def test_preferred_group_sizes():
    mnist, _ = _networks("mnist", 1, autoencoder=True)
    fmnist, _ = _networks("fmnist", 1, autoencoder=False)
    mlp, _ = _networks("mlp", 1, autoencoder=True)
    # the rule, not its tuned size: narrow convolutions in small groups, wider ones one by one
    assert preferred_group_size(mnist[0], CPU) == NARROW_GROUP_SIZE > 1
    assert preferred_group_size(fmnist[0], CPU) == 1
    assert preferred_group_size(mlp[0], CPU) is None  # all at once
    assert preferred_group_size(mnist[0], torch.device("cuda")) is None
