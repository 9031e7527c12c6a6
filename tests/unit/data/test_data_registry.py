"""Data root, datasets by name, user datasets, and the errors for missing files."""

from __future__ import annotations

import gzip
import json
import pickle
import struct

import numpy as np
import pandas as pd
import pytest

from deepsad import data as D
from deepsad.data import registry
from deepsad.errors import DataFileError, InvalidInputError


@pytest.fixture(autouse=True)
def _clean_user_registry(monkeypatch):
    monkeypatch.setattr(registry, "_USER_DATASETS", {})


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSAD_DATA", str(tmp_path / "env"))
    assert D.resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert D.resolve_data_root() == tmp_path / "env"
    assert registry.data_root_origin() == "from $DEEPSAD_DATA"
    monkeypatch.delenv("DEEPSAD_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if registry.sys.platform.startswith("linux"):
        assert D.resolve_data_root() == tmp_path / "cache" / "deepsad" / "data"
    assert D.resolve_data_root() == D.default_data_root()
    assert "default" in registry.data_root_origin()


def test_builtin_names_and_unknown_name():
    names = [info.name for info in D.list_datasets()]
    assert names[:9] == ["mnist", "fmnist", "cifar10", "arrhythmia", "cardio", "satellite", "satimage-2", "shuttle", "thyroid"]
    with pytest.raises(InvalidInputError, match=r"unknown dataset 'mnst'; known datasets: mnist, fmnist, cifar10, arrhythmia"):
        D.get_dataset("mnst")
    for info in D.list_datasets():
        # every built-in file has a download (CIFAR through its archive) with a checksum
        remote = [info.archive] if info.archive else list(info.files)
        assert all(r.urls and (r.md5 or r.sha256) for r in remote)


def test_missing_file_error_says_what_where_and_how(tmp_path):
    with pytest.raises(DataFileError) as caught:
        D.load_images("mnist", "train", tmp_path)
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz not found in" in message and str(tmp_path / "mnist") in message
    assert "deepsad data download mnist" in message and "https://" in message
    assert "\n" not in message
    with pytest.raises(DataFileError, match=r"cifar10: file data_batch_1 not found .*cifar-10-python.tar.gz and unpack it in"):
        D.load_images("cifar10", "train", tmp_path)
    with pytest.raises(DataFileError, match=r"thyroid: file thyroid.mat not found .*raw.githubusercontent.com/yzhao062/pyod"):
        D.load_odds("thyroid", tmp_path)
    with pytest.raises(InvalidInputError, match="split must be"):
        D.load_images("mnist", "val", tmp_path)
    with pytest.raises(InvalidInputError, match="not an image dataset"):
        D.load_images("cardio", "train", tmp_path)


def _idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def test_loaders_on_a_synthetic_root(tmp_path):
    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    X, y = D.load_images("fmnist", "test", tmp_path)
    assert X.shape == (6, 1, 28, 28) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.allclose(X[:, 0] * 255, images)
    assert D.load_labels("fmnist", "train", tmp_path).tolist() == labels.tolist()
    # a decompressed copy is accepted when the .gz is absent
    raw = folder / "train-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress((folder / "train-labels-idx1-ubyte.gz").read_bytes()))
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    assert D.load_labels("fmnist", "train", tmp_path).tolist() == labels.tolist()
    cifar = tmp_path / "cifar10" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [3, 4]}
    (cifar / "test_batch").write_bytes(pickle.dumps(batch))
    X, y = D.load_images("cifar10", "test", tmp_path)
    assert X.shape == (2, 3, 32, 32) and y.tolist() == [3, 4]
    assert [p.name for p in D.get_dataset("cifar10").missing_files(tmp_path)] == [f"data_batch_{i}" for i in range(1, 6)]


def test_register_tabular_dataset(tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 0], "label": [0, -1, 0, 1]}).to_csv(path, index=False)
    info = D.register_dataset("mine", path, ground_truth_column="y", description="my table")
    assert info.kind == "tabular" and D.get_dataset("mine") is info
    table = D.load_table("mine")
    assert table.feature_names == ["a"] and table.ground_truth.tolist() == [0, 1, 0, 0] and table.labels.tolist() == [0, -1, 0, 1]
    assert "mine" in {i.name for i in D.list_datasets()}
    with pytest.raises(InvalidInputError, match="already registered"):
        D.register_dataset("mine", path)
    D.register_dataset("mine", path, overwrite=True)
    with pytest.raises(InvalidInputError, match="built-in"):
        D.register_dataset("mnist", path)
    with pytest.raises(InvalidInputError, match="dataset name must"):
        D.register_dataset("../evil", path)
    with pytest.raises(DataFileError, match="file not found"):
        D.register_dataset("ghost", tmp_path / "ghost.csv")
    with pytest.raises(InvalidInputError, match="kind must be"):
        D.register_dataset("k", path, kind="audio")
    D.unregister_dataset("mine")
    with pytest.raises(InvalidInputError, match="unknown dataset 'mine'"):
        D.get_dataset("mine")


def test_register_image_dataset_and_persist(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    rng = np.random.default_rng(0)
    path = tmp_path / "pics.npz"
    np.savez(path, X=rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8), y=np.array([0, 1, 1, 2, 0]))
    D.register_dataset("pics", path, kind="images", channels_last=True, persist=True, data_root=root)
    X, y = D.load_images("pics", "train")
    assert X.shape == (5, 3, 8, 8) and y.tolist() == [0, 1, 1, 2, 0]
    with pytest.raises(DataFileError, match=r"^\S+pics.npz has no test split: arrays X_test and y_test are missing"):
        D.load_images("pics", "test")
    # a new process knows it from <root>/datasets.json
    registry._USER_DATASETS.clear()
    entries = json.loads((root / "datasets.json").read_text())
    assert entries["pics"]["kind"] == "images"
    assert D.get_dataset("pics", root).channels_last
    assert D.load_images("pics", "train", root)[0].shape == (5, 3, 8, 8)
    with pytest.raises(InvalidInputError, match="unknown dataset 'pics'"):
        D.get_dataset("pics", tmp_path / "elsewhere")
    D.unregister_dataset("pics", persist=True, data_root=root)
    assert json.loads((root / "datasets.json").read_text()) == {}
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(InvalidInputError, match="must be an .npz file"):
        D.register_dataset("bad", tmp_path / "x.csv", kind="images")


def test_corrupt_persistent_registry(tmp_path):
    (tmp_path / "datasets.json").write_text("[1, 2]")
    with pytest.raises(DataFileError, match="not a valid dataset registry"):
        D.get_dataset("whatever", tmp_path)
