"""Encoders, decoders and autoencoders: shapes, collapse rules, memory formats."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from deepsad.errors import InvalidInputError
from deepsad.models import (
    Autoencoder,
    BatchNormLeakyMaxPool2d,
    LeNetSpec,
    MLPSpec,
    build_decoder,
    build_encoder,
    init_weights_,
    representation_dim,
)

LENET_SHAPES = {"mnist": (1, 28, 28), "fmnist": (1, 28, 28), "cifar10": (3, 32, 32)}

SETUPS = [
    (MLPSpec(), (21,), 8),
    (MLPSpec(hidden_sizes=(128, 64), rep_dim=32), (274,), 32),
    (MLPSpec(hidden_sizes=(32, 16), rep_dim=4, negative_slope=0.01, bn_eps=1e-5), (6,), 4),
    (MLPSpec(hidden_sizes=(), rep_dim=3), (5,), 3),
    (LeNetSpec("mnist"), (1, 28, 28), 32),
    (LeNetSpec("fmnist"), (1, 28, 28), 64),
    (LeNetSpec("cifar10"), (3, 32, 32), 128),
    (LeNetSpec("mnist", rep_dim=16, negative_slope=0.2, bn_eps=1e-3), (1, 28, 28), 16),
]
IDS = [f"{type(s).__name__}-{shape}-{rep}" for s, shape, rep in SETUPS]


def _seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    init_weights_(module, torch.Generator().manual_seed(seed))
    return module


def _inputs(shape, n=4, seed=0):
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("spec", "shape", "rep_dim"), SETUPS, ids=IDS)
def test_encoder_output_shape_and_rep_dim(spec, shape, rep_dim):
    encoder = _seeded(build_encoder(spec, shape))
    assert encoder.rep_dim == rep_dim
    assert representation_dim(encoder) == rep_dim
    for mode in (encoder.train, encoder.eval):
        mode()
        z = encoder(_inputs(shape))
        assert z.shape == (4, rep_dim)
        assert torch.isfinite(z).all()


@pytest.mark.parametrize(("spec", "shape", "rep_dim"), SETUPS, ids=IDS)
def test_encoder_follows_collapse_rules(spec, shape, rep_dim):
    encoder = build_encoder(spec, shape)
    assert not [name for name, _ in encoder.named_parameters() if name.endswith("bias")]
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        assert bn.affine is False
        assert bn.weight is None and bn.bias is None
        assert bn.eps == spec.bn_eps
    assert all(isinstance(p, nn.Parameter) for p in encoder.parameters())
    # every parameter is a Linear / Conv kernel (no BN affine, no bias)
    kernels = {id(m.weight) for m in encoder.modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    assert {id(p) for p in encoder.parameters()} == kernels
    activations = [m for m in encoder.modules() if isinstance(m, (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU))]
    # the LeNet conv blocks' BN layer applies the leaky ReLU itself
    activations += [m for m in encoder.modules() if isinstance(m, BatchNormLeakyMaxPool2d)]
    linear_map = isinstance(spec, MLPSpec) and not spec.hidden_sizes  # the one net without activations
    assert linear_map or activations
    assert all(isinstance(m, (nn.LeakyReLU, BatchNormLeakyMaxPool2d)) for m in activations)
    assert all(m.negative_slope == spec.negative_slope for m in activations)
    # the last layer is linear: nothing (no BN, no activation) after the final Linear
    last = list(encoder.modules())[-1]
    assert isinstance(last, nn.Linear) and last.out_features == rep_dim


@pytest.mark.parametrize(("spec", "shape", "rep_dim"), SETUPS, ids=IDS)
def test_encoder_has_no_constant_offset(spec, shape, rep_dim):
    # without biases and BN shifts, phi is positively homogeneous: in eval mode with zero
    # running means a zero input maps exactly to zero (no learnable way to a constant)
    encoder = _seeded(build_encoder(spec, shape)).eval()
    assert torch.count_nonzero(encoder(torch.zeros((2, *shape)))) == 0


@pytest.mark.parametrize(("spec", "shape", "rep_dim"), SETUPS, ids=IDS)
@pytest.mark.parametrize("activation", ["sigmoid", "identity"])
def test_autoencoder_reconstructs_input_shape(spec, shape, rep_dim, activation):
    decoder = build_decoder(spec, shape, output_activation=activation)
    assert decoder(torch.randn(3, rep_dim)).shape == (3, *shape)
    autoencoder = _seeded(Autoencoder(build_encoder(spec, shape), decoder))
    x = _inputs(shape, n=3)
    x_hat = autoencoder(x)
    assert x_hat.shape == x.shape
    if activation == "sigmoid":
        assert x_hat.min() >= 0 and x_hat.max() <= 1
    else:
        assert isinstance(list(decoder.modules())[-1], nn.Identity)
    # bias-free except the output layer
    biases = [name for name, _ in decoder.named_parameters() if name.endswith("bias")]
    assert len(biases) == 1
    for bn in (m for m in decoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        assert bn.affine is False and bn.eps == spec.bn_eps


def test_autoencoder_encoder_state_matches_phi():
    # the pretraining transfer relies on identical keys
    spec, shape = LeNetSpec("fmnist"), (1, 28, 28)
    phi = build_encoder(spec, shape)
    autoencoder = _seeded(Autoencoder(build_encoder(spec, shape), build_decoder(spec, shape)), 5)
    phi.load_state_dict(autoencoder.encoder.state_dict(), strict=True)
    x = _inputs(shape)
    torch.testing.assert_close(phi.eval()(x), autoencoder.encoder.eval()(x), rtol=0, atol=0)


def test_autoencoder_backward_reaches_every_parameter():
    spec, shape = LeNetSpec("mnist"), (1, 28, 28)
    autoencoder = _seeded(Autoencoder(build_encoder(spec, shape), build_decoder(spec, shape)))
    x = _inputs(shape, n=6)
    ((autoencoder(x) - x) ** 2).mean().backward()
    assert all(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in autoencoder.parameters())


@pytest.mark.parametrize("variant", sorted(LENET_SHAPES))
def test_channels_last_matches_contiguous(variant):
    shape = LENET_SHAPES[variant]
    spec = LeNetSpec(variant)
    reference = _seeded(Autoencoder(build_encoder(spec, shape), build_decoder(spec, shape)))
    fast = copy.deepcopy(reference).to(memory_format=torch.channels_last)
    assert fast.encoder.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = _inputs(shape, n=5)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    assert x_cl.is_contiguous(memory_format=torch.channels_last)
    for train in (True, False):  # batch statistics and running statistics
        reference.train(train)
        fast.train(train)
        torch.testing.assert_close(fast.encoder(x_cl), reference.encoder(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fast(x_cl), reference(x), rtol=1e-5, atol=1e-5)
    # gradients agree too, so training is the same computation in both formats
    reference.train()
    fast.train()
    ((reference(x) - x) ** 2).mean().backward()
    ((fast(x_cl) - x_cl) ** 2).mean().backward()
    for (name, p_ref), p_fast in zip(reference.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_mnist_encoder_parameter_count():
    encoder = build_encoder(LeNetSpec("mnist"), (1, 28, 28))
    expected = 8 * 1 * 5 * 5 + 4 * 8 * 5 * 5 + 4 * 7 * 7 * 32  # conv1 + conv2 + dense, no biases
    assert sum(p.numel() for p in encoder.parameters()) == expected == 7272


def test_fmnist_and_cifar10_layer_sizes():
    fmnist = build_encoder(LeNetSpec("fmnist"), (1, 28, 28))
    assert [(m.in_features, m.out_features) for m in fmnist.modules() if isinstance(m, nn.Linear)] == [
        (32 * 7 * 7, 128),
        (128, 64),
    ]
    cifar = build_encoder(LeNetSpec("cifar10"), (3, 32, 32))
    convs = [(m.in_channels, m.out_channels) for m in cifar.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [(3, 32), (32, 64), (64, 128)]
    assert [(m.in_features, m.out_features) for m in cifar.modules() if isinstance(m, nn.Linear)] == [
        (128 * 4 * 4, 128)
    ]


@pytest.mark.parametrize(
    ("spec", "shape", "match"),
    [
        (LeNetSpec("mnist"), (3, 32, 32), r"\(1, 28, 28\)"),
        (LeNetSpec("fmnist"), (784,), r"\(1, 28, 28\)"),
        (LeNetSpec("cifar10"), (1, 28, 28), r"\(3, 32, 32\)"),
        (LeNetSpec("cifar10"), (32, 32, 3), "channel-last"),
        (MLPSpec(), (1, 28, 28), r"\(d,\)"),
        (MLPSpec(), (0,), "positive"),
        ({"type": "mlp"}, (5,), "MLPSpec or LeNetSpec"),
    ],
)
def test_build_rejects_spec_shape_mismatch(spec, shape, match):
    with pytest.raises(InvalidInputError, match=match):
        build_encoder(spec, shape)
    with pytest.raises(InvalidInputError, match=match):
        build_decoder(spec, shape)


def test_build_decoder_rejects_unknown_activation():
    with pytest.raises(InvalidInputError, match="output_activation"):
        build_decoder(MLPSpec(), (5,), output_activation="tanh")


def test_representation_dim_of_custom_modules():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 7, bias=False)
            self.bn = nn.BatchNorm1d(7, affine=False)

        def forward(self, x):
            return self.bn(self.fc(x))

    custom = Custom().train()
    with pytest.raises(InvalidInputError, match="rep_dim"):
        representation_dim(custom)
    assert representation_dim(custom, (5,)) == 7
    assert custom.training  # mode restored
    assert torch.count_nonzero(custom.bn.running_mean) == 0  # probe ran in eval mode
    with pytest.raises(InvalidInputError, match=r"\(n, rep_dim\)"):
        representation_dim(nn.Identity(), (1, 4, 4))
