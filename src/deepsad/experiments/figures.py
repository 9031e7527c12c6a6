"""Figures of experiment results in the style of the paper (Ruff et al., ICLR 2020).

* :func:`plot_parameter_curves` -- Figures 2-6: mean AUC against the varied parameter
  (gamma_l, gamma_p, k_l, eta, d), one line with a ±std band per method, one panel per dataset.
* :func:`plot_best_vs_second` -- Figures 7-9: per-setup AUCs of the best (y) against the second
  best method (x) with the identity line; points above it favour the best method.

matplotlib is an optional dependency (``pip install 'deepsad[report]'``), imported only when a
figure is drawn. Figures are drawn on matplotlib's object API with the Agg canvas, never through
``pyplot``, so that the library neither switches the user's backend nor keeps figures alive.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepsad.errors import DeepSADError
from deepsad.experiments.paper_tables import paper_dataset_name, paper_method_name
from deepsad.experiments.report import (
    DEFAULT_ALPHA,
    PARAMETER_MATH,
    ROW_KEYS,
    _compare,
    _paired,
    _summarize,
    ordered_experiments,
    ordered_methods,
    validate_results,
)

logger = logging.getLogger(__name__)

#: resolution of the written PNGs
DPI = 120

_PANEL_SIZE = (4.0, 3.2)  # inches per panel: readable with up to 13 methods in the legend
_MAX_COLUMNS = 3


class MissingDependencyError(DeepSADError, ImportError):
    """An optional dependency that the requested feature needs is not installed."""


def _figure_factory() -> Any:
    """matplotlib's Figure, attached to the Agg canvas; a clear error when matplotlib is absent."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "drawing figures needs matplotlib: pip install 'deepsad[report]'"
        ) from None

    def new_figure(n_panels: int) -> tuple[Any, list[Any]]:
        n_columns = min(n_panels, _MAX_COLUMNS)
        n_rows = math.ceil(n_panels / n_columns)
        figure = Figure(figsize=(_PANEL_SIZE[0] * n_columns, _PANEL_SIZE[1] * n_rows), layout="constrained")
        FigureCanvasAgg(figure)  # Agg whatever backend the user's session has selected
        axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel().tolist()
        for unused in axes[n_panels:]:
            unused.set_visible(False)
        return figure, axes[:n_panels]

    return new_figure


def _file_name(*parts: str) -> str:
    # dataset names such as "satimage-2" are fine, user-defined ones may hold anything
    return "_".join(re.sub(r"[^A-Za-z0-9._-]+", "-", part) for part in parts if part) + ".png"


def _save(figure: Any, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    figure.savefig(path, format="png", dpi=DPI)
    logger.info("wrote figure %s", path)
    return path


def _value_label(value: float) -> str:
    return "" if isinstance(value, float) and math.isnan(value) else f"{value:g}"


def plot_parameter_curves(
    df: pd.DataFrame, experiment: str, out_dir: str | os.PathLike, *, ddof: int = 1
) -> list[Path]:
    """Mean AUC against the varied parameter, one panel per dataset (Figures 2-6).

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`deepsad.experiments.report.validate_results`.
    experiment : str
        The experiment to draw, e.g. ``"table3"`` or ``"eta"``.
    out_dir : path
        Folder for the PNG (created if needed).
    ddof : int, default 1
        Delta degrees of freedom of the std band.

    Returns
    -------
    list of pathlib.Path
        ``[<out_dir>/<experiment>_auc-vs-<parameter>.png]``, or ``[]`` when the experiment
        varies no parameter (Table 6). The parameter's values are spaced evenly on the x axis,
        as in the paper, so that 0, .01 and .05 stay apart and eta's decades read evenly.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    new_figure = _figure_factory()
    data = validate_results(df)
    summary = _summarize(data[data["experiment"] == experiment], ddof=ddof)
    summary = summary[summary["parameter"] != ""]
    if summary.empty:
        logger.info("%s: no varied parameter, no curve figure", experiment)
        return []
    parameter = summary["parameter"].iloc[0]
    datasets = list(dict.fromkeys(summary["dataset"]))
    figure, axes = new_figure(len(datasets))
    methods = ordered_methods(summary["method"].unique())
    colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    markers = "osD^v<>ph*Xd+"
    for axis, dataset in zip(axes, datasets):
        rows = summary[summary["dataset"] == dataset]
        values = sorted(rows["value"].dropna().unique())
        position = {value: index for index, value in enumerate(values)}
        for index, method in enumerate(methods):
            line = rows[(rows["method"] == method) & rows["auc_mean"].notna()].sort_values("value")
            if line.empty:
                continue
            x = line["value"].map(position).to_numpy(dtype=float)
            mean = line["auc_mean"].to_numpy()
            std = np.nan_to_num(line["auc_std"].to_numpy())  # one task: no band
            axis.plot(x, mean, marker=markers[index % len(markers)], color=colors[method],
                      label=paper_method_name(method))
            axis.fill_between(x, mean - std, mean + std, color=colors[method], alpha=0.15, linewidth=0)
        axis.set_xticks(range(len(values)), [_value_label(v) for v in values])
        axis.set_title(paper_dataset_name(dataset))
        axis.set_xlabel(PARAMETER_MATH.get(parameter, parameter))
        axis.set_ylabel("AUC (%)")
        axis.grid(True, alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    for axis in axes[1:]:  # a method may be missing from the first panel
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="outside right center", fontsize="small")
    return [_save(figure, Path(out_dir), _file_name(experiment, f"auc-vs-{parameter}"))]


def plot_best_vs_second(
    df: pd.DataFrame,
    experiment: str,
    out_dir: str | os.PathLike,
    *,
    alpha: float = DEFAULT_ALPHA,
    ddof: int = 1,
) -> list[Path]:
    """Per-setup AUCs of the best against the second best method (Figures 7-9).

    One PNG per dataset, one panel per parameter value: x = AUC of the second best, y = AUC of
    the best method on the setups both completed, with the identity line. The panel title
    gives the Wilcoxon p-value and a ``⋆`` when it is below ``alpha``.

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`deepsad.experiments.report.validate_results`.
    experiment : str
        The experiment to draw.
    out_dir : path
        Folder for the PNGs (created if needed).
    alpha : float, default 0.05
        Significance level shown in the titles.
    ddof : int, default 1
        Passed to the summary (the ranking uses only the means).

    Returns
    -------
    list of pathlib.Path
        ``<out_dir>/<experiment>_<dataset>_best-vs-second.png`` for every dataset with at
        least one row where two methods share a completed setup.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    new_figure = _figure_factory()
    data = validate_results(df)
    data = data[data["experiment"] == experiment]
    if data.empty:
        return []
    tests = _compare(data, _summarize(data, ddof=ddof), alpha=alpha)
    tests = tests[tests["n_pairs"] > 0]
    paths = []
    for dataset in dict.fromkeys(tests["dataset"]):
        rows = tests[tests["dataset"] == dataset]
        figure, axes = new_figure(len(rows))
        for axis, test in zip(axes, rows.itertuples(index=False)):
            row = tuple(getattr(test, key) for key in ROW_KEYS)
            pairs = _paired(data, row, (test.best_method, test.second_method))
            _scatter(axis, pairs, test, alpha=alpha)
        figure.suptitle(f"{paper_dataset_name(dataset)}: best (1st) vs second best (2nd)")
        paths.append(_save(figure, Path(out_dir), _file_name(experiment, dataset, "best-vs-second")))
    return paths


def _scatter(axis: Any, pairs: pd.DataFrame, test: Any, *, alpha: float) -> None:
    best, second = pairs.iloc[:, 0].to_numpy(), pairs.iloc[:, 1].to_numpy()
    low = max(0.0, min(best.min(), second.min()) - 0.05)
    axis.plot([low, 1.0], [low, 1.0], color="grey", linewidth=1, linestyle="--", zorder=0)
    axis.scatter(second, best, s=14, alpha=0.7)
    axis.set_xlim(low, 1.0)
    axis.set_ylim(low, 1.0)
    axis.set_aspect("equal")
    axis.set_xlabel(f"2nd: {paper_method_name(test.second_method)}")
    axis.set_ylabel(f"1st: {paper_method_name(test.best_method)}")
    name = PARAMETER_MATH.get(test.parameter, test.parameter)
    setting = f"{name} = {_value_label(test.value)}, " if test.parameter else ""
    marker = r" $\star$" if test.significant else ""
    axis.set_title(f"{setting}p = {test.p_value:.2g}{marker} (n = {test.n_pairs})", fontsize="medium")
    axis.grid(True, alpha=0.3)


def write_figures(
    df: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    experiments: Iterable[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    ddof: int = 1,
) -> list[Path]:
    """Draw every figure of the given experiments (default: all in ``df``).

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`deepsad.experiments.report.validate_results`.
    out_dir : path
        Folder for the PNGs (created if needed).
    experiments : iterable of str, optional
        The experiments to draw; default all in ``df``, in the paper's order.
    alpha, ddof
        As in :func:`plot_best_vs_second`.

    Returns
    -------
    list of pathlib.Path
        The PNGs written.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    data = validate_results(df)
    chosen = ordered_experiments(data["experiment"].unique()) if experiments is None else list(experiments)
    paths: list[Path] = []
    for experiment in chosen:
        paths += plot_parameter_curves(data, experiment, out_dir, ddof=ddof)
        paths += plot_best_vs_second(data, experiment, out_dir, alpha=alpha, ddof=ddof)
    return paths
