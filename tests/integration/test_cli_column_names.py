"""`deepsad fit` saves the training columns' names; `deepsad score` matches columns by them."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from deepsad import load
from deepsad.cli import main

FAST = ["--epochs", "2", "--batch-size", "32", "--no-progress"]


@pytest.fixture()
def trained(tmp_path):
    rng = np.random.default_rng(0)
    # scales that differ per column, so that a column mix-up changes every score
    frame = pd.DataFrame(rng.normal(size=(90, 4)) * [1, 10, 100, 1000] + [0, 5, 50, 500], columns=["a", "b", "c", "d"])
    frame["label"] = 0
    frame.loc[:2, "label"] = -1
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    assert main(["fit", str(path), "--out", str(tmp_path / "m"), *FAST]) == 0
    return tmp_path, frame


def _scores(path) -> np.ndarray:
    return np.array([float(row["anomaly_score"]) for row in csv.DictReader(open(path))])


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_the_model_keeps_the_training_column_names(trained):
    folder, _ = trained
    assert list(load(folder / "m").feature_names_in_) == ["a", "b", "c", "d"]


def test_reordered_columns_score_the_same(trained, capsys):
    folder, frame = trained
    assert main(["score", str(folder / "m"), str(folder / "train.csv"), "--out", str(folder / "s1.csv")]) == 0
    frame[["d", "c", "label", "b", "a"]].to_csv(folder / "reversed.csv", index=False)
    assert main(["score", str(folder / "m"), str(folder / "reversed.csv"), "--out", str(folder / "s2.csv")]) == 0
    np.testing.assert_array_equal(_scores(folder / "s2.csv"), _scores(folder / "s1.csv"))


def test_missing_or_unknown_columns_are_named(trained, capsys):
    folder, frame = trained
    frame.drop(columns=["c"]).assign(z=0.0).to_csv(folder / "other.csv", index=False)
    assert main(["score", str(folder / "m"), str(folder / "other.csv"), "--out", str(folder / "s.csv")]) == 2
    line = _error_line(capsys)
    assert "missing 'c'" in line and "not seen in training 'z'" in line
    assert not (folder / "s.csv").exists()


def test_headerless_data_are_matched_by_position(trained, capsys):
    folder, frame = trained
    np.save(folder / "rows.npy", frame[["a", "b", "c", "d"]].to_numpy())
    assert main(["score", str(folder / "m"), str(folder / "rows.npy"), "--out", str(folder / "s3.csv")]) == 0
    assert main(["score", str(folder / "m"), str(folder / "train.csv"), "--out", str(folder / "s1.csv")]) == 0
    np.testing.assert_allclose(_scores(folder / "s3.csv"), _scores(folder / "s1.csv"), rtol=1e-6)
