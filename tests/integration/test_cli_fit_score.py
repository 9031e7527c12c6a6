"""`deepsad fit` / `deepsad score` / `deepsad demo` end to end, in-process."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from deepsad.cli import main

FAST = ["--epochs", "2", "--pretrain-epochs", "2", "--batch-size", "32", "--no-progress"]


@pytest.fixture()
def table(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    X[:5] += 6
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["label"] = 0
    frame.loc[:2, "label"] = -1
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_fit_then_score_writes_one_row_per_input_row(tmp_path, table, capsys):
    path, frame = table
    assert main(["fit", str(path), "--out", str(tmp_path / "model"), *FAST]) == 0
    assert "saved to" in capsys.readouterr().out
    out = tmp_path / "scores.csv"
    assert main(["score", str(tmp_path / "model"), str(path), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(frame)
    assert set(rows[0]) == {"anomaly_score", "is_anomaly"}
    scores = np.array([float(r["anomaly_score"]) for r in rows])
    assert scores[:5].mean() > np.median(scores)


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_other_formats_and_deepsvdd(tmp_path, table, suffix):
    _, frame = table
    path = tmp_path / f"train{suffix}"
    if suffix == ".npy":
        np.save(path, frame.drop(columns="label").to_numpy())
    else:
        frame.to_parquet(path)
    args = ["fit", str(path), "--out", str(tmp_path / "m"), "--method", "deepsvdd", "--objective", "soft-boundary", *FAST]
    assert main(args) == 0
    assert main(["score", str(tmp_path / "m"), str(path), "--out", str(tmp_path / "s.csv")]) == 0


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepsad: error:"), err
    assert "Traceback" not in err[0]
    return err[0]


def test_user_mistakes_give_one_line_and_exit_2(tmp_path, table, capsys):
    path, frame = table
    assert main(["fit", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m"), *FAST]) == 2
    assert "not found" in _one_line_error(capsys)

    bad_labels = frame.copy()
    bad_labels.loc[0, "label"] = 7
    bad_path = tmp_path / "bad.csv"
    bad_labels.to_csv(bad_path, index=False)
    assert main(["fit", str(bad_path), "--out", str(tmp_path / "m"), *FAST]) == 2
    assert "other than -1" in _one_line_error(capsys)

    nan = frame.copy()
    nan.loc[3, "a"] = np.nan
    nan.to_csv(bad_path, index=False)
    assert main(["fit", str(bad_path), "--out", str(tmp_path / "m"), *FAST]) == 2
    assert "NaN" in _one_line_error(capsys)

    assert main(["fit", str(path), "--out", str(tmp_path / "m"), *FAST]) == 0
    capsys.readouterr()
    frame.drop(columns=["a"]).to_csv(bad_path, index=False)
    assert main(["score", str(tmp_path / "m"), str(bad_path), "--out", str(tmp_path / "s.csv")]) == 2
    assert "features" in _one_line_error(capsys)
    assert not (tmp_path / "s.csv").exists()

    assert main(["score", str(tmp_path / "nowhere"), str(path), "--out", str(tmp_path / "s.csv")]) == 2
    assert "not found" in _one_line_error(capsys)

    weights = tmp_path / "m" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-3] + b"xyz")
    assert main(["score", str(tmp_path / "m"), str(path), "--out", str(tmp_path / "s.csv")]) == 2
    assert "checksum" in _one_line_error(capsys)


def test_help_on_every_command(capsys):
    for command in (["--help"], ["fit", "--help"], ["score", "--help"], ["demo", "--help"], ["data", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(command)
        assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_demo_prints_an_auc_table(capsys):
    assert main(["demo", "--epochs", "3", "--classes", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "Deep SAD AUC" in out and "mean" in out
