"""Model files of formats 2 to 4 (LeNet weights in the fused-layer numbering) load and score as when saved.

The files are written here: a model is fitted and saved, its LeNet weights are renamed to
the numbering formats 2 to 4 used (conv + fused BN/leaky ReLU/pool per encoder stage,
upsampling transposed conv + BN + leaky ReLU per decoder stage) and its model.json is
stamped with the older format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save

import deepsad
from deepsad import DeepSAD, LeNetSpec, MLPSpec, persistence


def _fit(name: str) -> tuple[DeepSAD, np.ndarray]:
    if name == "lenet":
        X = np.random.default_rng(17).random((24, 1, 28, 28), dtype=np.float32)
        y = np.zeros(24, dtype=np.int64)
        y[:2] = -1
        y[2:4] = 1
        model = DeepSAD(network=LeNetSpec("mnist", rep_dim=4), n_networks=1, pretrain=True, epochs=2,
                        pretrain_epochs=2, batch_size=12, random_state=0, device="cpu")
    else:
        X = np.random.default_rng(18).normal(size=(40, 6)).astype(np.float32)
        y = np.zeros(40, dtype=np.int64)
        y[:2] = -1
        model = DeepSAD(network=MLPSpec(hidden_sizes=(8,), rep_dim=3), n_networks=1, pretrain=True, epochs=2,
                        pretrain_epochs=2, batch_size=20, random_state=0, standardize=True, device="cpu")
    return model.fit(X, y), X


def _fused_name(key: str) -> str:
    """The name formats 2 to 4 gave a canonical LeNet weight name (others unchanged)."""
    match = re.match(r"^(.*?)(features|deconvs)\.(\d+)\.(.*)$", key)
    if match is None:
        return key
    head, part, index, rest = match.groups()
    stage, position = divmod(int(index), 4)
    if part == "features":  # conv, BN, leaky ReLU, pool -> conv, fused BN
        assert position in (0, 1), key
        return f"{head}features.{2 * stage + position}.{rest}"
    assert position in (1, 2), key  # upsample, transposed conv, BN, leaky ReLU -> fused conv, BN, leaky ReLU
    return f"{head}deconvs.{3 * stage + position - 1}.{rest}"


def _as_format(directory: Path, version: int, *, lenet: bool) -> None:
    weights_path = persistence.weights_path(directory)
    arrays = load_file(weights_path)
    if lenet:
        arrays = {_fused_name(key): value for key, value in arrays.items()}
    weights = save(arrays)
    weights_path.write_bytes(weights)
    config_path = directory / persistence.CONFIG_FILE
    content = json.loads(config_path.read_text())
    content.pop("content_sha256")
    content.update(format_version=version, weights_sha256=persistence._sha256(weights))
    content["content_sha256"] = persistence._sha256(persistence._canonical(content).encode())
    config_path.write_text(persistence._canonical(content))


@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("name", ["lenet", "mlp"])
def test_an_older_format_file_loads_and_scores_as_saved(tmp_path: Path, name: str, version: int) -> None:
    fitted, X = _fit(name)
    deepsad.save(fitted, tmp_path / "m")
    _as_format(tmp_path / "m", version, lenet=name == "lenet")
    assert persistence.read_config(tmp_path / "m")["format_version"] == version
    model = deepsad.load(tmp_path / "m")
    np.testing.assert_array_equal(model.anomaly_score(X), fitted.anomaly_score(X))


def test_the_older_lenet_file_holds_the_fused_numbering_and_comes_back_canonical(tmp_path: Path) -> None:
    fitted, X = _fit("lenet")
    deepsad.save(fitted, tmp_path / "m")
    _as_format(tmp_path / "m", 4, lenet=True)
    names = load_file(persistence.weights_path(tmp_path / "m"))
    assert "network.features.2.weight" in names and "autoencoder.decoder.deconvs.0.weight" in names
    model = deepsad.load(tmp_path / "m")
    assert set(model.network_.state_dict()) >= {"features.0.weight", "features.1.running_mean", "features.4.weight"}
    decoder = model.autoencoder_.decoder.state_dict()
    assert {"deconvs.1.weight", "deconvs.2.running_var", "deconvs.5.bias"} <= set(decoder)
    # saved again, it is a format-5 file with those names, and scores the same
    resaved = deepsad.load(deepsad.save(model, tmp_path / "again"))
    assert persistence.read_config(tmp_path / "again")["format_version"] == persistence.FORMAT_VERSION == 5
    assert "network.features.4.weight" in load_file(persistence.weights_path(tmp_path / "again"))
    np.testing.assert_array_equal(resaved.anomaly_score(X), model.anomaly_score(X))
