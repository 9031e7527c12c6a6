"""The paper's Tables 3-6 shipped as package data, and their translation to registry names."""

from __future__ import annotations

import fnmatch

import pandas as pd
import pytest

from deepsad.errors import InvalidInputError
from deepsad.experiments import paper_tables
from deepsad.experiments.paper_tables import (
    PAPER_DATASETS,
    PAPER_METHODS,
    load_paper_tables,
    paper_dataset_name,
    paper_method_name,
    paper_results,
    registry_method_name,
)
from deepsad.methods import method_names

from helpers import REPO_ROOT

SHIPPED = REPO_ROOT / "src" / "deepsad" / "experiments" / "data" / "paper_tables.csv"


def test_the_shipped_table_has_all_435_cells():
    table = load_paper_tables()
    assert list(table.columns) == list(paper_tables.PAPER_COLUMNS)
    assert len(table) == 435
    assert table["table"].value_counts().to_dict() == {4: 195, 3: 93, 5: 93, 6: 54}
    assert not table[["auc_mean", "auc_std"]].isna().any().any()


@pytest.mark.parametrize(
    ("table", "dataset", "value", "method", "mean", "std"),
    [
        (6, "cardio", 0.01, "Deep SAD", 95.0, 1.6),
        (6, "arrhythmia", 0.01, "SSAD Raw", 86.7, 4.0),
        (3, "MNIST", 0.0, "OC-SVM Raw", 96.0, 2.9),
        (3, "CIFAR-10", 0.2, "Deep SAD", 81.9, 7.0),
        (4, "F-MNIST", 0.2, "Supervised Classifier", 53.9, 2.9),
        (5, "CIFAR-10", 5.0, "Deep SAD", 80.4, 4.6),
    ],
)
def test_known_cells_of_the_paper(table, dataset, value, method, mean, std):
    rows = load_paper_tables()
    cell = rows[(rows["table"] == table) & (rows["dataset"] == dataset)
                & (rows["value"] == value) & (rows["method"] == method)]
    assert len(cell) == 1
    assert cell["auc_mean"].item() == pytest.approx(mean)
    assert cell["auc_std"].item() == pytest.approx(std)


def test_the_mapping_covers_every_name_in_the_file():
    table = load_paper_tables()
    assert set(table["method"]) <= set(PAPER_METHODS)
    assert set(table["dataset"]) <= set(PAPER_DATASETS)
    # every paper method maps to a registry method, and the paper's column order is ours;
    # the registry's methods that are not in the paper come after them
    paper = list(PAPER_METHODS.values())
    assert list(method_names())[: len(paper)] == paper
    assert set(method_names()[len(paper) :]) == {"devnet"}


def test_results_in_registry_naming():
    ours = paper_results("table6")
    assert len(ours) == 54
    assert set(ours["parameter"]) == {""}  # like the store's rows of Table 6
    cell = ours[(ours["dataset"] == "cardio") & (ours["method"] == "deepsad")]
    assert cell[["auc_mean", "auc_std"]].iloc[0].tolist() == [95.0, 1.6]
    everything = paper_results()
    assert len(everything) == 435
    assert set(everything["experiment"]) == {"table3", "table4", "table5", "table6"}
    assert set(everything["method"]) <= set(method_names())
    assert set(everything["dataset"]) == set(PAPER_DATASETS.values())
    keys = ["experiment", "dataset", "parameter", "value", "method"]
    assert not everything.duplicated(keys).any()


def test_label_free_methods_appear_only_in_the_zero_rows_of_tables_3_and_5():
    label_free = {"ocsvm", "hybrid-ocsvm", "iforest", "hybrid-iforest", "kde", "hybrid-kde", "cae", "deepsvdd"}
    for experiment in ("table3", "table5"):
        rows = paper_results(experiment)
        assert set(rows.loc[rows["method"].isin(label_free), "value"]) == {0.0}


def test_experiments_without_a_table_give_an_empty_frame():
    rows = paper_results("eta")
    assert rows.empty
    assert list(rows.columns) == list(paper_tables.RESULT_COLUMNS)


def test_name_translation_both_ways():
    assert registry_method_name("OC-SVM Hybrid") == "hybrid-ocsvm"
    assert paper_method_name("hybrid-ocsvm") == "OC-SVM Hybrid"
    assert paper_method_name("my-method") == "my-method"
    assert paper_dataset_name("fmnist") == "F-MNIST"
    with pytest.raises(InvalidInputError, match="unknown paper method"):
        registry_method_name("Deep SVDD++")


def test_callers_get_a_copy():
    first = load_paper_tables()
    first.loc[:, "auc_mean"] = 0.0
    assert load_paper_tables()["auc_mean"].max() > 0


def test_the_shipped_copy_equals_the_paper_file():
    source = REPO_ROOT.parent / "shared" / "paper" / "tables.csv"
    if not source.exists():
        pytest.skip(f"paper table not found: {source}")
    assert SHIPPED.read_bytes() == source.read_bytes()
    assert pd.read_csv(source).equals(pd.read_csv(SHIPPED))


def test_pyproject_ships_the_csv_as_package_data():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    assert "deepsad.experiments.data" in setuptools["packages"]
    patterns = setuptools["package-data"]["deepsad.experiments.data"]
    relative = SHIPPED.relative_to(REPO_ROOT / "src" / "deepsad" / "experiments" / "data").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)
