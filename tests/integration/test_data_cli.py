"""``deepsad data``: run in-process, check output and exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepsad.cli import main
from deepsad.data import registry

from helpers import require_file


@pytest.fixture(autouse=True)
def _clean_user_registry(monkeypatch):
    monkeypatch.setattr(registry, "_USER_DATASETS", {})


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, out, err, fragment):
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepsad: error: "), err
    assert fragment in lines[0] and "Traceback" not in err


def test_list_present_and_missing(capsys, tmp_path, data_root):
    code, out, err = run(capsys, "data", "list", "--data-root", str(tmp_path))
    assert code == 0 and f"data root: {tmp_path}" in out
    assert all(name in out for name in ("mnist", "fmnist", "cifar10", "satimage-2", "thyroid"))
    assert "missing" in out and "deepsad data download NAME" in out
    require_file(data_root / "odds" / "cardio.mat")
    code, out, _ = run(capsys, "data", "list", "--data-root", str(data_root), "--json")
    rows = {r["name"]: r for r in json.loads(out)["datasets"]}
    assert code == 0 and rows["cardio"]["status"] == "present" and rows["cardio"]["kind"] == "odds"


def test_list_uses_environment_variable(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSAD_DATA", str(tmp_path))
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and f"data root: {tmp_path} (from $DEEPSAD_DATA)" in out


def test_describe_dataset_and_files(capsys, tmp_path, data_root):
    csv = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": [0, 0, -1]}).to_csv(csv, index=False)
    code, out, _ = run(capsys, "data", "describe", str(csv), "--json")
    d = json.loads(out)
    assert code == 0 and d["shape"] == [3, 1] and d["labels"] == {"-1": 1, "0": 2}
    npz = tmp_path / "imgs.npz"
    np.savez(npz, X=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 1, 1]))
    code, out, _ = run(capsys, "data", "describe", str(npz))
    assert code == 0 and "X: 4 x 8 x 8 uint8" in out and "classes 0: 1, 1: 3" in out
    require_file(data_root / "odds" / "thyroid.mat")
    code, out, _ = run(capsys, "data", "describe", "thyroid", "--data-root", str(data_root))
    assert code == 0 and "3772 samples x 6 features" in out and "93 outliers" in out
    require_file(data_root / "mnist" / "train-images-idx3-ubyte.gz")
    code, out, _ = run(capsys, "data", "describe", "mnist", "--data-root", str(data_root), "--json")
    d = json.loads(out)
    assert d["splits"]["train"]["shape"] == [60000, 1, 28, 28]
    assert d["splits"]["train"]["classes"]["0"] == 5923 and d["splits"]["test"]["classes"]["1"] == 1135


def test_sample_mnist_paper_counts_and_indices(capsys, tmp_path, data_root):
    require_file(data_root / "mnist" / "train-labels-idx1-ubyte.gz")
    out_file = tmp_path / "draw.npz"
    code, out, err = run(capsys, "data", "sample", "mnist", "--data-root", str(data_root), "--normal-class", "0",
                         "--known-classes", "1", "--gamma-l", "0.05", "--gamma-p", "0.1", "--seed", "0",
                         "--indices", str(out_file))
    assert code == 0, err
    summary = json.loads(out)
    with capsys.disabled():
        print("\ndeepsad data sample mnist 0/1/.05/.1:", json.dumps(summary["train"]))
    assert summary["train"]["unlabeled_normal"] == 5923
    assert summary["train"]["pollution"] == 658
    assert summary["train"]["labeled_anomaly"] == 346
    assert summary["test"] == {"total": 10000, "normal": 980, "anomaly": 9020}
    with np.load(out_file) as saved:
        assert saved["train_indices"].size == 6927 and saved["train_semi_labels"].dtype == np.int8
        assert int((saved["train_semi_labels"] == -1).sum()) == 346
        assert saved["test_indices"].size == 10000 and int(saved["test_ground_truth"].sum()) == 9020
        assert json.loads(str(saved["summary"]))["seed"] == 0
    # same seed, same draw; k_l drawn at random reproducibly
    code, out2, _ = run(capsys, "data", "sample", "mnist", "--data-root", str(data_root), "--normal-class", "0",
                        "--known-classes", "1", "--gamma-l", "0.05", "--gamma-p", "0.1", "--seed", "0")
    assert json.loads(out2)["train_per_class"] == summary["train_per_class"]
    code, out3, _ = run(capsys, "data", "sample", "mnist", "--data-root", str(data_root), "--normal-class", "3",
                        "--k-l", "3", "--gamma-l", "0.05", "--gamma-p", "0.1", "--seed", "4")
    known = json.loads(out3)["parameters"]["known_anomaly_classes"]
    assert code == 0 and len(known) == 3 and 3 not in known


def test_sample_odds(capsys, data_root):
    require_file(data_root / "odds" / "arrhythmia.mat")
    code, out, _ = run(capsys, "data", "sample", "arrhythmia", "--data-root", str(data_root), "--gamma-l", "0.01", "--seed", "3")
    s = json.loads(out)
    assert code == 0 and s["scenario"] == "odds" and s["seed"] == 3
    assert s["split"] == {"train_normal": 232, "train_anomaly": 40, "test_normal": 154, "test_anomaly": 26}
    assert s["train"]["labeled_anomaly"] == 2 and s["train"]["pollution"] == 0


def test_sample_user_tabular_dataset(capsys, tmp_path):
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=200), "gt": (np.arange(200) < 40).astype(int)}).to_csv(path, index=False)
    registry.register_dataset("mytab", path, label_column=None, ground_truth_column="gt", persist=True, data_root=tmp_path)
    registry._USER_DATASETS.clear()  # the CLI must find it through datasets.json
    code, out, _ = run(capsys, "data", "sample", "mytab", "--data-root", str(tmp_path), "--gamma-l", "0.05")
    s = json.loads(out)
    assert code == 0 and s["split"]["test_anomaly"] == 16 and s["train"]["labeled_anomaly"] == count(0.05, 96)
    code, out, _ = run(capsys, "data", "list", "--data-root", str(tmp_path))
    assert "mytab" in out


def count(share, base):
    from deepsad.data.scenarios import count_from_share

    return count_from_share(share, base)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["data", "describe", "nosuchset"], "is neither a known dataset nor a file; known datasets:"),
        (["data", "describe", "missing.csv"], "data file not found: missing.csv"),
        (["data", "sample", "nosuchset", "--gamma-l", "0.1"], "unknown dataset 'nosuchset'; known datasets: mnist, fmnist"),
        (["data", "sample", "mnist", "--normal-class", "0", "--known-classes", "1", "--gamma-l", "0.05"],
         "mnist: file train-labels-idx1-ubyte.gz not found in"),
        (["data", "sample", "cardio", "--gamma-l", "0.01", "--normal-class", "0"], "apply to image datasets only"),
        (["data", "sample", "cardio", "--gamma-l", "0.01", "--indices", "out.txt"], "--indices must name a .npz file"),
    ],
)
def test_user_errors_one_line_exit_2(capsys, tmp_path, argv, fragment):
    code, out, err = run(capsys, *argv, "--data-root", str(tmp_path))
    assert_user_error(code, out, err, fragment)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--normal-class", "11", "--known-classes", "1", "--gamma-l", "0.05"], "normal class 11 is not in the data"),
        (["--normal-class", "0", "--known-classes", "1", "--gamma-l", "1.0"], "gamma_l must be in [0.0, 1.0), got 1.0"),
        (["--normal-class", "0", "--known-classes", "1", "--gamma-l", "0.05", "--gamma-p", "-0.1"], "gamma_p must be in"),
        (["--normal-class", "0", "--known-classes", "1", "--gamma-l", "0.9"], "requested 53307, available 6742"),
        (["--normal-class", "0", "--gamma-l", "0.05"], "give --known-classes"),
        (["--normal-class", "0", "--k-l", "10", "--gamma-l", "0.05"], "requested 10, available 9"),
    ],
)
def test_sample_bad_parameters_write_nothing(capsys, tmp_path, data_root, extra, fragment):
    require_file(data_root / "mnist" / "train-labels-idx1-ubyte.gz")
    out_file = tmp_path / "never.npz"
    code, out, err = run(capsys, "data", "sample", "mnist", "--data-root", str(data_root), *extra, "--indices", str(out_file))
    assert_user_error(code, out, err, fragment)
    assert out == "" and list(tmp_path.iterdir()) == []


def test_truncated_file_is_a_user_error(capsys, tmp_path, data_root):
    source = require_file(data_root / "mnist" / "train-labels-idx1-ubyte.gz")
    (tmp_path / "mnist").mkdir()
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / "mnist" / name).write_bytes(b"")
    (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(source.read_bytes()[:5000])
    code, out, err = run(capsys, "data", "sample", "mnist", "--data-root", str(tmp_path), "--normal-class", "0",
                         "--known-classes", "1", "--gamma-l", "0.05")
    assert_user_error(code, out, err, "is truncated")


def test_download_offline_is_a_user_error(capsys, tmp_path, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code, out, err = run(capsys, "data", "download", "thyroid", "--data-root", str(tmp_path), "--no-progress")
    assert_user_error(code, out, err, "could not download thyroid.mat")
    assert "offline" in err and not (tmp_path / "odds" / "thyroid.mat").exists()
    code, out, err = run(capsys, "data", "download", "nope", "--data-root", str(tmp_path))
    assert_user_error(code, out, err, "unknown dataset 'nope'")


def test_list_and_describe_adbench(capsys, tmp_path, data_root):
    code, out, _ = run(capsys, "data", "list", "--data-root", str(tmp_path), "--json")
    rows = {r["name"]: r for r in json.loads(out)["datasets"]}
    adbench = [name for name in rows if name.startswith("adbench-")]
    assert code == 0 and len(adbench) == 31
    assert rows["adbench-magic.gamma"]["kind"] == "benchmark" and rows["adbench-magic.gamma"]["status"] == "missing"
    assert rows["adbench-magic.gamma"]["location"] == str(tmp_path / "adbench")
    require_file(data_root / "adbench" / "glass.npz")
    code, out, _ = run(capsys, "data", "describe", "adbench-glass", "--data-root", str(data_root))
    assert code == 0 and "adbench-glass (benchmark): ADBench glass" in out
    assert "214 samples x 7 features" in out and "9 outliers of 214" in out
    code, out, _ = run(capsys, "data", "sample", "adbench-glass", "--gamma-l", "0.01", "--seed", "1",
                       "--data-root", str(data_root))
    assert code == 0 and json.loads(out)["split"]["test_anomaly"] == 4
