"""Config features of the tabular benchmark: the keep-all scenario, method variants,
per-method training caps and seed subsets -- validation, expansion, hashes and stored rows."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from deepsad.errors import InvalidInputError
from deepsad.experiments import runner
from deepsad.experiments.config import config_from_dict
from deepsad.experiments.grid import expand, group_tasks
from deepsad.experiments.runner import PreparedData, RunContext, cap_training_set, prepare_data, run_group
from deepsad.experiments.store import ResultStore, read_results

from helpers import require_file


def base(**overrides) -> dict:
    data = {
        "experiment": "bench", "datasets": ["thyroid", "cardio"], "seeds": [0, 1, 2],
        "scenario": {"gamma_l": 0.01, "max_samples": 600},
        "methods": {"iforest": {"n_estimators": 20}},
    }
    data.update(overrides)
    return data


def error_of(data: dict) -> str:
    with pytest.raises(InvalidInputError) as info:
        config_from_dict(data, source="bench.toml")
    message = str(info.value)
    assert message.startswith("bench.toml: ") and "\n" not in message
    return message


# --- the keep-all scenario in configs -------------------------------------------------

POLLUTED = {"gamma_l": 0.0, "keep_all_anomalies": True, "labeled_anomaly_fraction": 0.1, "max_samples": 600}


def test_keep_all_changes_data_hash_but_not_keys():
    clean = expand(config_from_dict(base()))
    polluted = expand(config_from_dict(base(scenario=POLLUTED)))
    assert [t.task_key for t in clean] == [t.task_key for t in polluted]
    for c, p in zip(clean, polluted):
        assert c.config_hash != p.config_hash and c.group_key != p.group_key
        assert "keep_all_anomalies" not in c.data_spec()
        assert p.data_spec()["keep_all_anomalies"] is True and p.data_spec()["labeled_anomaly_fraction"] == 0.1
    assert "keep_all_anomalies" not in config_from_dict(base()).resolved["scenario"]


@pytest.mark.parametrize(("scenario", "fragment"), [
    ({"labeled_anomaly_fraction": 0.1}, "labeled_anomaly_fraction applies only with keep_all_anomalies = true"),
    ({"gamma_l": 0.0, "keep_all_anomalies": True}, "keep_all_anomalies = true needs labeled_anomaly_fraction"),
    ({"gamma_l": 0.01, "keep_all_anomalies": True, "labeled_anomaly_fraction": 0.1}, "gamma_l and gamma_p must be 0"),
    ({"gamma_l": 0.0, "keep_all_anomalies": "yes", "labeled_anomaly_fraction": 0.1}, "keep_all_anomalies must be true or false"),
    ({"gamma_l": 0.0, "keep_all_anomalies": True, "labeled_anomaly_fraction": 2}, "labeled_anomaly_fraction must be <= 1"),
])
def test_keep_all_contradictions(scenario, fragment):
    assert fragment in error_of(base(scenario=scenario))


def test_keep_all_refuses_images_and_ratio_sweeps():
    assert "tabular benchmarks only" in error_of(base(datasets=["mnist"], scenario=POLLUTED))
    data = base(scenario=POLLUTED, sweep={"parameter": "gamma_p", "values": [0.0, 0.1]})
    assert "gamma_p cannot be swept" in error_of(data)


def test_polluted_draw_shares_the_clean_test_set(data_root):
    require_file(data_root / "odds" / "thyroid.mat")
    clean = expand(config_from_dict(base()))[0]
    polluted = expand(config_from_dict(base(scenario=POLLUTED)))[0]
    a, b = prepare_data(clean, str(data_root)), prepare_data(polluted, str(data_root))
    assert np.array_equal(a.y_test, b.y_test) and a.summary["test"] == b.summary["test"]
    assert b.summary["train"]["dropped_anomaly"] == 0 and b.summary["parameters"]["keep_all_anomalies"] is True
    assert b.X_train.shape[0] == a.summary["split"]["train_normal"] + a.summary["split"]["train_anomaly"]
    assert int((b.y_train == -1).sum()) == max(1, int(np.floor(0.1 * a.summary["split"]["train_anomaly"] + 0.5)))


# --- variants, caps, seed subsets ------------------------------------------------------

def test_variants_caps_and_seed_subsets_expand():
    data = base(methods={
        "iforest": {"n_estimators": 20},
        "iforest-small": {"method": "iforest", "n_estimators": 5, "max_train_samples": 100, "seeds": [2, 0, 7]},
    })
    config = config_from_dict(data)
    small = next(m for m in config.methods if m.name == "iforest-small")
    assert small.detector == "iforest" and small.max_train_samples == 100 and small.seeds == (0, 2)
    resolved = config.resolved["methods"]
    assert resolved["iforest-small"]["detector"] == "iforest" and resolved["iforest-small"]["seeds"] == [0, 2]
    assert set(resolved["iforest"]) == {"params", "selection", "only_at", "skip_at"}  # nothing new when unset
    tasks = expand(config)
    by_method = {}
    for t in tasks:
        by_method.setdefault(t.method, []).append(t)
    assert len(by_method["iforest"]) == 6 and len(by_method["iforest-small"]) == 4
    assert {t.seed for t in by_method["iforest-small"]} == {0, 2}
    assert all(t.detector == "iforest" and t.task_key.endswith("/iforest-small") for t in by_method["iforest-small"])
    assert all(t.detector == "iforest" and t.max_train_samples is None for t in by_method["iforest"])


def test_cap_and_detector_enter_the_hash_only_when_set():
    plain = {t.task_key: t.config_hash for t in expand(config_from_dict(base()))}
    same = {t.task_key: t.config_hash for t in expand(config_from_dict(
        base(methods={"iforest": {"n_estimators": 20, "method": "iforest", "seeds": [0, 1, 2]}})))}
    assert plain == same  # method = its own name, all seeds: nothing changes
    capped = {t.task_key: t.config_hash for t in expand(config_from_dict(
        base(methods={"iforest": {"n_estimators": 20, "max_train_samples": 50}})))}
    assert capped.keys() == plain.keys() and all(capped[k] != plain[k] for k in plain)
    fewer = {t.task_key: t.config_hash for t in expand(config_from_dict(
        base(methods={"iforest": {"n_estimators": 20, "seeds": [1]}})))}
    assert fewer == {k: v for k, v in plain.items() if "seed=1/" in k}


@pytest.mark.parametrize(("methods", "fragment"), [
    ({"if2": {"n_estimators": 5}}, "unknown method 'if2'"),
    ({"if2": {"method": "iforestt"}}, "unknown method 'iforestt'"),
    ({"if 2": {"method": "iforest"}}, "may not contain"),
    ({"if2": {"method": "iforest", "nu": 0.1}}, "unknown key 'nu' in [methods.if2]"),
    ({"if2": {"method": "iforest", "max_train_samples": 1}}, "max_train_samples must be >= 2"),
    ({"if2": {"method": "iforest", "max_train_samples": 2.5}}, "max_train_samples must be an integer"),
    ({"if2": {"method": "iforest", "seeds": [7, 8]}}, "name none of the config's seeds"),
    ({"if2": {"method": "iforest", "seeds": []}}, "seeds must be a non-empty list"),
])
def test_method_key_errors(methods, fragment):
    assert fragment in error_of(base(methods=methods))


def test_variant_parameters_are_checked_against_the_detector():
    data = base(methods={"ocsvm-tv": {"method": "ocsvm", "selection": "train-validation",
                                      "grid": {"gamma": [0.1], "nu": [0.1]}}})
    spec = config_from_dict(data).methods[0]
    assert spec.detector == "ocsvm" and spec.selection.fallback == {"gamma": "scale", "nu": 0.1}
    assert "unknown grid key 'n_estimators'" in error_of(
        base(methods={"ocsvm-tv": {"method": "ocsvm", "selection": "train-validation", "grid": {"n_estimators": [5]}}}))


def _prepared(labels) -> PreparedData:
    labels = np.asarray(labels, dtype=np.int8)
    X = np.arange(labels.size * 2, dtype=np.float32).reshape(-1, 2)
    return PreparedData(X_train=X, y_train=labels, X_test=X[:5], y_test=np.array([0, 1, 0, 0, 1], np.int8),
                        summary={"train": {}})


def test_cap_training_set_keeps_labeled_anomalies_and_proportions():
    data = _prepared([0] * 900 + [1] * 90 + [-1] * 10)
    capped = cap_training_set(data, 100, seed=4)
    assert capped.X_train.shape == (100, 2) and int((capped.y_train == -1).sum()) == 10
    assert int((capped.y_train == 1).sum()) == 8 and int((capped.y_train == 0).sum()) == 82  # 90 * 90/990, 900 * 90/990
    assert capped.summary["train_cap"] == {"max_train_samples": 100, "kept": 100, "of": 1000,
                                           "per_label": {"-1": 10, "0": 82, "1": 8}}
    # rows are rows of the input (features follow labels), the test set is untouched
    rows = (capped.X_train[:, 0] / 2).astype(int)
    assert np.array_equal(data.y_train[rows], capped.y_train) and capped.X_test is data.X_test
    again = cap_training_set(data, 100, seed=4)
    assert np.array_equal(again.X_train, capped.X_train)
    assert not np.array_equal(cap_training_set(data, 100, seed=5).X_train, capped.X_train)
    assert cap_training_set(data, 1000, seed=4) is data
    # more labeled anomalies than half the cap: they are sampled too
    many = cap_training_set(_prepared([0] * 50 + [-1] * 50), 20, seed=0)
    assert int((many.y_train == -1).sum()) == 10 and many.y_train.size == 20


@pytest.fixture
def _fresh(monkeypatch, data_root):
    require_file(data_root / "odds" / "thyroid.mat")
    require_file(data_root / "odds" / "cardio.mat")
    restore = runner.configure_threads(1)
    yield
    restore()


def test_rows_store_labels_detectors_and_caps(_fresh, data_root, tmp_path):
    config = config_from_dict(base(datasets=["cardio"], seeds=[0], methods={
        "iforest": {"n_estimators": 10},
        "iforest-capped": {"method": "iforest", "n_estimators": 10, "max_train_samples": 100},
    }, scenario={"gamma_l": 0.01}))
    rows = []
    for group in group_tasks(expand(config)):
        rows += run_group(group, RunContext(data_root=str(data_root), use_ae_cache=False))
    by = {r["method"]: r for r in rows}
    assert all(r["status"] == "done" for r in rows), [r.get("error") for r in rows]
    assert by["iforest"]["detector"] == "iforest" and by["iforest"]["max_train_samples"] is None
    assert by["iforest-capped"]["detector"] == "iforest" and by["iforest-capped"]["max_train_samples"] == 100
    assert by["iforest-capped"]["n_train"] == 100 and by["iforest"]["n_train"] > 1000
    assert by["iforest-capped"]["n_test"] == by["iforest"]["n_test"]
    assert by["iforest-capped"]["sampler_summary"]["train_cap"]["kept"] == 100
    assert "train_cap" not in by["iforest"]["sampler_summary"]
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write(rows)
    frame = read_results(tmp_path / "r.sqlite").set_index("method")
    assert frame.loc["iforest-capped", "max_train_samples"] == 100 and frame.loc["iforest-capped", "detector"] == "iforest"


def test_older_results_files_gain_the_new_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    with ResultStore(path):
        pass
    with sqlite3.connect(path) as conn:  # a file as written before the columns existed
        conn.execute("ALTER TABLE tasks DROP COLUMN detector")
        conn.execute("ALTER TABLE tasks DROP COLUMN max_train_samples")
    with ResultStore(path) as store:
        assert store.count() == 0
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}
    assert {"detector", "max_train_samples"} <= columns


# --- the shipped configs/tabular.toml ----------------------------------------------------

ODDS = ["arrhythmia", "cardio", "satellite", "satimage-2", "shuttle", "thyroid"]


def test_tabular_config_loads_and_expands():
    from deepsad.data.registry import list_datasets
    from deepsad.experiments.config import load_config
    from deepsad.methods import parameter_names

    if "n_networks" not in parameter_names("deepsad"):  # the config's deepsad-paper needs it
        pytest.skip("this build's DeepSAD has no n_networks / network='paper' yet")

    full = load_config("tabular")
    adbench = sorted(i.name for i in list_datasets() if i.name.startswith("adbench-"))
    assert list(full.datasets[:6]) == ODDS and sorted(full.datasets[6:]) == adbench and len(full.datasets) == 37
    assert full.seeds == (0, 1, 2, 3, 4) and full.standardize and full.training == {} and full.networks == {}
    assert full.scenario.gamma_l == 0.01 and full.scenario.gamma_p == 0.0 and not full.scenario.keep_all_anomalies
    methods = {m.name: m for m in full.methods}
    assert set(methods) == {"deepsad", "deepsad-paper", "deepsvdd", "deepsvdd-paper", "iforest", "ocsvm", "ssad",
                            "kde", "supervised", "devnet"}
    assert methods["deepsad"].params == {} and methods["deepsad-paper"].detector == "deepsad"
    assert methods["deepsvdd-paper"].detector == "deepsvdd" and methods["deepsad-paper"].params["network"] == "paper"
    assert all(methods[m].max_train_samples == 5000 for m in ("deepsad", "deepsad-paper", "deepsvdd", "deepsvdd-paper",
                                                               "supervised", "devnet"))
    assert methods["iforest"].max_train_samples == 10000
    assert methods["ocsvm"].max_train_samples == 5000 and methods["ssad"].max_train_samples == 2000
    assert all(methods[m].seeds == (0, 1, 2) for m in ("ocsvm", "ssad", "kde"))
    assert methods["ocsvm"].selection.protocol == "train-validation"
    tasks = expand(full)
    # 37 datasets x (7 methods x 5 seeds + 3 kernel methods x 3 seeds)
    assert len(tasks) == 37 * (7 * 5 + 3 * 3) == 1628
    deepsad = next(t for t in tasks if t.method == "deepsad")
    assert deepsad.params == {}  # the library's defaults, nothing injected by the config

    polluted = load_config("tabular", "polluted")
    assert polluted.scenario.keep_all_anomalies and polluted.scenario.labeled_anomaly_fraction == 0.1
    assert polluted.scenario.gamma_l == 0.0
    polluted_tasks = expand(polluted)
    assert [t.task_key for t in polluted_tasks] == [t.task_key for t in tasks]
    assert all(a.setup_key == b.setup_key and a.config_hash != b.config_hash for a, b in zip(tasks, polluted_tasks))

    quick = load_config("tabular", "quick")
    assert len(quick.datasets) == 4 and quick.seeds == (0,) and quick.scenario.max_samples
    assert len(expand(quick)) == 4 * 10
