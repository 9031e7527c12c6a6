"""--stack: cells' Deep SAD / Deep SVDD fits trained together give the rows of a plain run."""

from __future__ import annotations

import json

import pytest

from deepsad.experiments.config import config_from_dict
from deepsad.experiments.executors import SerialExecutor
from deepsad.experiments.grid import expand, group_tasks
from deepsad.experiments.runner import run_experiment
from deepsad.experiments.stacking import execution_units, stack_key
from deepsad.experiments.store import read_results

from helpers import require_file


#: the paper's recipe (deepsad's tabular defaults do not pretrain): these tests exercise the autoencoder cache
PRETRAINED = {"pretrain": True, "n_networks": 1}


def stacking_config(methods=None):
    return config_from_dict({
        "experiment": "stacking", "datasets": ["thyroid", "cardio"], "seeds": [0, 1, 2],
        "scenario": {"gamma_l": 0.02, "max_samples": 300},
        # one network for all methods, as in the paper's configs (the "auto" MLPs of Deep SAD
        # and Deep SVDD differ in BatchNorm, so they would not share an autoencoder)
        "networks": {"thyroid": {"type": "mlp", "hidden_sizes": [32, 16], "rep_dim": 4},
                     "cardio": {"type": "mlp", "hidden_sizes": [32, 16], "rep_dim": 8}},
        "training": {"epochs": 3, "lr_milestones": [], "device": "cpu"},
        "autoencoder": {"epochs": 3, "lr_milestones": []},
        "methods": methods or {
            "deepsad": dict(PRETRAINED), "deepsvdd": dict(PRETRAINED),
            "hybrid-ocsvm": {"selection": "paper-test-subset", "grid": {"gamma": [0.5], "nu": [0.1]}},
        },
    })


@pytest.fixture(scope="module")
def odds(data_root):
    for name in ("thyroid", "cardio"):
        require_file(data_root / "odds" / f"{name}.mat")
    return data_root


def _frame(path):
    frame = read_results(path)
    assert (frame["status"] == "done").all(), frame["error"].dropna().tolist()
    return frame.set_index("task_key")


def test_a_stacked_run_gives_the_rows_of_a_plain_run(odds, tmp_path):
    # separate folders: each run gets its own on-disk autoencoder cache
    (tmp_path / "plain").mkdir()
    (tmp_path / "stacked").mkdir()
    plain = run_experiment(stacking_config(), tmp_path / "plain" / "r.sqlite", SerialExecutor(threads=1),
                           data_root=odds, progress=False)
    stacked = run_experiment(stacking_config(), tmp_path / "stacked" / "r.sqlite", SerialExecutor(threads=1),
                             data_root=odds, progress=False, stack=3)
    assert plain.n_done == stacked.n_done == 18
    a, b = _frame(tmp_path / "plain" / "r.sqlite"), _frame(tmp_path / "stacked" / "r.sqlite")
    assert sorted(a.index) == sorted(b.index)
    for key in a.index:
        # the same fits up to float rounding; AUC is a rank statistic (measured: identical)
        assert b.loc[key, "auc"] == pytest.approx(a.loc[key, "auc"], abs=1e-4), key
    deep = b[b["method"].isin(["deepsad", "deepsvdd"])]
    assert len(deep) == 12
    assert all(json.loads(text) == {"protocol": "fixed", "stacked": 3} for text in deep["selection"])
    # Deep SAD's stack pretrained and cached the autoencoders; Deep SVDD and the hybrids reused them
    assert set(b[b["method"] == "deepsad"]["ae_cache"]) == {"miss"}
    assert set(b[b["method"] != "deepsad"]["ae_cache"]) <= {"hit-memory", "hit-disk"}


def test_capped_training_sets_stack_and_give_the_rows_of_a_plain_run(odds, tmp_path):
    # max_samples 300 leaves 180 training rows per setup; the cap draws 100 of them per seed
    methods = {"deepsad": {**PRETRAINED, "max_train_samples": 100},
               "deepsvdd": {"n_networks": 2, "max_train_samples": 100}}
    frames = []
    for name, stack in (("plain", 1), ("stacked", 3)):
        (tmp_path / name).mkdir()
        summary = run_experiment(stacking_config(methods), tmp_path / name / "r.sqlite", SerialExecutor(threads=1),
                                 data_root=odds, progress=False, stack=stack)
        assert summary.n_done == 12
        frames.append(_frame(tmp_path / name / "r.sqlite"))
    plain, stacked = frames
    assert sorted(plain.index) == sorted(stacked.index)
    for key in plain.index:
        assert stacked.loc[key, "n_train"] == plain.loc[key, "n_train"] == 100
        assert stacked.loc[key, "auc"] == pytest.approx(plain.loc[key, "auc"], abs=1e-4), key
        assert json.loads(stacked.loc[key, "selection"]) == {"protocol": "fixed", "stacked": 3}
        assert json.loads(stacked.loc[key, "sampler_summary"])["train_cap"]["kept"] == 100


def test_a_failing_stacked_fit_falls_back_to_single_fits(odds, tmp_path, monkeypatch):
    import deepsad.detectors
    import deepsad.detectors.stacked

    def broken(*args, **kwargs):
        raise RuntimeError("stacking broke")

    # both stacked steps: the autoencoders' pretraining and phi's fit
    monkeypatch.setattr(deepsad.detectors.stacked, "pretrain_stacked", broken)
    monkeypatch.setattr(deepsad.detectors, "fit_stacked", broken)
    config = stacking_config({"deepsad": dict(PRETRAINED)})
    summary = run_experiment(config, tmp_path / "r.sqlite", SerialExecutor(threads=1), data_root=odds,
                             progress=False, stack=3)
    assert summary.n_done == 6 and summary.n_failed == 0
    frame = _frame(tmp_path / "r.sqlite")
    assert set(frame["ae_cache"]) == {"miss"}  # each task pretrained on its own


def test_units_bundle_only_stackable_tasks_of_one_cell():
    config = stacking_config({
        "deepsad": {}, "deepsvdd": {"objective": "soft-boundary"},
        "ocsvm": {"selection": "paper-test-subset", "grid": {"gamma": [0.5], "nu": [0.1]}},
    })
    tasks = expand(config, data_root=None)
    assert execution_units(tasks, 1) == group_tasks(tasks)
    units = execution_units(tasks, 2)
    stacked = [u for u in units if len({t.group_key for t in u}) > 1]
    # per dataset 3 setups -> units of 2 and 1 setups; the 1-setup unit is an ordinary group
    assert [sorted(t.seed for t in u) for u in stacked] == [[0, 1], [0, 1]]
    assert all(t.method == "deepsad" for u in stacked for t in u)
    assert stack_key(next(t for t in tasks if t.method == "deepsvdd")) is None  # soft-boundary
    assert stack_key(next(t for t in tasks if t.method == "ocsvm")) is None
    assert sorted(t.task_key for u in units for t in u) == sorted(t.task_key for t in tasks)


def test_bfloat16_tasks_are_not_stacked():
    tasks = expand(stacking_config({"deepsad": {"precision": "bfloat16"}}), data_root=None)
    assert tasks and all(stack_key(t) is None for t in tasks)
    assert execution_units(tasks, 3) == group_tasks(tasks)


def test_stack_option_is_on_the_command_line():
    from deepsad.cli import build_parser

    args = build_parser().parse_args(["experiment", "run", "table6", "--stack", "10"])
    assert args.stack == 10
    with pytest.raises(SystemExit):
        build_parser().parse_args(["experiment", "run", "table6", "--stack", "0"])


def test_image_setups_stack_only_with_setups_of_their_normal_class():
    # training sets of different normal classes differ in size and cannot stack: with 3
    # known classes per normal class and --stack 2, each normal class gives a pair and a
    # single, never a pair across two normal classes
    config = config_from_dict({
        "experiment": "image-stacking", "datasets": ["mnist"], "seeds": [0],
        "scenario": {"gamma_l": 0.05, "normal_classes": [0, 1], "max_known_classes": 3},
        "training": {"epochs": 1, "lr_milestones": [], "device": "cpu"},
        "autoencoder": {"epochs": 1, "lr_milestones": []},
        "methods": {"deepsad": {}},
    })
    tasks = expand(config, data_root=None)
    assert len(tasks) == 6 and sorted(t.normal_class for t in tasks) == [0, 0, 0, 1, 1, 1]
    units = execution_units(tasks, 2)
    stacked = [u for u in units if len({t.group_key for t in u}) > 1]
    assert sorted(sorted({t.normal_class for t in u}) for u in stacked) == [[0], [1]]
    assert all(len({t.group_key for t in u}) == 2 for u in stacked)
    assert sorted(t.task_key for u in units for t in u) == sorted(t.task_key for t in tasks)
