"""benchmarks/quality_peers.py: DeepOD's DeepSAD on the tabular benchmark's own draws.

The peer must see what deepsad's methods see (the runner's draw, standardization and
training cap), name its scenarios as ``deepsad experiment rank`` names the stores', and
resume. Only the last test needs DeepOD; the others replace it by a stand-in.
"""

from __future__ import annotations

import csv
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepsad.experiments.config import config_from_dict
from deepsad.experiments.grid import expand
from deepsad.experiments.rank_report import read_extra_rows, scenario_labels
from deepsad.experiments.runner import RunContext, run_group

from helpers import benchmark_script, require_file


@pytest.fixture(scope="module")
def qp():
    """The script as a module (the benchmarks folder is not a package)."""
    with benchmark_script("quality_peers") as module:
        yield module


def need(data_root: Path, *relative: str) -> None:
    for name in relative:
        require_file(data_root / name)


# --- the task list and the data: no DeepOD needed ------------------------------------------


@pytest.mark.parametrize("profile", ["full", "polluted", "quick"])
def test_tasks_are_the_configs_setups_with_the_deep_methods_cap(qp, profile):
    config = qp.load_benchmark(profile)
    tasks = qp.peer_tasks(config)
    setups = {(t.dataset, t.seed) for t in expand(config)}
    assert sorted((t.dataset, t.seed) for t in tasks) == sorted(setups)  # each setup once
    cap = next(m for m in config.methods if m.name == "deepsad").max_train_samples
    assert cap is not None and all(t.max_train_samples == cap for t in tasks)
    assert {t.profile for t in tasks} == {profile}
    if profile != "quick":
        assert len(tasks) == 37 * 5


def test_only_restricts_without_changing_the_tasks(qp):
    whole = {(t.dataset, t.seed): t.config_hash for t in qp.peer_tasks(qp.load_benchmark("full"))}
    some = qp.peer_tasks(qp.load_benchmark("full", only=["cardio", "adbench-wine"]))
    assert {t.dataset for t in some} == {"cardio", "adbench-wine"}
    assert all(whole[(t.dataset, t.seed)] == t.config_hash for t in some)
    with pytest.raises(Exception, match="not-a-set not in the 'full' profile"):
        qp.load_benchmark("full", only=["not-a-set"])


def test_scenarios_are_named_as_rank_names_the_stores(qp):
    # two stores of one experiment that differ by profile: rank's scenarios are the profiles
    stores = pd.DataFrame({"experiment": ["tabular"] * 2, "profile": ["full", "polluted"], "parameter": ["", ""]})
    assert list(scenario_labels(stores)) == ["full", "polluted"]
    assert [qp.peer_tasks(qp.load_benchmark(p, only=["cardio"]))[0].profile for p in ("full", "polluted")] == \
        ["full", "polluted"]


@pytest.mark.parametrize("polluted", [False, True])
def test_peer_data_is_what_the_runner_fits_on(qp, data_root, monkeypatch, polluted):
    need(data_root, "odds/thyroid.mat")
    scenario = {"gamma_l": 0.01, "max_samples": 600}
    if polluted:
        scenario = {"gamma_l": 0.0, "keep_all_anomalies": True, "labeled_anomaly_fraction": 0.1, "max_samples": 600}
    # the cap (100) cuts the ~355-row training set; iforest shares deepsad's cap, and a cap
    # is drawn from the seed alone, so the runner's iforest fit sees the peer's subset
    config = config_from_dict({
        "experiment": "bench", "datasets": ["thyroid"], "seeds": [3], "scenario": scenario,
        "preprocessing": {"standardize": True},
        "methods": {"deepsad": {"max_train_samples": 100}, "iforest": {"n_estimators": 10, "max_train_samples": 100}},
    })
    (task,) = qp.peer_tasks(config)
    data = qp.peer_data(task, str(data_root))
    assert data.X_train.shape[0] == 100 and data.summary["train_cap"]["of"] > 100

    import deepsad.methods

    seen: dict[str, np.ndarray] = {}
    real = deepsad.methods.make_detector

    def spy(name, params):
        detector = real(name, params)
        fit, score = detector.fit, detector.anomaly_score

        def recording_fit(X, y=None):
            seen["X_train"], seen["y_train"] = np.array(X), np.array(y)
            return fit(X, y)

        def recording_score(X):
            seen["X_test"] = np.array(X)
            return score(X)

        detector.fit, detector.anomaly_score = recording_fit, recording_score
        return detector

    monkeypatch.setattr(deepsad.methods, "make_detector", spy)
    (iforest,) = [t for t in expand(config) if t.method == "iforest"]
    (row,) = run_group([iforest], RunContext(data_root=str(data_root)))
    assert row["status"] == "done", row.get("error")
    np.testing.assert_array_equal(seen["X_train"], data.X_train)
    np.testing.assert_array_equal(seen["y_train"], data.y_train)
    np.testing.assert_array_equal(seen["X_test"], data.X_test)
    assert row["n_train"] == data.y_train.size and row["n_test"] == data.y_test.size
    np.testing.assert_array_equal(qp.deepod_labels(data.y_train), (data.y_train == -1).astype(int))
    assert qp.deepod_labels(np.array([1, 0, -1])).tolist() == [0, 0, 1]


# --- the driver: CSV rows, failures, resuming (a stand-in for DeepOD) -------------------------


class _StandIn:
    """Scores the distance to the training mean; refuses data with ``fail_features`` columns."""

    fail_features: int | None = None

    def __init__(self, **params):
        self.params = params

    def fit(self, X, y):
        if X.shape[1] == self.fail_features:
            raise RuntimeError("stand-in refuses\nthis data")
        assert set(np.unique(y)) <= {0, 1} and y.sum() >= 1
        self.mean_ = X.mean(axis=0)
        return self

    def decision_function(self, X):
        return np.linalg.norm(X - self.mean_, axis=1)


@pytest.fixture
def stand_in(monkeypatch):
    tabular = types.ModuleType("deepod.models.tabular")
    tabular.DeepSAD = _StandIn
    for name, module in {"deepod": types.ModuleType("deepod"), "deepod.models": types.ModuleType("deepod.models"),
                         "deepod.models.tabular": tabular}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(_StandIn, "fail_features", None)
    return _StandIn


def test_failed_fits_are_rows_and_a_rerun_retries_them(qp, data_root, tmp_path, stand_in):
    need(data_root, "odds/thyroid.mat", "adbench/wine.npz")
    out = tmp_path / "peer.csv"
    stand_in.fail_features = 6  # thyroid
    first = qp.run_peers("quick", out, data_root=data_root, only=["thyroid", "adbench-wine"])
    assert (first.n_tasks, first.n_done, first.n_failed) == (2, 1, 1)
    rows = {r["dataset"]: r for r in csv.DictReader(out.open())}
    assert rows["thyroid"]["status"] == "failed" and rows["thyroid"]["auc"] == ""
    assert rows["thyroid"]["error"] == "RuntimeError: stand-in refuses this data"
    assert rows["adbench-wine"]["status"] == "done" and 0.0 <= float(rows["adbench-wine"]["auc"]) <= 1.0
    assert {(r["method"], r["scenario"]) for r in rows.values()} == {("deepod-deepsad", "quick")}

    stand_in.fail_features = None
    second = qp.run_peers("quick", out, data_root=data_root, only=["thyroid", "adbench-wine"])
    assert (second.n_skipped, second.n_done, second.n_failed) == (1, 1, 0)
    frame = pd.read_csv(out)
    assert len(frame) == 2 and set(frame["status"]) == {"done"}  # the failed row was replaced
    third = qp.run_peers("quick", out, data_root=data_root, only=["thyroid"])
    assert (third.n_skipped, third.n_done) == (1, 0) and len(pd.read_csv(out)) == 2  # other rows kept
    assert len(read_extra_rows(out)) == 2  # what `deepsad experiment rank --extra` reads


# --- DeepOD itself -----------------------------------------------------------------------------


def test_deepod_on_one_tiny_draw(qp, data_root, tmp_path):
    pytest.importorskip("deepod.models.tabular",
                        reason="DeepOD is not installed (a benchmark-only peer: bash scripts/bench.sh installs it)")
    need(data_root, "adbench/wine.npz")
    out = tmp_path / "peer.csv"
    assert qp.main(["--profile", "quick", "--only", "adbench-wine", "--data-root", str(data_root),
                    "--out", str(out)]) == 0
    (row,) = list(csv.DictReader(out.open()))
    assert row["status"] == "done", row["error"]
    identity = (row["dataset"], row["method"], row["seed"], row["scenario"])
    assert identity == ("adbench-wine", "deepod-deepsad", "0", "quick")
    (task,) = qp.peer_tasks(qp.load_benchmark("quick", only=["adbench-wine"]))
    data = qp.peer_data(task, str(data_root))
    assert int(row["n_train"]) == data.y_train.size and int(row["n_test"]) == data.y_test.size
    assert int(row["n_labeled_anomaly"]) == int((data.y_train == -1).sum()) >= 1
    assert 0.5 < float(row["auc"]) <= 1.0 and float(row["fit_seconds"]) > 0
    assert row["deepod"] and row["device"] in ("cpu", "cuda") and row["threads"] == "1"
