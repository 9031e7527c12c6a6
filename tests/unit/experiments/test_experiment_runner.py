"""Running tasks: data draws, the autoencoder cache, selection, failures as results."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from deepsad.experiments import runner
from deepsad.experiments.config import config_from_dict
from deepsad.experiments.grid import expand, group_tasks
from deepsad.experiments.runner import RunContext, prepare_data, run_group

from helpers import require_file

SCHEDULE = {"epochs": 2, "lr_milestones": [], "device": "cpu", "batch_size": 100}
#: the paper's recipe (deepsad's tabular defaults do not pretrain): these tests exercise the autoencoder cache
PRETRAINED = {"pretrain": True, "n_networks": 1}


def config(methods: dict, **overrides):
    data = {
        "experiment": "unit", "datasets": ["thyroid"], "seeds": [0],
        "scenario": {"gamma_l": 0.02, "max_samples": 400},
        "networks": {"thyroid": {"type": "mlp", "hidden_sizes": [16, 8], "rep_dim": 4}},
        "training": SCHEDULE, "autoencoder": {"epochs": 2, "lr_milestones": []},
        "methods": methods,
    }
    data.update(overrides)
    return config_from_dict(data)


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch, data_root):
    require_file(data_root / "odds" / "thyroid.mat")
    restore = runner.configure_threads(1)
    yield
    restore()


def run(cfg, data_root, **context):
    rows = []
    for group in group_tasks(expand(cfg)):
        rows += run_group(group, RunContext(data_root=str(data_root), **context))
    return {r["method"]: r for r in rows}


def test_prepared_odds_data_are_disjoint_standardized_and_subsampled(data_root):
    task = expand(config({"ocsvm": {}}))[0]
    data = prepare_data(task, str(data_root))
    summary = data.summary
    assert summary["subsample"] == {"max_samples": 400, "kept": 400, "of": 3772}
    assert data.X_train.dtype == np.float32 and data.X_train.shape[0] + data.X_test.shape[0] <= 400
    assert summary["train"]["total"] == data.X_train.shape[0] and summary["test"]["total"] == data.X_test.shape[0]
    assert np.allclose(data.X_train.mean(axis=0), 0, atol=1e-5)
    assert int((data.y_train == -1).sum()) == summary["train"]["labeled_anomaly"] > 0
    again = prepare_data(task, str(data_root))
    assert np.array_equal(again.X_train, data.X_train) and np.array_equal(again.y_test, data.y_test)


def test_autoencoder_cache_reuses_and_changes_nothing(data_root):
    methods = {"deepsad": dict(PRETRAINED), "deepsvdd": dict(PRETRAINED), "hybrid-ocsvm": {"shallow_params": {"gamma": 0.5, "nu": 0.1}}}
    cfg = config(methods)
    cached = run(cfg, data_root)
    assert [cached[m]["ae_cache"] for m in ("deepsad", "deepsvdd", "hybrid-ocsvm")] == ["miss", "hit-memory", "hit-memory"]
    assert cached["deepsad"]["pretrain_seconds"] > 0 and cached["deepsvdd"]["pretrain_seconds"] is None
    fresh = run(cfg, data_root, use_ae_cache=False)
    assert {r["ae_cache"] for r in fresh.values()} == {"off"}
    for method in methods:
        assert cached[method]["status"] == fresh[method]["status"] == "done", cached[method].get("error")
        assert cached[method]["auc"] == fresh[method]["auc"]
    # and both equal Deep SAD fitted directly, pretraining inside its own fit
    from deepsad import DeepSAD

    task = next(t for t in expand(cfg) if t.method == "deepsad")
    data = prepare_data(task, str(data_root))
    direct = DeepSAD(**task.params, standardize=False, random_state=0).fit(data.X_train, data.y_train)  # the runner standardized
    assert roc_auc_score(data.y_test, direct.anomaly_score(data.X_test)) == cached["deepsad"]["auc"]


def test_disk_cache_is_shared_and_survives_damage(data_root, tmp_path, monkeypatch, caplog):
    cfg = config({"deepsad": dict(PRETRAINED)})
    first = run(cfg, data_root, ae_cache_dir=str(tmp_path))["deepsad"]
    entries = list(tmp_path.glob("*.safetensors"))
    assert first["ae_cache"] == "miss" and len(entries) == 1 and len(entries[0].stem) == 64
    # every run_group call without caches is a worker of its own: an empty memory cache
    second = run(cfg, data_root, ae_cache_dir=str(tmp_path))["deepsad"]
    assert second["ae_cache"] == "hit-disk" and second["auc"] == first["auc"]
    entries[0].write_bytes(b"\0" * 100)
    third = run(cfg, data_root, ae_cache_dir=str(tmp_path))["deepsad"]
    assert third["ae_cache"] == "miss" and third["auc"] == first["auc"]
    assert "unreadable autoencoder cache entry" in caplog.text


def test_failing_task_is_a_result_and_the_rest_go_on(data_root):
    rows = run(config({"supervised": {}, "iforest": {}}, scenario={"gamma_l": 0.0, "max_samples": 400}), data_root)
    assert rows["iforest"]["status"] == "done" and 0.5 < rows["iforest"]["auc"] <= 1
    failed = rows["supervised"]
    assert failed["status"] == "failed" and failed["auc"] is None
    assert failed["error"].startswith("InvalidInputError: ") and "labeled anomal" in failed["error"]
    assert "Traceback" in failed["traceback"]


def test_a_setup_that_cannot_be_drawn_fails_all_its_tasks(data_root):
    rows = run(config({"ocsvm": {}, "iforest": {}}, scenario={"gamma_l": 0.5, "max_samples": 400}), data_root)
    assert {r["status"] for r in rows.values()} == {"failed"}
    assert all("not enough training anomalies" in r["error"] for r in rows.values())


def test_selection_protocols_are_recorded(data_root):
    grid = {"gamma": [0.25, 1.0], "nu": [0.1]}
    rows = run(config({
        "ocsvm": {"selection": "paper-test-subset", "grid": grid, "exclude_from_evaluation": True},
        "ssad": {"selection": "train-validation", "grid": {"gamma": [0.25, 1.0]}},
    }), data_root)
    paper, honest = rows["ocsvm"], rows["ssad"]
    assert paper["status"] == honest["status"] == "done", (paper.get("error"), honest.get("error"))
    assert paper["selection"]["protocol"] == "paper-test-subset" and paper["selection"]["selected_on_test_data"]
    assert paper["selection_protocol"] == "paper-test-subset" and len(paper["selection"]["scores_per_candidate"]) == 2
    assert paper["n_eval"] == paper["n_test"] - paper["selection"]["n_select"]
    assert honest["selection"]["protocol"] == "train-validation" and honest["n_eval"] == honest["n_test"]


def test_images_are_flattened_for_shallow_methods(data_root):
    require_file(data_root / "mnist" / "train-labels-idx1-ubyte.gz")
    cfg = config_from_dict({
        "experiment": "unit", "datasets": ["mnist"], "seeds": [0],
        "scenario": {"gamma_l": 0.05, "normal_classes": [3], "max_known_classes": 1, "max_per_class": 40},
        "training": SCHEDULE, "autoencoder": {"epochs": 1, "lr_milestones": []},
        "methods": {"iforest": {}, "hybrid-iforest": {}},
    })
    rows = run(cfg, data_root)
    for row in rows.values():
        assert row["status"] == "done", row.get("error")
        assert row["known_classes"] == "4" and row["normal_class"] == 3
        assert row["n_test"] == 400 and row["sampler_summary"]["subsample"]["train_kept"] == 400
