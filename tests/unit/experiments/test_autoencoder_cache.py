"""The autoencoder cache's disk entries: today's format, and format 1 in both LeNet numberings."""

from __future__ import annotations

import copy
import json
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from deepsad.experiments.autoencoder_cache import AutoencoderCache
from deepsad.models import (Autoencoder, LeNetSpec, MLPSpec, build_decoder, build_encoder, init_weights_,
                            use_fused_layers)

KEY = "ab" * 32


def _fused_numbering(name: str) -> str:
    """A canonical LeNet weight name in the numbering of the fused layers (entries before a20792c)."""
    match = re.match(r"^(.*\.)?(features|deconvs)\.(\d+)\.(\w+)$", name)
    if match is None:
        return name
    head, part, index, rest = match.group(1) or "", match.group(2), int(match.group(3)), match.group(4)
    stage, position = divmod(index, 4)
    # encoder stage: conv, BN-leaky-pool; decoder stage: upsampling conv, BN, leaky ReLU
    fused = 2 * stage + position if part == "features" else 3 * stage + position - 1
    return f"{head}{part}.{fused}.{rest}"


def _autoencoder(spec, shape, seed=0):
    autoencoder = Autoencoder(build_encoder(spec, shape), build_decoder(spec, shape, "sigmoid"))
    init_weights_(autoencoder, torch.Generator().manual_seed(seed))
    return autoencoder.eval()


def _rewrite(path, *, format_version, rename=lambda name: name):
    """Rewrite a cache entry as an older deepsad wrote it."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {rename(name): handle.get_tensor(name) for name in handle.keys()}
    metadata["format"] = f"deepsad-autoencoder-cache/{format_version}"
    save_file(tensors, str(path), metadata=metadata)
    return tensors


@pytest.mark.parametrize("spec, shape", [(LeNetSpec("mnist"), (1, 28, 28)), (LeNetSpec("cifar10"), (3, 32, 32)),
                                         (MLPSpec(hidden_sizes=(8, 4), rep_dim=2), (6,))])
@pytest.mark.parametrize("old_numbering", [True, False])
def test_format_1_entries_load_in_either_numbering(tmp_path, spec, shape, old_numbering):
    original = _autoencoder(spec, shape)
    AutoencoderCache(tmp_path).put(KEY, original, spec=spec, input_shape=shape, output_activation="sigmoid")
    path = tmp_path / f"{KEY}.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["format"] == AutoencoderCache.FORMAT == "deepsad-autoencoder-cache/2"
    written = _rewrite(path, format_version=1, rename=_fused_numbering if old_numbering else (lambda name: name))
    if old_numbering and isinstance(spec, LeNetSpec):
        assert set(written) != set(original.state_dict())  # really the old names
    loaded, where = AutoencoderCache(tmp_path).get(KEY)
    assert where == "disk"
    assert loaded.state_dict().keys() == original.state_dict().keys()
    for name, tensor in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    x = torch.rand(3, *shape)
    assert torch.equal(loaded(x), use_fused_layers(copy.deepcopy(original))(x))  # read in the training form


def test_unknown_formats_and_foreign_keys_are_misses(tmp_path):
    spec, shape = LeNetSpec("mnist"), (1, 28, 28)
    AutoencoderCache(tmp_path).put(KEY, _autoencoder(spec, shape), spec=spec, input_shape=shape,
                                   output_activation="sigmoid")
    _rewrite(tmp_path / f"{KEY}.safetensors", format_version=3)
    assert AutoencoderCache(tmp_path).get(KEY) == (None, "miss")


def test_a_read_entry_computes_in_the_training_form(tmp_path):
    # what a disk hit gives has the layers a fresh pretraining's autoencoder has
    from deepsad import DeepSVDD

    X = torch.rand(40, 1, 28, 28).numpy()
    pretrainer = DeepSVDD(network="paper", pretrain=True, epochs=0, pretrain_epochs=1, batch_size=20, random_state=0)
    fresh = pretrainer.pretrain_autoencoder(X)
    AutoencoderCache(tmp_path).put(KEY, fresh, spec=pretrainer.spec_, input_shape=pretrainer.input_shape_,
                                   output_activation=pretrainer.output_activation_)
    loaded, _ = AutoencoderCache(tmp_path).get(KEY)
    assert [type(m) for m in loaded.modules()] == [type(m) for m in fresh.modules()]
    assert json.dumps(sorted(loaded.state_dict())) == json.dumps(sorted(fresh.state_dict()))
