"""use_fused_layers / to_stock_layers: the fused speed layers swapped in and out under the same names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepsad.models import (
    LENET_ARCHITECTURES,
    BatchNormLeakyMaxPool2d,
    FastBatchNorm2d,
    FusedPlaceholder,
    LeNetDecoder,
    LeNetEncoder,
    UpsamplingConvTranspose2d,
    init_weights_,
    to_stock_layers,
    use_fused_layers,
    use_stock_layers,
)

STOCK_ENCODER_STAGE = [nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU, nn.MaxPool2d]
FUSED_ENCODER_STAGE = [nn.Conv2d, BatchNormLeakyMaxPool2d, FusedPlaceholder, FusedPlaceholder]
STOCK_DECODER_STAGE = [nn.Upsample, nn.ConvTranspose2d, nn.BatchNorm2d, nn.LeakyReLU]
FUSED_DECODER_STAGE = [FusedPlaceholder, UpsamplingConvTranspose2d, FastBatchNorm2d, nn.LeakyReLU]


def _pair(variant: str, part: str, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """(fused build, stock build) with the same weights."""
    cls = LeNetEncoder if part == "encoder" else LeNetDecoder
    fused, stock = cls(variant, fused=True), cls(variant)
    for module in (fused, stock):
        init_weights_(module, torch.Generator().manual_seed(seed))
    return fused, stock


def _types(sequence: nn.Sequential) -> list[type]:
    return [type(m) for m in sequence]


@pytest.mark.parametrize("variant", sorted(LENET_ARCHITECTURES))
def test_fused_and_stock_builds_have_one_state_dict_layout(variant: str) -> None:
    stages = len(LENET_ARCHITECTURES[variant].channels)
    for part in ("encoder", "decoder"):
        fused, stock = _pair(variant, part)
        assert list(fused.state_dict()) == list(stock.state_dict())
        for (name, a), b in zip(fused.state_dict().items(), stock.state_dict().values()):
            assert torch.equal(a, b), name
    fused, stock = _pair(variant, "encoder")
    assert _types(stock.features) == STOCK_ENCODER_STAGE * stages
    assert _types(fused.features) == FUSED_ENCODER_STAGE * stages
    fused, stock = _pair(variant, "decoder")
    assert _types(stock.deconvs) == STOCK_DECODER_STAGE * (stages - 1) + [nn.Upsample, nn.ConvTranspose2d, nn.Sigmoid]
    assert _types(fused.deconvs) == FUSED_DECODER_STAGE * (stages - 1) + [
        FusedPlaceholder, UpsamplingConvTranspose2d, nn.Sigmoid]


def test_the_canonical_names_are_those_of_format_1() -> None:
    """Encoder stage t at features.{4t .. 4t + 3}, decoder stage t at deconvs.{4t .. 4t + 3}."""
    assert set(LeNetEncoder("mnist").state_dict()) == {
        "features.0.weight", *(f"features.{i}.{b}" for i in (1, 5) for b in ("running_mean", "running_var",
                                                                             "num_batches_tracked")),
        "features.4.weight", "head.0.weight"}
    decoder = set(LeNetDecoder("mnist").state_dict())
    assert {"deconvs.1.weight", "deconvs.2.running_mean", "deconvs.5.weight", "deconvs.5.bias"} <= decoder
    assert not any(key.startswith(("deconvs.0.", "deconvs.3.", "deconvs.4.")) for key in decoder)


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_swapping_keeps_names_and_the_tensors_themselves(part: str) -> None:
    _, stock = _pair("cifar10", part)
    before = {**dict(stock.named_parameters()), **dict(stock.named_buffers())}
    optimizer = torch.optim.Adam(stock.parameters())
    rng_state = torch.get_rng_state()
    use_fused_layers(stock)
    assert torch.equal(torch.get_rng_state(), rng_state)  # nothing drawn from the global RNG
    assert any(isinstance(m, (BatchNormLeakyMaxPool2d, UpsamplingConvTranspose2d)) for m in stock.modules())
    after = {**dict(stock.named_parameters()), **dict(stock.named_buffers())}
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)
    assert [p for group in optimizer.param_groups for p in group["params"]] == list(stock.parameters())
    use_stock_layers(stock)
    assert not any(isinstance(m, (FastBatchNorm2d, UpsamplingConvTranspose2d, FusedPlaceholder))
                   for m in stock.modules())
    back = {**dict(stock.named_parameters()), **dict(stock.named_buffers())}
    assert back.keys() == before.keys() and all(back[name] is before[name] for name in before)


@pytest.mark.parametrize("variant", sorted(LENET_ARCHITECTURES))
def test_to_stock_layers_gives_the_stock_build(variant: str) -> None:
    for part in ("encoder", "decoder"):
        fused, stock = _pair(variant, part)
        copy = to_stock_layers(fused)
        assert str(copy) == str(stock)  # the same layers, settings included
        assert any(isinstance(m, FusedPlaceholder) for m in fused.modules())  # the original is untouched
        for (name, a), b in zip(copy.state_dict().items(), stock.state_dict().values()):
            assert torch.equal(a, b), name


@pytest.mark.parametrize("variant", sorted(LENET_ARCHITECTURES))
def test_fused_and_stock_compute_the_same(variant: str) -> None:
    fused, stock = _pair(variant, "encoder")
    x = torch.rand(6, *LENET_ARCHITECTURES[variant].input_shape, generator=torch.Generator().manual_seed(1))
    for mode in (True, False):
        fused.train(mode)
        stock.train(mode)
        torch.testing.assert_close(fused(x), stock(x), rtol=1e-5, atol=1e-6)
    decoder, stock_decoder = _pair(variant, "decoder")
    z = torch.randn(6, decoder.rep_dim, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(decoder(z), stock_decoder(z), rtol=1e-5, atol=1e-6)


def test_fusing_twice_changes_nothing_and_user_layers_stay() -> None:
    network = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, affine=False), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
                            nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(3, stride=1),
                            nn.Upsample(scale_factor=2.5), nn.ConvTranspose2d(4, 2, 3, padding=1))
    use_fused_layers(network)
    once = _types(network)
    use_fused_layers(network)
    assert _types(network) == once == [nn.Conv2d, BatchNormLeakyMaxPool2d, FusedPlaceholder, FusedPlaceholder,
                                       FastBatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Upsample, nn.ConvTranspose2d]


def test_a_fused_layer_outside_the_placeholder_layout_becomes_a_stock_block() -> None:
    """As the layer benchmarks use it: the stock form nests, the tensor order is kept."""
    layer = BatchNormLeakyMaxPool2d(4, eps=1e-4, negative_slope=0.1)
    stock = to_stock_layers(nn.Sequential(layer))
    assert _types(stock[0]) == [nn.BatchNorm2d, nn.LeakyReLU, nn.MaxPool2d]
    x = torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(stock(x), nn.Sequential(layer)(x), rtol=1e-5, atol=1e-6)


def test_build_functions_take_the_choice() -> None:
    """Stock layers unless fused ones are asked for (the detectors swap them in for training)."""
    from deepsad.models import LeNetSpec, MLPSpec, build_decoder, build_encoder

    spec, shape = LeNetSpec("mnist"), (1, 28, 28)
    for network in (build_encoder(spec, shape, fused=True), build_decoder(spec, shape, fused=True)):
        assert any(isinstance(m, FusedPlaceholder) for m in network.modules())
    for network in (build_encoder(spec, shape), build_decoder(spec, shape), LeNetEncoder("mnist"), LeNetDecoder("mnist")):
        assert not any(isinstance(m, (FusedPlaceholder, FastBatchNorm2d)) for m in network.modules())
    assert str(build_encoder(MLPSpec(), (5,), fused=True)) == str(build_encoder(MLPSpec(), (5,)))
