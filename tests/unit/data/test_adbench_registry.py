"""The ADBench development suite as built-in datasets: names, downloads, reading, errors (offline)."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from deepsad import data as D
from deepsad.data import registry
from deepsad.errors import DataFileError

from helpers import require_file

ODDS = ("arrhythmia", "cardio", "satellite", "satimage-2", "shuttle", "thyroid")
COMMIT = "3dac8221081e190f157d78e93bfa8867f90d0965"


def _adbench() -> list[D.DatasetInfo]:
    return [info for info in D.list_datasets() if info.name.startswith("adbench-")]


def test_31_builtin_sets_with_pinned_urls_and_checksums():
    infos = _adbench()
    assert len(infos) == 31
    assert {"adbench-aloi", "adbench-magic.gamma", "adbench-cardio", "adbench-cardiotocography",
            "adbench-wpbc", "adbench-donors"} <= {i.name for i in infos}
    for info in infos:
        assert info.builtin and info.kind == "benchmark" and info.folder == "adbench"
        assert info.kind in registry.BENCHMARK_KINDS and info.ground_truth_column == "y"
        (remote,) = info.files
        assert info.name == "adbench-" + remote.path.removesuffix(".npz").lower()
        assert re.fullmatch(r"[0-9a-f]{64}", remote.sha256)
        (url,) = remote.urls
        number, stem = re.fullmatch(
            rf"https://raw\.githubusercontent\.com/Minqi824/ADBench/{COMMIT}/adbench/datasets/Classical/(\d+)_(.+)\.npz", url
        ).groups()
        assert f"{stem}.npz" == remote.path
    by_name = {i.name: i.files[0] for i in infos}
    assert by_name["adbench-aloi"].urls[0].endswith("/1_ALOI.npz")
    assert by_name["adbench-magic.gamma"].urls[0].endswith("/22_magic.gamma.npz")
    assert by_name["adbench-yeast"].urls[0].endswith("/47_yeast.npz")
    # the ODDS sets keep their names and kind; ADBench's copies sit beside them
    for name in ODDS:
        assert D.get_dataset(name).kind == "odds"
    assert {f"adbench-{n}" for n in ODDS if n != "arrhythmia"} <= set(by_name)


def test_checksums_match_the_stored_files(data_root):
    folder = require_file(data_root / "adbench")
    for info in _adbench():
        path = folder / info.files[0].path
        if path.is_file() and path.stat().st_size < 5_000_000:  # the small ones: quick enough
            assert hashlib.sha256(path.read_bytes()).hexdigest() == info.files[0].sha256, info.name


def test_load_a_real_file(data_root):
    require_file(data_root / "adbench" / "WDBC.npz")
    table = D.load_table("adbench-wdbc", data_root)
    assert table.X.shape == (367, 30) and table.X.dtype == np.float64
    assert table.labels is None and int(table.ground_truth.sum()) == 10
    assert set(np.unique(table.ground_truth)) == {0, 1}


def _write_npz(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def test_missing_corrupt_and_malformed_files(tmp_path):
    with pytest.raises(DataFileError, match=r"adbench-wine: file wine.npz not found .*deepsad data download adbench-wine"
                                            r".*ADBench/3dac8221.*/45_wine.npz"):
        D.load_table("adbench-wine", tmp_path)
    path = tmp_path / "adbench" / "wine.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip file")
    with pytest.raises(DataFileError, match="wine.npz"):
        D.load_table("adbench-wine", tmp_path)
    _write_npz(path, X=np.zeros((4, 2)))
    with pytest.raises(DataFileError, match="no ground-truth array 'y'"):
        D.load_table("adbench-wine", tmp_path)
    _write_npz(path, X=np.zeros((4, 2)), y=np.array([0, 1, 2, 0]))
    with pytest.raises(DataFileError, match=r"ground truth must hold 0 \(normal\) and 1 \(anomaly\) only, found \[2\]"):
        D.load_table("adbench-wine", tmp_path)
    _write_npz(path, X=np.array([[None, 1]], dtype=object), y=np.array([0]))
    with pytest.raises(DataFileError, match="unpickling"):
        D.load_table("adbench-wine", tmp_path)
    _write_npz(path, X=np.arange(8.0).reshape(4, 2), y=np.array([0, 1, 0, 0], dtype=np.int32))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # a download cut short
    with pytest.raises(DataFileError, match="wine.npz .*(truncated or corrupt)"):
        D.load_table("adbench-wine", tmp_path)
    path.write_bytes(whole)
    table = D.load_table("adbench-wine", tmp_path)
    assert table.X.shape == (4, 2) and table.ground_truth.tolist() == [0, 1, 0, 0]
