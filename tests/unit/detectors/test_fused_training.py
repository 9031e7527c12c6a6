"""The detectors train and score deepsad's LeNets in the fused form, under the canonical names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import deepsad
from deepsad import DeepSAD
from deepsad.models import (
    BatchNormLeakyMaxPool2d,
    FastBatchNorm2d,
    FusedPlaceholder,
    LeNetDecoder,
    LeNetEncoder,
    LeNetSpec,
    UpsamplingConvTranspose2d,
    build_encoder,
)

SMALL = {"epochs": 1, "pretrain_epochs": 1, "batch_size": 30}
FUSED_TYPES = (BatchNormLeakyMaxPool2d, FastBatchNorm2d, FusedPlaceholder, UpsamplingConvTranspose2d)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((60, 1, 28, 28), dtype=np.float32)


def _fused(module: nn.Module) -> bool:
    return any(isinstance(m, FUSED_TYPES) for m in module.modules())


def _types(module: nn.Module) -> list[type]:
    return [type(m) for m in module.modules()]


def test_networks_built_from_a_spec_train_fused_under_the_canonical_names(images, tmp_path):
    model = DeepSAD(network="paper", pretrain=True, random_state=0, **SMALL).fit(images)
    assert _fused(model.network_) and _fused(model.autoencoder_.encoder) and _fused(model.autoencoder_.decoder)
    stock = build_encoder(LeNetSpec("mnist"), (1, 28, 28))
    assert not _fused(stock)
    assert list(model.network_.state_dict()) == list(stock.state_dict())
    model.save(tmp_path / "m")
    loaded = deepsad.load(tmp_path / "m")
    assert _fused(loaded.network_)  # scores as the fitted model does, to the bit
    assert np.array_equal(loaded.anomaly_score(images), model.anomaly_score(images))


def test_a_users_lenet_is_copied_and_the_copy_trained_fused(images):
    torch.manual_seed(0)
    encoder, decoder = LeNetEncoder("mnist"), LeNetDecoder("mnist")
    encoder_types, decoder_types = _types(encoder), _types(decoder)
    weights = {k: v.clone() for k, v in encoder.state_dict().items()}
    model = DeepSAD(network=encoder, decoder=decoder, pretrain=True, random_state=0, **SMALL).fit(images)
    # the user's objects are left as they were: layers and weights
    assert _types(encoder) == encoder_types and _types(decoder) == decoder_types and not _fused(encoder)
    assert all(torch.equal(v, weights[k]) for k, v in encoder.state_dict().items())
    assert _fused(model.network_) and model.network_ is not encoder
    # the same fit as with modules built fused by the user
    torch.manual_seed(0)
    fused = DeepSAD(network=LeNetEncoder("mnist", fused=True), decoder=LeNetDecoder("mnist", fused=True),
                    pretrain=True, random_state=0, **SMALL).fit(images)
    assert np.array_equal(fused.anomaly_score(images), model.anomaly_score(images))
    assert np.array_equal(fused.center_, model.center_)


def test_a_users_other_layers_stay_as_given(images):
    network = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2, bias=False), nn.BatchNorm2d(4, affine=False),
                            nn.LeakyReLU(0.1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 8, bias=False))
    model = DeepSAD(network=network, pretrain=False, random_state=0, **SMALL).fit(images)
    assert _types(model.network_) == _types(network)
