"""The SQLite result store: one row per task, atomic writes, clear refusal of bad files."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.experiments.store import (
    COLUMN_NAMES,
    ResultsFileError,
    ResultStore,
    export_results,
    parse_json_column,
    read_results,
)

REPORT_COLUMNS = ("experiment", "dataset", "parameter", "value", "method", "setup_key", "seed", "status", "auc",
                  "average_precision", "fit_seconds", "score_seconds")


def row(key: str, status: str = "done", auc: float | None = 0.9, **extra) -> dict:
    base = {
        "task_key": key, "experiment": "table6", "profile": "quick", "dataset": "cardio", "parameter": "",
        "value": 0.01, "method": "deepsad", "setup_key": key.split("/")[-2], "seed": 0, "status": status,
        "auc": auc, "average_precision": 0.5 if auc is not None else None, "fit_seconds": 1.5,
        "score_seconds": 0.01, "config_hash": "abc", "params": {"eta": 1.0}, "sampler_summary": {"train": {"total": 10}},
        "known_classes": "",
    }
    base.update(extra)
    return base


def test_write_read_and_upsert(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        run = store.begin_run({"experiment": "table6", "config": {"a": 1}, "executor": "serial", "workers": 1})
        assert store.write([row("table6/cardio/seed=0/deepsad"), row("table6/cardio/seed=1/deepsad", "failed", None,
                                                                    error="TrainingError: NaN")], run_id=run) == 2
        # a rerun of the failed task replaces its row instead of adding one
        store.write([row("table6/cardio/seed=1/deepsad", auc=0.8)], run_id=run)
        store.end_run(run, "finished", n_done=2, n_failed=0)
        assert store.count() == 2 and store.count("failed") == 0
        assert store.existing() == {"table6/cardio/seed=0/deepsad": ("done", "abc"),
                                    "table6/cardio/seed=1/deepsad": ("done", "abc")}
        assert store.runs()[0]["status"] == "finished" and store.runs()[0]["n_done"] == 2
    frame = read_results(path)
    assert tuple(frame.columns) == COLUMN_NAMES
    assert set(REPORT_COLUMNS) <= set(frame.columns)
    assert frame["auc"].tolist() == [0.9, 0.8] and frame["parameter"].tolist() == ["", ""]
    assert frame["run_id"].tolist() == [1, 1]
    assert parse_json_column(frame.loc[0, "params"]) == {"eta": 1.0}
    assert frame["value"].dtype == float and frame["seed"].dtype == "Int64"


def test_unknown_column_is_refused(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(InvalidInputError, match="unknown result column"):
            store.write([row("a/b/seed=0/m", colour="red")])
        assert store.count() == 0  # nothing half-written


def test_garbage_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "r.sqlite"
    content = b"these are not the results you are looking for\n" * 100
    path.write_bytes(content)
    with pytest.raises(ResultsFileError, match="is not a readable results database.*left untouched"):
        ResultStore(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"]


def test_truncated_database_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.write([row(f"table6/cardio/seed={i}/deepsad", params={"pad": "x" * 3000}) for i in range(50)])
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ResultsFileError):
        read_results(path)
    assert path.read_bytes() == content[: len(content) // 2]


def test_foreign_database_and_missing_file(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ResultsFileError, match="not a deepsad results file"):
        ResultStore(other)
    with pytest.raises(ResultsFileError, match="results file not found"):
        read_results(tmp_path / "missing.sqlite")
    with pytest.raises(ResultsFileError, match="is a folder"):
        ResultStore(tmp_path)


def test_export_csv_and_parquet(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.write([row("table6/cardio/seed=0/deepsad"), row("eta/mnist/eta=1.0/seed=0/deepsad", experiment="eta")])
    assert export_results(path, tmp_path / "all.csv") == 2
    frame = pd.read_csv(tmp_path / "all.csv", keep_default_na=False, na_values=[""])
    assert list(frame.columns) == list(COLUMN_NAMES) and len(frame) == 2
    assert export_results(path, tmp_path / "eta.parquet", experiment="eta") == 1
    assert pd.read_parquet(tmp_path / "eta.parquet")["experiment"].tolist() == ["eta"]
    with pytest.raises(InvalidInputError, match="experiments there: eta, table6"):
        export_results(path, tmp_path / "x.csv", experiment="table3")
    with pytest.raises(InvalidInputError, match=r"must end in \.csv or \.parquet"):
        export_results(path, tmp_path / "x.xlsx")
    assert isinstance(ResultsFileError("x"), DeepSADError)
