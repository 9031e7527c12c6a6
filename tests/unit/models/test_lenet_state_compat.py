"""State dicts of the deepsad 0.1.0 LeNet layout (separate BN / leaky ReLU / pool and
upsampling layers) load into the current LeNets and give the same network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepsad.models import LENET_ARCHITECTURES, LeNetDecoder, LeNetEncoder

SLOPE = 0.1
EPS = 1e-4


class _OldEncoder(nn.Module):
    """The 0.1.0 layout: features = [conv, BN, leaky ReLU, pool] per block, then the head."""

    def __init__(self, variant: str, current: LeNetEncoder) -> None:
        super().__init__()
        arch = LENET_ARCHITECTURES[variant]
        layers: list[nn.Module] = []
        c_in = arch.input_shape[0]
        for c_out in arch.channels:
            layers += [nn.Conv2d(c_in, c_out, 5, padding=2, bias=False), nn.BatchNorm2d(c_out, eps=EPS, affine=False),
                       nn.LeakyReLU(SLOPE), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = current.head  # unchanged between the layouts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class _OldDecoder(nn.Module):
    """The 0.1.0 layout: deconvs = [upsample, transposed conv, BN, leaky ReLU] per stage,
    the last stage [upsample, transposed conv with bias, sigmoid]."""

    def __init__(self, variant: str, current: LeNetDecoder) -> None:
        super().__init__()
        arch = LENET_ARCHITECTURES[variant]
        self.head = current.head
        self.feature_shape = current.feature_shape
        channels = [*reversed(arch.channels), arch.input_shape[0]]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            last = i == len(channels) - 2
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ConvTranspose2d(c_in, c_out, 5, padding=2, bias=last)]
            layers += [nn.Sigmoid()] if last else [nn.BatchNorm2d(c_out, eps=EPS, affine=False), nn.LeakyReLU(SLOPE)]
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconvs(self.head(z).unflatten(1, self.feature_shape))


def _randomise_(module: nn.Module) -> None:
    """Non-default values everywhere, so a weight landing in the wrong layer shows."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator) + 0.5 if "running_var" in name else \
                    torch.randn(tensor.shape, generator=generator) * 0.2
                tensor.copy_(values)


def _old_pair(variant: str, part: str) -> tuple[nn.Module, nn.Module, torch.Tensor, str]:
    """(current module, the same in the old layout, an input, a key only the old layout has)."""
    generator = torch.Generator().manual_seed(1)
    if part == "encoder":
        x = torch.rand(6, *LENET_ARCHITECTURES[variant].input_shape, generator=generator)
        return LeNetEncoder(variant), _OldEncoder(variant, LeNetEncoder(variant)), x, "features.4.weight"
    decoder = LeNetDecoder(variant)
    z = torch.randn(6, decoder.rep_dim, generator=generator)
    return decoder, _OldDecoder(variant, LeNetDecoder(variant)), z, "deconvs.1.weight"


@pytest.mark.parametrize("part", ["encoder", "decoder"])
@pytest.mark.parametrize("variant", sorted(LENET_ARCHITECTURES))
def test_old_state_dict_loads_and_computes_the_same(variant: str, part: str) -> None:
    current, old, x, old_only_key = _old_pair(variant, part)
    _randomise_(old)
    state = old.state_dict()
    assert old_only_key in state  # really the old numbering
    if part == "encoder":
        assert "features.2.weight" not in state
    current.load_state_dict(state, strict=True)
    # float64: the random weights make large activations, whose float32 rounding differs
    # between the two layouts' summation orders
    current.double().eval()
    old.double().eval()
    torch.testing.assert_close(current(x.double()), old(x.double()), rtol=1e-9, atol=1e-9)


def test_current_state_dicts_round_trip_unchanged() -> None:
    encoder, decoder = LeNetEncoder("cifar10"), LeNetDecoder("cifar10")
    _randomise_(encoder)
    _randomise_(decoder)
    for module, fresh in ((encoder, LeNetEncoder("cifar10")), (decoder, LeNetDecoder("cifar10"))):
        fresh.load_state_dict(module.state_dict(), strict=True)
        for key, value in module.state_dict().items():
            torch.testing.assert_close(fresh.state_dict()[key], value, msg=key)


def test_a_malformed_old_state_dict_fails_as_load_state_dict_does() -> None:
    """Keys the old layout never had are left for load_state_dict to report (a RuntimeError
    that model loading turns into one clear ModelFileError line), not a KeyError / ValueError."""
    old = _OldEncoder("mnist", LeNetEncoder("mnist"))
    for stray in ("features.2.running_mean", "features.x.weight"):
        state = dict(old.state_dict())
        state[stray] = torch.zeros(8)
        with pytest.raises(RuntimeError, match="Unexpected key"):
            LeNetEncoder("mnist").load_state_dict(state, strict=True)
