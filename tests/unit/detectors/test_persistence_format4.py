"""Model files of format 4 (LeNet weights in the fused-layer numbering) load and score as when saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import deepsad
from deepsad import persistence

MODELS = Path(__file__).parent / "data" / "format4_models"


def _data(name: str) -> np.ndarray:
    """The training data of the saved model (see the README next to the files)."""
    if name == "lenet":
        return np.random.default_rng(17).random((24, 1, 28, 28), dtype=np.float32)
    return np.random.default_rng(18).normal(size=(40, 6)).astype(np.float32)


@pytest.mark.parametrize("name", ["lenet", "mlp"])
def test_a_format_4_file_loads_and_scores_as_saved(name: str) -> None:
    path = MODELS / name
    assert persistence.read_config(path)["format_version"] == 4
    expected = json.loads((MODELS / "expected_scores.json").read_text())[name]
    model = deepsad.load(path)
    # the same computation; only a different CPU's kernels could round differently
    np.testing.assert_allclose(model.anomaly_score(_data(name)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("version", [2, 3])
def test_formats_2_and_3_share_the_fused_numbering(tmp_path, version: int) -> None:
    """The same file stamped as format 2 or 3 (their LeNet names are format 4's) loads the same."""
    import shutil

    path = Path(shutil.copytree(MODELS / "lenet", tmp_path / "m"))
    config_path = path / persistence.CONFIG_FILE
    content = json.loads(config_path.read_text())
    content.pop("content_sha256")
    content["format_version"] = version
    content["content_sha256"] = persistence._sha256(persistence._canonical(content).encode())
    config_path.write_text(persistence._canonical(content))
    expected = json.loads((MODELS / "expected_scores.json").read_text())["lenet"]
    np.testing.assert_allclose(deepsad.load(path).anomaly_score(_data("lenet")), expected, rtol=1e-5, atol=1e-6)


def test_the_format_4_lenet_file_really_holds_the_fused_numbering() -> None:
    names = load_file(persistence.weights_path(MODELS / "lenet"))
    assert "network.features.2.weight" in names and "autoencoder.decoder.deconvs.0.weight" in names


def test_its_lenets_come_back_under_the_canonical_names(tmp_path) -> None:
    model = deepsad.load(MODELS / "lenet")
    assert set(model.network_.state_dict()) >= {"features.0.weight", "features.1.running_mean", "features.4.weight"}
    decoder = model.autoencoder_.decoder.state_dict()
    assert {"deconvs.1.weight", "deconvs.2.running_var", "deconvs.5.bias"} <= set(decoder)
    # saved again, it is a format-5 file with those names, and scores the same
    resaved = deepsad.load(deepsad.save(model, tmp_path / "m"))
    assert persistence.read_config(tmp_path / "m")["format_version"] == persistence.FORMAT_VERSION == 5
    assert "network.features.4.weight" in load_file(persistence.weights_path(tmp_path / "m"))
    np.testing.assert_array_equal(resaved.anomaly_score(_data("lenet")), model.anomaly_score(_data("lenet")))
