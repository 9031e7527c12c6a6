"""Experiment configs: the shipped files load, and every mistake names itself."""

from __future__ import annotations

import copy

import pytest

from deepsad.errors import DataFileError, InvalidInputError
from deepsad.experiments.config import (
    PAPER_EXPERIMENTS,
    SHIPPED_EXPERIMENTS,
    config_from_dict,
    deep_merge,
    find_config,
    load_config,
    shipped_configs,
)

PAPER_GAMMAS = [2.0**k for k in range(-7, 3)]


def tiny() -> dict:
    """A small valid config (as parsed TOML)."""
    return {
        "experiment": "tiny",
        "datasets": ["thyroid"],
        "seeds": [0, 1],
        "scenario": {"gamma_l": 0.01},
        "networks": {"thyroid": {"type": "mlp", "hidden_sizes": [32, 16], "rep_dim": 4}},
        "training": {"epochs": 2, "lr_milestones": []},
        "autoencoder": {"epochs": 2, "lr_milestones": []},
        "methods": {
            "deepsad": {"eta": 1.0},
            "ocsvm": {"selection": "paper-test-subset", "grid": {"gamma": [0.5, 1.0], "nu": [0.1]}},
        },
        "profiles": {"quick": {"seeds": [0], "methods": {"ocsvm": {"grid": {"gamma": [0.5]}}}}},
    }


def error_of(data: dict, profile: str = "full") -> str:
    with pytest.raises(InvalidInputError) as info:
        config_from_dict(data, profile, source="tiny.toml")
    message = str(info.value)
    assert message.startswith("tiny.toml: ") and "\n" not in message
    return message


@pytest.mark.parametrize("name", SHIPPED_EXPERIMENTS)
def test_shipped_configs_load_in_both_profiles(name):
    full, quick = load_config(name), load_config(name, "quick")
    assert full.experiment == quick.experiment == name
    assert full.config_hash != quick.config_hash and len(quick.seeds) <= len(full.seeds)


@pytest.mark.parametrize("name", PAPER_EXPERIMENTS)
def test_paper_configs_keep_the_papers_schedule(name):
    full = load_config(name)
    quick = load_config(name, "quick")
    assert full.experiment == quick.experiment == name
    assert full.config_hash != quick.config_hash
    assert len(quick.seeds) <= len(full.seeds)
    assert quick.training["epochs"] < full.training["epochs"] == 150
    assert full.training["lr_milestones"] == [50] and full.training["batch_size"] == 200
    assert full.autoencoder["weight_decay"] == 5e-4 and full.training["weight_decay"] == 1e-6


def test_every_shipped_config_is_known():
    assert set(shipped_configs()) == set(SHIPPED_EXPERIMENTS)


def test_table6_is_the_paper_setting():
    config = load_config("table6")
    assert config.datasets == ("arrhythmia", "cardio", "satellite", "satimage-2", "shuttle", "thyroid")
    assert config.seeds == tuple(range(10))
    assert (config.scenario.gamma_l, config.scenario.gamma_p, config.scenario.test_fraction) == (0.01, 0.0, 0.4)
    assert config.standardize and config.parameter == ""
    assert [m.name for m in config.methods] == [
        "ocsvm", "hybrid-ocsvm", "cae", "deepsvdd", "ssad", "hybrid-ssad", "ssdgm", "deepsad", "supervised"
    ]
    ocsvm = next(m for m in config.methods if m.name == "ocsvm")
    assert ocsvm.selection.protocol == "paper-test-subset" and ocsvm.selection.fraction == 0.1
    assert list(ocsvm.selection.grid["gamma"]) == PAPER_GAMMAS
    assert list(ocsvm.selection.grid["nu"]) == [0.01, 0.05, 0.1, 0.2, 0.5]
    assert config.networks["arrhythmia"]["hidden_sizes"] == [128, 64] and config.networks["arrhythmia"]["rep_dim"] == 32
    assert config.networks["thyroid"]["rep_dim"] == 4
    quick = load_config("table6", "quick")
    assert [m.name for m in quick.methods] == ["ocsvm", "deepsvdd", "ssad", "deepsad"]
    assert quick.datasets == config.datasets and quick.seeds == (0, 1)


def test_image_tables_follow_the_paper():
    t3, t4, t5 = load_config("table3"), load_config("table4"), load_config("table5")
    assert (t3.parameter, t3.values) == ("gamma_l", (0.0, 0.01, 0.05, 0.1, 0.2))
    assert (t4.parameter, t4.values, t4.scenario.gamma_l) == ("gamma_p", (0.0, 0.01, 0.05, 0.1, 0.2), 0.05)
    assert (t5.parameter, t5.values, t5.scenario.known_classes) == ("k_l", (0.0, 1.0, 2.0, 3.0, 5.0), "random")
    assert t5.seeds == tuple(range(10)) and (t5.scenario.gamma_l, t5.scenario.gamma_p) == (0.05, 0.1)
    by_name = {m.name: m for m in t3.methods}
    assert by_name["ocsvm"].only_at == (0.0,) and by_name["supervised"].skip_at == (0.0,)
    assert by_name["deepsad"].runs_at(0.0) and by_name["deepsad"].runs_at(0.2)
    assert not by_name["iforest"].runs_at(0.05) and not by_name["ssdgm"].runs_at(0.0)
    assert len(t3.methods) == 13 and len(t4.methods) == 13
    assert all(m.runs_at(v) for m in t4.methods for v in t4.values)
    eta, rep = load_config("eta"), load_config("rep_dim")
    assert eta.values == (0.01, 0.1, 1.0, 10.0, 100.0) and [m.name for m in eta.methods] == ["deepsad"]
    assert rep.values == tuple(float(2**k) for k in range(4, 10))
    assert {m.name for m in rep.methods} == {"deepsad", "hybrid-ssad"}


def test_profiles_deep_merge():
    config = config_from_dict(tiny(), "quick")
    assert config.seeds == (0,)
    ocsvm = next(m for m in config.methods if m.name == "ocsvm")
    assert ocsvm.selection.grid == {"gamma": (0.5,), "nu": (0.1,)}  # nu kept from the base
    assert deep_merge({"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}}


def test_defaults_filled_in():
    data = tiny()
    data["training"] = {"epochs": 10}
    config = config_from_dict(data)
    # a [training] table fills what it leaves out with the paper's schedule
    assert config.training == {"epochs": 10, "lr": 1e-4, "lr_milestones": [50], "weight_decay": 1e-6,
                               "batch_size": 200, "device": "auto"}
    assert config.scenario.test_fraction == 0.4 and config.standardize is True


def test_without_schedule_tables_methods_keep_their_own_defaults():
    from deepsad.experiments.grid import expand
    from deepsad.methods import make_detector

    data = tiny()
    del data["training"]
    del data["autoencoder"], data["networks"], data["profiles"]
    data["methods"] = {"deepsad": {}, "cae": {}, "deepsvdd": {"epochs": 3}}
    config = config_from_dict(data)
    assert config.training == {} and config.autoencoder == {}
    tasks = {t.method: t for t in expand(config)}
    assert tasks["deepsad"].params == {}  # nothing injected: DeepSAD() as the library ships it
    assert tasks["deepsvdd"].params == {"epochs": 3}
    assert tasks["cae"].params == {}
    assert tasks["deepsad"].autoencoder == {"network": "auto", "output_activation": "auto"}
    make_detector("deepsvdd", tasks["deepsad"].autoencoder)  # still valid DeepSVDD parameters


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (lambda d: d.update(colour="red"), ["unknown key 'colour' in the config", "valid keys: experiment"]),
        (lambda d: d["methods"].update(deepsadd={}), ["unknown method 'deepsadd'", "deepsad", "hybrid-ssad"]),
        (lambda d: d.update(datasets=["thyroidd"]), ["unknown dataset 'thyroidd'", "cardio"]),
        (lambda d: d["methods"]["deepsad"].update(etaa=2), ["unknown key 'etaa' in [methods.deepsad]", "eta", "pretrain_epochs"]),
        (lambda d: d["scenario"].update(gama_l=0.1), ["unknown key 'gama_l' in [scenario]", "gamma_l"]),
        (lambda d: d["training"].update(epoch=3), ["unknown key 'epoch' in [training]", "epochs"]),
        (lambda d: d.update(sweep={"parameter": "nu", "values": [1]}), ["unknown sweep parameter 'nu'", "gamma_l", "rep_dim"]),
        (lambda d: d["methods"]["ocsvm"].update(selection="cv"), ["unknown selection 'cv'", "paper-test-subset"]),
        (lambda d: d["methods"]["ocsvm"]["grid"].update(C=[1]), ["unknown grid key 'C'", "gamma", "nu"]),
        (lambda d: d["methods"]["deepsad"].update(random_state=3), ["sets 'random_state'", "seeds"]),
        (lambda d: d["methods"]["deepsad"].update(grid={"eta": [1]}), ["selection is 'fixed'"]),
        (lambda d: d.update(enabled_methods=["cae"]), ["enabled_methods names 'cae'", "defined: deepsad, ocsvm"]),
        (lambda d: d["networks"].update(cardio={"type": "mlp"}), ["[networks] names 'cardio'"]),
        (lambda d: d["networks"].update(thyroid={"type": "cnn"}), ["[networks] thyroid", "'type'"]),
        (lambda d: d["scenario"].update(gamma_l=1.5), ["gamma_l must be < 1"]),
        (lambda d: d.update(seeds=[0, 0]), ["'seeds' lists a value twice"]),
        (lambda d: d["methods"]["deepsad"].update(only_at=[0.0]), ["only_at/skip_at need a [sweep]"]),
        (lambda d: d.pop("experiment"), ["'experiment' must name the experiment"]),
    ],
)
def test_mistakes_are_named(mutate, fragments):
    data = copy.deepcopy(tiny())
    mutate(data)
    message = error_of(data)
    for fragment in fragments:
        assert fragment in message, message


def test_unknown_profile_lists_the_profiles():
    assert "unknown profile 'fast'; this config offers: full, quick" in error_of(tiny(), "fast")


def test_sweep_checks():
    data = tiny()
    data["sweep"] = {"parameter": "gamma_l", "values": [0.0, 0.05]}
    data["methods"]["ocsvm"]["only_at"] = [0.1]
    assert "only_at/skip_at value 0.1 is not a sweep value" in error_of(data)
    data["methods"]["ocsvm"]["only_at"] = [0.0]
    config = config_from_dict(data)
    assert config.values == (0.0, 0.05) and config.methods[1].only_at == (0.0,)
    data["sweep"] = {"parameter": "k_l", "values": [1, 2]}
    del data["methods"]["ocsvm"]["only_at"]
    assert "sweeping k_l needs image datasets" in error_of(data)


def test_find_config(tmp_path):
    assert find_config("table6").name == "table6.toml"
    path = tmp_path / "mine.toml"
    path.write_text('experiment = "x"\n')
    assert find_config(path) == path
    with pytest.raises(DataFileError, match="config file not found: nope.*shipped configs: eta, rep_dim, table3"):
        find_config("nope")


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("experiment = \n")
    with pytest.raises(InvalidInputError, match="broken.toml: not valid TOML"):
        load_config(path)
