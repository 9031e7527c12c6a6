"""read_table: every supported format, and clear errors for bad files."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest
import scipy.io

from deepsad.data.tabular import TableData, read_table
from deepsad.errors import DataFileError, InvalidInputError


@pytest.fixture
def frame():
    return pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6], "label": [0, -1, 1]})


def test_csv_with_and_without_label(tmp_path, frame):
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = read_table(tmp_path / "t.csv")
    assert isinstance(table, TableData)
    assert table.X.dtype == np.float64 and table.X.shape == (3, 2)
    assert table.feature_names == ["a", "b"]
    assert table.labels.tolist() == [0, -1, 1] and table.labels.dtype == np.int64
    assert table.ground_truth is None
    frame.drop(columns="label").to_csv(tmp_path / "u.csv", index=False)
    unlabeled = read_table(tmp_path / "u.csv")
    assert unlabeled.labels is None and unlabeled.X.shape == (3, 2)
    everything = read_table(tmp_path / "t.csv", label_column=None)
    assert everything.X.shape == (3, 3) and everything.labels is None


def test_csv_custom_label_and_ground_truth_columns(tmp_path, frame):
    frame.assign(y=[0, 1, 0]).rename(columns={"label": "semi"}).to_csv(tmp_path / "t.csv", index=False)
    table = read_table(tmp_path / "t.csv", "semi", ground_truth_column="y")
    assert table.feature_names == ["a", "b"]
    assert table.labels.tolist() == [0, -1, 1] and table.ground_truth.tolist() == [0, 1, 0]
    with pytest.raises(DataFileError, match="no ground-truth column 'gt'"):
        read_table(tmp_path / "t.csv", "semi", ground_truth_column="gt")


def test_float_labels_kept_for_the_estimator_to_check(tmp_path, frame):
    frame.assign(label=[0.0, 0.5, 1.0]).to_csv(tmp_path / "t.csv", index=False)
    assert read_table(tmp_path / "t.csv").labels.tolist() == [0.0, 0.5, 1.0]


def test_non_numeric_column_is_named(tmp_path, frame):
    frame.assign(city=["x", "y", "z"]).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataFileError, match="column 'city' is not numeric"):
        read_table(tmp_path / "t.csv")
    frame.assign(label=["normal", "anomaly", "normal"]).to_csv(tmp_path / "l.csv", index=False)
    with pytest.raises(DataFileError, match="label column 'label' must hold numbers"):
        read_table(tmp_path / "l.csv")


def test_empty_tables(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFileError, match="is empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,b,label\n")
    with pytest.raises(DataFileError, match="holds no rows"):
        read_table(tmp_path / "header.csv")
    (tmp_path / "onlylabel.csv").write_text("label\n1\n")
    with pytest.raises(DataFileError, match="no feature columns"):
        read_table(tmp_path / "onlylabel.csv")


def test_npy(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "x.npy", X)
    table = read_table(tmp_path / "x.npy")
    assert np.array_equal(table.X, X) and table.labels is None and table.feature_names == ["x0", "x1", "x2"]
    np.save(tmp_path / "v.npy", np.arange(3.0))
    with pytest.raises(DataFileError, match=r"must be 2-D .* got shape \(3,\); reshape"):
        read_table(tmp_path / "v.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="object arrays are refused"):
        read_table(tmp_path / "o.npy")


def test_npz(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    np.savez(tmp_path / "xl.npz", X=X, label=np.array([0, 0, -1, 1]))
    table = read_table(tmp_path / "xl.npz")
    assert np.array_equal(table.X, X) and table.labels.tolist() == [0, 0, -1, 1]
    np.savez(tmp_path / "one.npz", data=X)
    assert np.array_equal(read_table(tmp_path / "one.npz").X, X)
    np.savez(tmp_path / "two.npz", a=X, b=X)
    with pytest.raises(DataFileError, match=r"^\S+two.npz has no array named 'X' \(arrays: a, b\)$"):
        read_table(tmp_path / "two.npz")
    np.savez(tmp_path / "short.npz", X=X, label=np.array([0, 1]))
    with pytest.raises(DataFileError, match="has 2 values but X has 4 rows"):
        read_table(tmp_path / "short.npz")


def test_parquet(tmp_path, frame):
    pytest.importorskip("pyarrow")
    frame.to_parquet(tmp_path / "t.parquet")
    table = read_table(tmp_path / "t.parquet")
    assert table.X.shape == (3, 2) and table.labels.tolist() == [0, -1, 1]
    frame.to_parquet(tmp_path / "t.pq")
    assert read_table(tmp_path / "t.pq").X.shape == (3, 2)


def test_parquet_without_pyarrow(tmp_path, frame, monkeypatch):
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError("no pyarrow")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(DataFileError, match=r"reading Parquet needs pyarrow: pip install 'deepsad\[parquet\]'"):
        read_table(tmp_path / "t.parquet")


def test_mat_gives_ground_truth_not_labels(tmp_path):
    scipy.io.savemat(tmp_path / "o.mat", {"X": np.eye(3), "y": np.array([[0], [1], [0]])})
    table = read_table(tmp_path / "o.mat")
    assert table.labels is None and table.ground_truth.tolist() == [0, 1, 0] and table.X.shape == (3, 3)


def test_unknown_suffix_missing_file_bad_argument(tmp_path):
    (tmp_path / "t.xlsx").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"unsupported file type '.xlsx'; supported: .csv, .npy"):
        read_table(tmp_path / "t.xlsx")
    with pytest.raises(DataFileError, match="data file not found"):
        read_table(tmp_path / "absent.csv")
    with pytest.raises(InvalidInputError, match="label_column"):
        read_table(tmp_path / "absent.csv", label_column=3)
