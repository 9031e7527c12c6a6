"""The paper's Tables 3-6 (Ruff et al., ICLR 2020, Appendix F) as data, in this package's naming.

The numbers ship with the package (``experiments/data/paper_tables.csv``, 435 cells, one row per
cell: ``table, dataset, parameter, value, method, auc_mean, auc_std``, AUC in percent) so that a
report can put "paper" beside "ours". The file keeps the paper's own spelling ("OC-SVM Raw",
"F-MNIST", ...); :func:`paper_results` translates it to the registry names the experiments use
("ocsvm", "fmnist", ...).

Methods that ignore the labels appear only in the ``gamma_l = 0`` / ``k_l = 0`` rows of Tables 3
and 5, as in the paper.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

import pandas as pd

from deepsad.errors import InvalidInputError

logger = logging.getLogger(__name__)

#: the columns of the shipped CSV
PAPER_COLUMNS = ("table", "dataset", "parameter", "value", "method", "auc_mean", "auc_std")

#: paper table number -> experiment name used by the runner and the result store
PAPER_EXPERIMENTS: Mapping[int, str] = MappingProxyType({3: "table3", 4: "table4", 5: "table5", 6: "table6"})

#: the paper's dataset names -> registry names
PAPER_DATASETS: Mapping[str, str] = MappingProxyType(
    {
        "MNIST": "mnist",
        "F-MNIST": "fmnist",
        "CIFAR-10": "cifar10",
        "arrhythmia": "arrhythmia",
        "cardio": "cardio",
        "satellite": "satellite",
        "satimage-2": "satimage-2",
        "shuttle": "shuttle",
        "thyroid": "thyroid",
    }
)

#: the paper's method names (column headers of Tables 3-6) -> registry names, in the paper's order
PAPER_METHODS: Mapping[str, str] = MappingProxyType(
    {
        "OC-SVM Raw": "ocsvm",
        "OC-SVM Hybrid": "hybrid-ocsvm",
        "IF Raw": "iforest",
        "IF Hybrid": "hybrid-iforest",
        "KDE Raw": "kde",
        "KDE Hybrid": "hybrid-kde",
        "CAE": "cae",
        "Deep SVDD": "deepsvdd",
        "SSAD Raw": "ssad",
        "SSAD Hybrid": "hybrid-ssad",
        "SS-DGM": "ssdgm",
        "Deep SAD": "deepsad",
        "Supervised Classifier": "supervised",
    }
)

#: the paper's symbols of the varied parameters: plain text for Markdown, math for LaTeX and matplotlib
PARAMETER_TEXT = {"gamma_l": "γl", "gamma_p": "γp", "k_l": "kl", "eta": "η", "rep_dim": "d"}
PARAMETER_MATH = {
    "gamma_l": r"$\gamma_l$",
    "gamma_p": r"$\gamma_p$",
    "k_l": r"$k_l$",
    "eta": r"$\eta$",
    "rep_dim": r"$d$",
}

#: experiments that vary no parameter: the store writes ``parameter = ""`` for them, so their
#: paper cells are matched on (dataset, method) alone
SINGLE_SETTING_EXPERIMENTS = frozenset({"table6"})

_DATA_PACKAGE = "deepsad.experiments"
_DATA_FILE = ("data", "paper_tables.csv")

#: columns of :func:`paper_results`
RESULT_COLUMNS = ("experiment", "dataset", "parameter", "value", "method", "auc_mean", "auc_std")


@lru_cache(maxsize=1)
def _read_shipped_csv() -> pd.DataFrame:
    # importlib.resources works for wheels, zip imports and editable installs alike
    resource = resources.files(_DATA_PACKAGE).joinpath(*_DATA_FILE)
    with resource.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype={"dataset": str, "parameter": str, "method": str})
    missing = [column for column in PAPER_COLUMNS if column not in frame.columns]
    if missing:  # pragma: no cover - guards the shipped file against a bad edit
        raise InvalidInputError(f"the shipped paper table lacks columns: {', '.join(missing)}")
    return frame


def load_paper_tables() -> pd.DataFrame:
    """The paper's Tables 3-6 exactly as shipped, in the paper's own naming.

    Returns
    -------
    pandas.DataFrame
        One row per cell (435 rows) with columns ``table`` (int, 3-6), ``dataset`` and
        ``method`` (the paper's spelling), ``parameter`` (``gamma_l``, ``gamma_p`` or ``k_l``;
        Table 6 lists its fixed ``gamma_l = 0.01``), ``value`` (float), ``auc_mean`` and
        ``auc_std`` (AUC in percent). A fresh copy: callers may modify it.
    """
    return _read_shipped_csv().copy()


def registry_method_name(paper_name: str) -> str:
    """The registry name of a method as the paper spells it (``"OC-SVM Raw"`` -> ``"ocsvm"``).

    Raises
    ------
    InvalidInputError
        If the paper has no method of that name.
    """
    try:
        return PAPER_METHODS[paper_name]
    except KeyError:
        raise InvalidInputError(
            f"unknown paper method {paper_name!r}; known: {', '.join(PAPER_METHODS)}"
        ) from None


def paper_method_name(method: str) -> str:
    """The paper's spelling of a registry method name, or the name itself if the paper lacks it."""
    return _REVERSE_METHODS.get(method, method)


def paper_dataset_name(dataset: str) -> str:
    """The paper's spelling of a registry dataset name, or the name itself if the paper lacks it."""
    return _REVERSE_DATASETS.get(dataset, dataset)


_REVERSE_METHODS = {registry: paper for paper, registry in PAPER_METHODS.items()}
_REVERSE_DATASETS = {registry: paper for paper, registry in PAPER_DATASETS.items()}


def paper_results(experiment: str | None = None) -> pd.DataFrame:
    """The paper's numbers in this package's naming, for one experiment or all of them.

    Parameters
    ----------
    experiment : str, optional
        ``"table3"`` ... ``"table6"``. Experiments the paper reports only as figures
        (``"eta"``, ``"rep_dim"``) or not at all give an empty frame. ``None``: all tables.

    Returns
    -------
    pandas.DataFrame
        Columns ``experiment, dataset, parameter, value, method, auc_mean, auc_std`` with
        registry names (``"fmnist"``, ``"hybrid-ocsvm"``, ...) and AUC in percent. Table 6 gets
        ``parameter = ""`` like the result store's rows, its ``value`` stays the paper's fixed
        ``gamma_l = 0.01``.
    """
    frame = load_paper_tables()
    unknown_methods = sorted(set(frame["method"]) - set(PAPER_METHODS))
    unknown_datasets = sorted(set(frame["dataset"]) - set(PAPER_DATASETS))
    if unknown_methods or unknown_datasets:  # pragma: no cover - guards the shipped file
        raise InvalidInputError(
            f"the shipped paper table has unmapped names: methods {unknown_methods}, datasets {unknown_datasets}"
        )
    out = pd.DataFrame(
        {
            "experiment": frame["table"].map(PAPER_EXPERIMENTS),
            "dataset": frame["dataset"].map(PAPER_DATASETS),
            "parameter": frame["parameter"],
            "value": frame["value"].astype(float),
            "method": frame["method"].map(PAPER_METHODS),
            "auc_mean": frame["auc_mean"].astype(float),
            "auc_std": frame["auc_std"].astype(float),
        }
    )
    out.loc[out["experiment"].isin(SINGLE_SETTING_EXPERIMENTS), "parameter"] = ""
    if experiment is not None:
        out = out[out["experiment"] == experiment]
        if out.empty:
            logger.debug("the paper has no table for experiment %r", experiment)
    return out.reset_index(drop=True)[list(RESULT_COLUMNS)]
