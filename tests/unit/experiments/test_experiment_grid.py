"""Grid expansion: the paper's experiment counts, stable keys, groups, and the rerun plan."""

from __future__ import annotations

import collections
import hashlib
import pickle

import pytest

from deepsad.experiments.config import config_from_dict, load_config
from deepsad.experiments.grid import expand, group_tasks
from deepsad.experiments.runner import plan


def by_cell(tasks):
    return collections.Counter((t.dataset, t.value, t.method) for t in tasks)


def test_table3_counts_follow_the_paper():
    tasks = expand(load_config("table3"))
    cells = by_cell(tasks)
    for dataset in ("mnist", "fmnist", "cifar10"):
        # gamma_l = 0: the known class changes nothing, one setup per normal class
        assert cells[(dataset, 0.0, "deepsad")] == 10 and cells[(dataset, 0.0, "ocsvm")] == 10
        for ratio in (0.01, 0.05, 0.1, 0.2):
            assert cells[(dataset, ratio, "deepsad")] == 90 and cells[(dataset, ratio, "supervised")] == 90
            assert cells[(dataset, ratio, "ocsvm")] == 0 and cells[(dataset, ratio, "deepsvdd")] == 0
        assert cells[(dataset, 0.0, "supervised")] == 0 and cells[(dataset, 0.0, "ssdgm")] == 0
    task = next(t for t in tasks if t.method == "deepsad" and t.value == 0.05 and t.dataset == "mnist")
    assert task.task_key == "table3/mnist/gamma_l=0.05/normal=0|known=1|seed=0/deepsad"
    assert task.setup_key == "normal=0|known=1|seed=0"
    assert task.params["network"]["variant"] == "mnist" and task.params["pretrain_epochs"] == 150
    assert task.params["weight_decay"] == 1e-6 and task.params["pretrain_weight_decay"] == 5e-4


def test_table5_known_classes_are_random_nested_and_reproducible():
    config = load_config("table5")
    tasks = [t for t in expand(config) if t.method == "deepsad" and t.dataset == "mnist"]
    assert by_cell(tasks)[("mnist", 3.0, "deepsad")] == 100
    known = {(t.normal_class, t.seed, t.k_l): t.known_classes for t in tasks}
    for (normal, seed, k_l), classes in known.items():
        assert len(classes) == k_l and normal not in classes
        if k_l:
            assert set(known[(normal, seed, 1)]) <= set(classes)  # a larger k_l extends the smaller
    assert known == {(t.normal_class, t.seed, t.k_l): t.known_classes
                     for t in expand(config) if t.method == "deepsad" and t.dataset == "mnist"}
    assert len({known[(0, seed, 2)] for seed in range(10)}) > 1


def test_table6_and_sensitivity_counts():
    assert len(expand(load_config("table6"))) == 6 * 10 * 9
    eta = expand(load_config("eta"))
    assert len(eta) == 3 * 90 * 5 and {t.params["eta"] for t in eta} == {0.01, 0.1, 1.0, 10.0, 100.0}
    # all eta values of a setup share the data and the autoencoder: one group
    assert len(group_tasks(eta)) == 3 * 90
    rep = expand(load_config("rep_dim"))
    assert {t.rep_dim for t in rep} == {16, 32, 64, 128, 256, 512}
    for task in rep:
        assert task.autoencoder["network"]["rep_dim"] == task.rep_dim
        if task.method == "deepsad":
            assert task.params["network"]["rep_dim"] == task.rep_dim


def test_keys_are_unique_stable_and_tasks_picklable():
    config = load_config("table4", "quick")
    first, second = expand(config), expand(config)
    assert [t.task_key for t in first] == [t.task_key for t in second]
    assert [t.config_hash for t in first] == [t.config_hash for t in second]
    assert len({t.task_key for t in first}) == len(first)
    assert pickle.loads(pickle.dumps(first[0])) == first[0]
    # methods of a setup share the data and the autoencoder
    group = next(g for g in group_tasks(first) if any(t.method == "deepsad" for t in g))
    assert {t.method for t in group} >= {"deepsad", "deepsvdd", "hybrid-ssad", "ocsvm"}
    assert len({t.setup_key for t in group}) == 1


def test_config_hash_tracks_settings_only():
    quick = {t.task_key: t.config_hash for t in expand(load_config("table6", "quick"))}
    full = {t.task_key: t.config_hash for t in expand(load_config("table6"))}
    shared = set(quick) & set(full)
    assert shared and all(quick[k] != full[k] for k in shared)


def test_plan_skips_retries_and_refuses_changed():
    data = {
        "experiment": "p", "datasets": ["thyroid"], "seeds": [0, 1, 2],
        "methods": {"ocsvm": {}, "iforest": {}},
    }
    tasks = expand(config_from_dict(data))
    keys = [t.task_key for t in tasks]
    existing = {keys[0]: ("done", tasks[0].config_hash), keys[1]: ("failed", tasks[1].config_hash),
                keys[2]: ("done", "0" * 16), keys[3]: ("failed", "0" * 16)}
    todo, skipped, changed = plan(tasks, existing)
    assert skipped == 1 and [t.task_key for t in changed] == [keys[2]]
    assert [t.task_key for t in todo] == [keys[1], keys[3], *keys[4:]]
    todo, skipped, changed = plan(tasks, existing, rerun_changed=True, retry_failed=False)
    assert skipped == 2 and not changed and keys[2] in [t.task_key for t in todo]


#: (tasks, digest of every task's key, config hash and group key) of the shipped paper
#: configs as of commit aeea20d: new config features must not move old results' hashes
#: (a rerun would otherwise refuse or repeat finished tasks).
PINNED_PAPER_HASHES = {
    ("table3", "full"): (5730, "49ccb82c97606461"),
    ("table3", "quick"): (96, "f45dbdf89d64e2a2"),
    ("table4", "full"): (17550, "ce5144d85d1142ff"),
    ("table4", "quick"): (156, "da625b9abfd18a0f"),
    ("table5", "full"): (9300, "3bbee38b46cdd2eb"),
    ("table5", "quick"): (96, "018c2bc989f20b56"),
    ("table6", "full"): (540, "04380776a37c7326"),
    ("table6", "quick"): (48, "74c308f2360618c4"),
    ("eta", "full"): (1350, "545d2a6b06b5b706"),
    ("eta", "quick"): (18, "f529f9a96fa04d54"),
    ("rep_dim", "full"): (3240, "3983e38ce63d24cf"),
    ("rep_dim", "quick"): (24, "925c9215cfa28c97"),
}


@pytest.mark.parametrize("experiment, profile", sorted(PINNED_PAPER_HASHES))
def test_paper_configs_keep_their_task_keys_and_hashes(experiment, profile):
    tasks = expand(load_config(experiment, profile))
    digest = hashlib.sha256(
        "\n".join(f"{t.task_key} {t.config_hash} {t.group_key}" for t in tasks).encode()
    ).hexdigest()[:16]
    assert (len(tasks), digest) == PINNED_PAPER_HASHES[(experiment, profile)]
