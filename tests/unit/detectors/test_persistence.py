"""Save -> load -> identical scores; corrupt or tampered model directories are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deepsad
from deepsad.persistence import weights_path
from deepsad import DeepSAD, DeepSVDD
from deepsad.errors import ModelFileError


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype(np.float32) * 3 + 1
    y = np.zeros(120, dtype=np.int64)
    y[:3] = -1
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return DeepSAD(pretrain=True, n_networks=1, epochs=2, pretrain_epochs=2, batch_size=50, standardize=True, random_state=0).fit(X, y)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DeepSAD(pretrain=True, n_networks=1, epochs=2, pretrain_epochs=2, batch_size=50, random_state=0, contamination=0.05),
        lambda: DeepSVDD(objective="soft-boundary", radius_warmup_epochs=0, epochs=2, pretrain=False, random_state=0),
    ],
)
def test_save_load_gives_identical_scores(tmp_path, data, make):
    X, y = data
    est = make().fit(X, y)
    est.save(tmp_path / "model")
    loaded = deepsad.load(tmp_path / "model")
    assert type(loaded) is type(est)
    assert loaded.get_params() == est.get_params() | {"device": "auto"}
    np.testing.assert_array_equal(loaded.anomaly_score(X), est.anomaly_score(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.threshold_ == est.threshold_
    assert loaded.loss_history_ == est.loss_history_


def test_standardization_and_autoencoder_are_restored(tmp_path, data, fitted):
    X, _ = data
    fitted.save(tmp_path / "m")
    loaded = deepsad.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.scaler_mean_, fitted.scaler_mean_)
    np.testing.assert_array_equal(loaded.anomaly_score(X), fitted.anomaly_score(X))
    for key, value in fitted.autoencoder_.state_dict().items():
        assert np.array_equal(loaded.autoencoder_.state_dict()[key].numpy(), value.numpy())


def test_the_files_are_safetensors_and_json_without_pickle(tmp_path, fitted):
    fitted.save(tmp_path / "m")
    weights = weights_path(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", weights.name]
    content = json.loads((tmp_path / "m" / "model.json").read_text())
    assert content["class"] == "DeepSAD"
    assert content["versions"]["deepsad"] == deepsad.__version__
    raw = weights.read_bytes()
    assert b"\x80\x04" not in raw[:16]  # no pickle protocol header


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_changed_byte_in_the_weights_is_refused(tmp_path, fitted):
    fitted.save(tmp_path / "m")
    weights = weights_path(tmp_path / "m")
    _flip_byte(weights, len(weights.read_bytes()) - 10)
    with pytest.raises(ModelFileError, match="checksum"):
        deepsad.load(tmp_path / "m")


def test_truncated_weights_are_refused(tmp_path, fitted):
    fitted.save(tmp_path / "m")
    weights = weights_path(tmp_path / "m")
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="truncated or modified"):
        deepsad.load(tmp_path / "m")


@pytest.mark.parametrize("needle", ['"threshold": ', '"eta": ', '"n_labeled_anomaly": '])
def test_a_changed_value_in_the_json_is_refused(tmp_path, fitted, needle):
    fitted.save(tmp_path / "m")
    config = tmp_path / "m" / "model.json"
    text = config.read_text()
    position = text.index(needle) + len(needle)
    _flip_byte(config, position)  # a digit becomes another digit or character
    with pytest.raises(ModelFileError, match="modified|corrupt"):
        deepsad.load(tmp_path / "m")


def test_a_changed_whitespace_byte_in_the_json_is_refused(tmp_path, fitted):
    fitted.save(tmp_path / "m")
    config = tmp_path / "m" / "model.json"
    config.write_text(config.read_text().replace("\n", "\n ", 1))
    with pytest.raises(ModelFileError, match="modified"):
        deepsad.load(tmp_path / "m")


def test_invalid_json_is_refused(tmp_path, fitted):
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="corrupt"):
        deepsad.load(tmp_path / "m")


def test_missing_directory_and_files(tmp_path, fitted):
    with pytest.raises(ModelFileError, match="not found"):
        deepsad.load(tmp_path / "nowhere")
    fitted.save(tmp_path / "m")
    weights_path(tmp_path / "m").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        deepsad.load(tmp_path / "m")
    (tmp_path / "m" / "model.json").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        deepsad.load(tmp_path / "m")


def test_saving_an_unfitted_model_is_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DeepSAD().save(tmp_path / "m")


def test_a_cuda_trained_model_loads_on_cpu(tmp_path, fitted, data, monkeypatch):
    """Weights are stored device-free; a model saved with device='cuda' scores on the CPU."""
    X, _ = data
    fitted.save(tmp_path / "m")
    config = tmp_path / "m" / "model.json"
    content = json.loads(config.read_text())
    content.pop("content_sha256")
    content["params"]["device"] = "cuda"
    from deepsad.persistence import _canonical, _sha256

    content["content_sha256"] = _sha256(_canonical(content).encode())
    config.write_text(_canonical(content))
    loaded = deepsad.load(tmp_path / "m", device="cpu")
    assert loaded.device == "cpu"
    np.testing.assert_array_equal(loaded.anomaly_score(X), fitted.anomaly_score(X))


def _as_version_1(directory) -> None:
    """Rewrite a saved LeNet model as deepsad 0.1.0 wrote it: format version 1, one fixed
    weights file name; the weight names are today's (the canonical stock-layer ones)."""
    from safetensors.numpy import load_file, save

    from deepsad import persistence

    config_path = directory / persistence.CONFIG_FILE
    current = persistence.weights_path(directory)
    arrays = load_file(current)
    current.unlink()
    weights = save(arrays)
    (directory / persistence.WEIGHTS_FILE).write_bytes(weights)
    content = json.loads(config_path.read_text())
    content.pop("content_sha256")
    content.pop("weights_file")  # version 1 had the one fixed name
    content.update(format_version=1, weights_sha256=persistence._sha256(weights))
    content["content_sha256"] = persistence._sha256(persistence._canonical(content).encode())
    config_path.write_text(persistence._canonical(content))


def test_a_version_1_lenet_model_file_loads_and_scores_the_same(tmp_path) -> None:
    """Model files of deepsad 0.1.0 (the LeNets' older layer numbering) keep working."""
    from safetensors.numpy import load_file

    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 28, 28), dtype=np.float32)
    y = np.zeros(40, dtype=np.int64)
    y[:2] = -1
    model = DeepSAD(pretrain=True, n_networks=1, epochs=1, pretrain_epochs=1, batch_size=20, random_state=0).fit(X, y)
    assert model.network_.__class__.__name__ == "LeNetEncoder"
    path = deepsad.save(model, tmp_path / "model")
    _as_version_1(path)
    assert "network.features.4.weight" in load_file(path / "weights.safetensors")  # really the old names
    loaded = deepsad.load(path)
    np.testing.assert_allclose(loaded.decision_function(X), model.decision_function(X), rtol=1e-6, atol=1e-6)
    assert model.autoencoder_ is not None
    restored = loaded.autoencoder_.state_dict()
    for name, kept in model.autoencoder_.state_dict().items():
        np.testing.assert_array_equal(restored[name].cpu().numpy(), kept.cpu().numpy(), err_msg=name)


def test_a_newer_format_version_is_refused(tmp_path, fitted) -> None:
    from deepsad import persistence

    path = deepsad.save(fitted, tmp_path / "model")
    config_path = path / persistence.CONFIG_FILE
    content = json.loads(config_path.read_text())
    content.pop("content_sha256")
    content["format_version"] = persistence.FORMAT_VERSION + 1
    content["content_sha256"] = persistence._sha256(persistence._canonical(content).encode())
    config_path.write_text(persistence._canonical(content))
    with pytest.raises(ModelFileError, match="upgrade deepsad"):
        deepsad.load(path)


def _rewrite_consistently(config_path, change) -> None:
    """Apply ``change`` to model.json's content and make its checksum match again."""
    from deepsad import persistence

    content = json.loads(config_path.read_text())
    content.pop("content_sha256")
    change(content)
    content["content_sha256"] = persistence._sha256(persistence._canonical(content).encode())
    config_path.write_text(persistence._canonical(content))


@pytest.mark.parametrize("failing_write", [1, 2, 3])
def test_an_interrupted_save_leaves_the_old_or_the_new_model(tmp_path, data, fitted, monkeypatch, failing_write):
    """A crash at the first write (weights), the second (model.json) or the cleanup after them."""
    from deepsad import persistence

    X, y = data
    old_scores = fitted.anomaly_score(X)
    fitted.save(tmp_path / "m")
    new = DeepSAD(pretrain=False, n_networks=2, epochs=2, batch_size=50, random_state=1).fit(X, y)
    calls = {"n": 0}
    real_write, real_cleanup = persistence._write_atomic, persistence._remove_stale_weights

    def crash_at(step):
        calls["n"] += 1
        if calls["n"] == failing_write:
            raise KeyboardInterrupt("simulated crash")
        return step

    monkeypatch.setattr(persistence, "_write_atomic", lambda path, payload: crash_at(real_write)(path, payload))
    monkeypatch.setattr(persistence, "_remove_stale_weights", lambda directory, keep: crash_at(real_cleanup)(directory, keep))
    with pytest.raises(KeyboardInterrupt):
        new.save(tmp_path / "m")
    loaded = deepsad.load(tmp_path / "m")
    expected = old_scores if failing_write < 3 else new.anomaly_score(X)
    np.testing.assert_array_equal(loaded.anomaly_score(X), expected)
    assert not [p.name for p in (tmp_path / "m").iterdir() if p.name.endswith(".tmp")]


def test_saving_again_replaces_the_model_and_removes_the_old_weights(tmp_path, data, fitted):
    X, y = data
    fitted.save(tmp_path / "m")
    first = weights_path(tmp_path / "m")
    other = DeepSAD(pretrain=False, n_networks=2, epochs=2, batch_size=50, random_state=1).fit(X, y)
    other.save(tmp_path / "m")
    assert not first.exists() and weights_path(tmp_path / "m").exists()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", weights_path(tmp_path / "m").name]
    np.testing.assert_array_equal(deepsad.load(tmp_path / "m").anomaly_score(X), other.anomaly_score(X))
    fitted.save(tmp_path / "m")
    fitted.save(tmp_path / "m")  # the same bytes again: same file name, still loadable
    np.testing.assert_array_equal(deepsad.load(tmp_path / "m").anomaly_score(X), fitted.anomaly_score(X))


def test_model_files_follow_the_umask(tmp_path, fitted):
    import os

    previous = os.umask(0o022)
    try:
        fitted.save(tmp_path / "m")
    finally:
        os.umask(previous)
    for path in (tmp_path / "m" / "model.json", weights_path(tmp_path / "m")):
        assert path.stat().st_mode & 0o777 == 0o644, path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["fitted"].update(threshold="high"), "threshold|could not convert"),
        (lambda c: c["fitted"].update(input_shape=None), "valid DeepSAD model"),
        (lambda c: c.update(params=["not", "a", "dict"]), "valid DeepSAD model"),
        (lambda c: c["fitted"].pop("offset"), "offset"),
    ],
)
def test_malformed_but_consistent_content_is_a_model_file_error(tmp_path, fitted, change, message):
    fitted.save(tmp_path / "m")
    _rewrite_consistently(tmp_path / "m" / "model.json", change)
    with pytest.raises(ModelFileError, match=message):
        deepsad.load(tmp_path / "m")


def test_a_weights_file_outside_the_directory_is_refused(tmp_path, fitted):
    fitted.save(tmp_path / "m")
    _rewrite_consistently(tmp_path / "m" / "model.json", lambda c: c.update(weights_file="../elsewhere.safetensors"))
    with pytest.raises(ModelFileError, match="invalid weights file"):
        deepsad.load(tmp_path / "m")
