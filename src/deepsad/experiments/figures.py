"""Figures of experiment results in the style of the paper (Ruff et al., ICLR 2020).

* :func:`plot_parameter_curves` -- Figures 2-6: mean AUC against the varied parameter
  (gamma_l, gamma_p, k_l, eta, d), one line with a ±std band per method, one panel per dataset,
  optionally the paper's means dashed beside ours.
* :func:`plot_best_vs_second` -- Figures 7-9: per-setup AUCs of the best (y) against the second
  best method (x) with the identity line; points above it favour the best method.
* :func:`method_styles` -- the colour and marker of every method, shared by all figures
  (including :mod:`deepsad.experiments.cd_diagram`);
* :func:`save_figure` -- the one place a figure becomes files: PNG, PDF and SVG.

Every AUC axis is in percent, as in the paper's tables and figures, and never leaves [0, 100].

matplotlib is an optional dependency (``pip install 'deepsad[report]'``), imported only when a
figure is drawn. Figures are drawn on matplotlib's object API with the Agg canvas, never through
``pyplot``, so that the library neither switches the user's backend nor keeps figures alive.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.experiments.paper_tables import PARAMETER_MATH, paper_dataset_name, paper_method_name, paper_results
from deepsad.experiments.statistics import (
    DEFAULT_ALPHA,
    ROW_KEYS,
    compare_validated,
    ordered_experiments,
    ordered_methods,
    paired_validated,
    summarize_validated,
    validate_results,
)
from deepsad.methods import method_names

logger = logging.getLogger(__name__)

#: resolution of the written PNGs
DPI = 120

#: the file formats every figure is written in (:func:`save_figure`); PNG first, the one reports embed
FIGURE_FORMATS: tuple[str, ...] = ("png", "pdf", "svg")

_PANEL_SIZE = (4.0, 3.2)  # inches per panel: readable with up to 13 methods in the legend
_MAX_COLUMNS = 3

# Okabe & Ito's palette (without its yellow, too pale for a line on white) and the members of
# Paul Tol's "muted" scheme that none of those resembles; both were designed to stay apart under
# colour-vision deficiencies. The order puts the paper's methods (methods.method_names()) on
# colours that read well, Deep SAD on the most conspicuous one (vermillion).
PALETTE: tuple[str, ...] = (
    "#0072b2",  # blue            ocsvm
    "#56b4e9",  # sky blue        hybrid-ocsvm
    "#009e73",  # bluish green    iforest
    "#999933",  # olive           hybrid-iforest
    "#e69f00",  # orange          kde
    "#ddcc77",  # sand            hybrid-kde
    "#cc79a7",  # reddish purple  cae
    "#332288",  # indigo          deepsvdd
    "#882255",  # wine            ssad
    "#cc6677",  # rose            hybrid-ssad
    "#000000",  # black           ssdgm
    "#d55e00",  # vermillion      deepsad
    "#117733",  # green           supervised
    "#aa4499",  # purple          devnet
)
#: filled markers, distinct at a glance at 6 points (the last two least so: they come last)
MARKERS: tuple[str, ...] = ("o", "s", "D", "^", "v", "<", ">", "p", "h", "*", "X", "P", "d", "H", "8")


class MissingDependencyError(DeepSADError, ImportError):
    """An optional dependency that the requested feature needs is not installed."""


_INSTALL_HINT = "drawing figures needs matplotlib: pip install 'deepsad[report]'"


# --------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class MethodStyle:
    """How one method is drawn: a matplotlib colour (hex) and marker."""

    color: str
    marker: str


def _slot_style(slot: int) -> MethodStyle:
    # Slot i has colour i mod C and marker (i mod C + i div C) mod M: the first C slots differ in
    # colour and marker, and no (colour, marker) pair repeats among the first C * M slots.
    n_colors = len(PALETTE)
    color = slot % n_colors
    return MethodStyle(PALETTE[color], MARKERS[(color + slot // n_colors) % len(MARKERS)])


def method_styles(methods: Iterable[str]) -> dict[str, MethodStyle]:
    """A colour and a marker per method; no two methods share the pair.

    The mapping is deterministic and independent of the order of ``methods``. A method of
    :func:`deepsad.methods.method_names` always gets the same style, in every figure (OC-SVM
    blue circles, Deep SAD vermillion pluses, ...); these all differ in colour and in marker.
    Other methods (peers, user methods) take, in alphabetical order, the first style whose
    colour and marker no method of ``methods`` uses yet -- while the 14 colours last -- and
    after that a colour with a marker it has not been paired with, preferring the (colour,
    marker) pairs that no method of ``method_names()`` owns. Their style thus depends
    on the set of methods; pass one mapping to several figures to keep every method's style
    across them (the reports do).

    Parameters
    ----------
    methods : iterable of str
        Distinct method names (duplicates are ignored).

    Returns
    -------
    dict of str to MethodStyle
        In the order of ``methods``.

    Raises
    ------
    InvalidInputError
        For more than ``len(PALETTE) * len(MARKERS)`` (210) methods.
    """
    names = list(dict.fromkeys(str(m) for m in methods))
    n_slots = len(PALETTE) * len(MARKERS)
    if len(names) > n_slots:
        raise InvalidInputError(f"{len(names)} methods in one figure; at most {n_slots} can have their own style")
    canonical = {name: slot for slot, name in enumerate(method_names())}
    slots = {m: canonical[m] for m in names if m in canonical and canonical[m] < n_slots}
    taken = set(slots.values())
    colors = {_slot_style(s).color for s in taken}
    markers = {_slot_style(s).marker for s in taken}
    # the other methods prefer the styles no method of method_names() owns, so that a peer never
    # looks exactly like one of the paper's methods, even in a figure without that method
    n_owned = min(len(canonical), n_slots)
    order = [*range(n_owned, n_slots), *range(n_owned)]
    for name in sorted(m for m in names if m not in slots):
        free = [s for s in order if s not in taken]
        fresh = [s for s in free if _slot_style(s).color not in colors and _slot_style(s).marker not in markers]
        # beyond the palette, slot order gives a used colour the marker of the slot after its
        # first owner's: a clearly different shape (not "H" / "8", which read like "h" / "o")
        slot = (fresh or free)[0]
        slots[name] = slot
        taken.add(slot)
        colors.add(_slot_style(slot).color)
        markers.add(_slot_style(slot).marker)
    return {m: _slot_style(slots[m]) for m in names}


def check_styles(styles: Mapping[str, MethodStyle], methods: Sequence[str]) -> None:
    """Refuse styles that miss one of ``methods`` or give two of them the same colour and marker."""
    missing = [m for m in methods if m not in styles]
    if missing:
        raise InvalidInputError(f"no style for method(s) {', '.join(missing)}")
    seen: dict[tuple[str, str], str] = {}
    for method in methods:
        key = (styles[method].color.lower(), styles[method].marker)
        if key in seen:
            raise InvalidInputError(
                f"methods {seen[key]} and {method} share a colour and marker ({key[0]}, {key[1]!r}) in one figure; "
                "give every method its own"
            )
        seen[key] = method


# --------------------------------------------------------------------------- files


def check_formats(formats: Sequence[str]) -> None:
    """Refuse an empty list of figure formats or one that :func:`save_figure` cannot write."""
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown or not formats:
        raise InvalidInputError(
            f"unknown figure format(s) {unknown or list(formats)}; choose from {', '.join(FIGURE_FORMATS)}"
        )


def save_figure(
    figure: Any, out_dir: str | os.PathLike, stem: str, *, formats: Sequence[str] = FIGURE_FORMATS
) -> list[Path]:
    """Write ``figure`` as ``<out_dir>/<stem>.<format>`` for every format.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    out_dir : path
        Created if needed.
    stem : str
        The file name without suffix (callers make it safe for a file name).
    formats : sequence of {"png", "pdf", "svg"}, default all three

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``. PDF and SVG carry no creation date and
        SVG ids come from a fixed salt, so the same figure writes the same bytes.

    Raises
    ------
    InvalidInputError
        For an unknown or empty list of formats.
    """
    check_formats(formats)
    import matplotlib  # present: the figure exists

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in dict.fromkeys(formats):
        path = folder / f"{stem}.{fmt}"
        metadata = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}[fmt]
        # rc_context restores the caller's settings; the salt makes SVG element ids reproducible
        with matplotlib.rc_context({"svg.hashsalt": "deepsad"}):
            figure.savefig(path, format=fmt, dpi=DPI, metadata=metadata)
        logger.info("wrote figure %s", path)
        paths.append(path)
    return paths


def _figure_factory() -> Any:
    """matplotlib's Figure, attached to the Agg canvas; a clear error when matplotlib is absent."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(_INSTALL_HINT) from None

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


def _file_stem(*parts: str) -> str:
    # dataset names such as "satimage-2" are fine, user-defined ones may hold anything
    return "_".join(re.sub(r"[^A-Za-z0-9._-]+", "-", part) for part in parts if part)


def _value_label(value: float) -> str:
    return "" if isinstance(value, float) and math.isnan(value) else f"{value:g}"


def _auc_limits(low: float, high: float) -> tuple[float, float]:
    """An AUC axis (percent) around [low, high]: on multiples of 5, never outside [0, 100]."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return 0.0, 100.0
    bottom = max(0.0, 5.0 * math.floor((min(low, high) - 1.0) / 5.0))
    top = min(100.0, 5.0 * math.ceil((max(low, high) + 1.0) / 5.0))
    return bottom, top  # the ±1 padding keeps top > bottom


# --------------------------------------------------------------------------- figures


def draw_parameter_curves(
    df: pd.DataFrame,
    experiment: str,
    *,
    styles: Mapping[str, MethodStyle] | None = None,
    ddof: int = 1,
    with_paper: bool = False,
) -> Any | None:
    """The figure of :func:`plot_parameter_curves`, not written anywhere.

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`deepsad.experiments.statistics.validate_results`.
    experiment : str
        The experiment to draw, e.g. ``"table3"`` or ``"eta"``.
    styles : mapping of str to MethodStyle, optional
        Colour and marker per method (default :func:`method_styles` of the drawn methods).
    ddof : int, default 1
        Delta degrees of freedom of the std band.
    with_paper : bool, default False
        Also draw the paper's means (:func:`deepsad.experiments.paper_tables.paper_results`)
        of the drawn datasets and methods: dashed, hollow markers, the method's colour, over
        the paper's whole sweep (the x axis then holds the paper's values besides ours).

    Returns
    -------
    matplotlib.figure.Figure or None
        On the Agg canvas; ``None`` when the experiment varies no parameter (Table 6). Each
        method's line carries the method's name as its ``gid``; the paper's line
        ``"<method> (paper)"``.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    InvalidInputError
        If ``styles`` misses a method or gives two methods the same colour and marker.
    """
    drawn = _draw_curves(df, experiment, styles=styles, ddof=ddof, with_paper=with_paper)
    return None if drawn is None else drawn[0]


def _paper_points(experiment: str, parameter: str, summary: pd.DataFrame) -> pd.DataFrame:
    """The paper's means for the datasets and methods of ``summary`` (empty if it has none)."""
    paper = paper_results(experiment)
    paper = paper[(paper["parameter"] == parameter) & paper["auc_mean"].notna()]
    keys = set(zip(summary["dataset"], summary["method"]))
    return paper[[key in keys for key in zip(paper["dataset"], paper["method"])]]


def _draw_curves(
    df: pd.DataFrame, experiment: str, *, styles: Mapping[str, MethodStyle] | None, ddof: int,
    with_paper: bool = False,
) -> tuple[Any, str] | None:
    """(figure, varied parameter) of :func:`draw_parameter_curves`."""
    new_figure = _figure_factory()
    data = validate_results(df)
    summary = summarize_validated(data[data["experiment"] == experiment], ddof=ddof)
    summary = summary[summary["parameter"] != ""]
    if summary.empty:
        logger.info("%s: no varied parameter, no curve figure", experiment)
        return None
    parameter = summary["parameter"].iloc[0]
    paper = _paper_points(experiment, parameter, summary) if with_paper else summary.iloc[:0]
    datasets = list(dict.fromkeys(summary["dataset"]))
    methods = ordered_methods(summary["method"].unique())  # the legend's order
    styles = dict(styles) if styles is not None else method_styles(methods)
    check_styles(styles, methods)
    figure, axes = new_figure(len(datasets))
    for axis, dataset in zip(axes, datasets):
        rows = summary[summary["dataset"] == dataset]
        published = paper[paper["dataset"] == dataset]
        # the paper's whole sweep sets the axis, so that its curve shows where ours was not run
        values = sorted(set(rows["value"].dropna()) | set(published["value"]))
        position = {value: index for index, value in enumerate(values)}
        low, high = math.inf, -math.inf
        for method in methods:
            reference = published[published["method"] == method].sort_values("value")
            if not reference.empty:
                style = styles[method]
                drawn = axis.plot(reference["value"].map(position).to_numpy(dtype=float), reference["auc_mean"],
                                  color=style.color, marker=style.marker, markerfacecolor="none", linestyle="--",
                                  alpha=0.8, label=f"{paper_method_name(method)} (paper)")[0]
                drawn.set_gid(f"{method} (paper)")
                low = min(low, float(reference["auc_mean"].min()))
                high = max(high, float(reference["auc_mean"].max()))
            line = rows[(rows["method"] == method) & rows["auc_mean"].notna()].sort_values("value")
            if line.empty:
                continue
            style = styles[method]
            x = line["value"].map(position).to_numpy(dtype=float)
            mean = line["auc_mean"].to_numpy()
            std = np.nan_to_num(line["auc_std"].to_numpy())  # one task: no band
            band_low, band_high = np.clip(mean - std, 0.0, 100.0), np.clip(mean + std, 0.0, 100.0)
            drawn = axis.plot(x, mean, color=style.color, marker=style.marker, linestyle="-",
                              label=paper_method_name(method))[0]
            drawn.set_gid(method)
            axis.fill_between(x, band_low, band_high, color=style.color, alpha=0.15, linewidth=0)
            low, high = min(low, float(band_low.min())), max(high, float(band_high.max()))
        axis.set_ylim(*_auc_limits(low, high))
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
    return figure, str(parameter)


def plot_parameter_curves(
    df: pd.DataFrame,
    experiment: str,
    out_dir: str | os.PathLike,
    *,
    styles: Mapping[str, MethodStyle] | None = None,
    ddof: int = 1,
    formats: Sequence[str] = FIGURE_FORMATS,
    with_paper: bool = False,
) -> list[Path]:
    """Mean AUC (%) against the varied parameter, one panel per dataset (Figures 2-6).

    Parameters
    ----------
    df, experiment
        As in :func:`draw_parameter_curves`.
    out_dir : path
        Folder for the files (created if needed).
    styles, ddof
        As in :func:`draw_parameter_curves`.
    formats : sequence of {"png", "pdf", "svg"}, default all three
        As in :func:`save_figure`.
    with_paper : bool, default False
        As in :func:`draw_parameter_curves`: the paper's means dashed beside ours.

    Returns
    -------
    list of pathlib.Path
        ``<out_dir>/<experiment>_auc-vs-<parameter>.{png,pdf,svg}``, or ``[]`` when the
        experiment varies no parameter (Table 6). The parameter's values are spaced evenly on
        the x axis, as in the paper, so that 0, .01 and .05 stay apart and eta's decades read
        evenly; the AUC axis stays within [0, 100] (the ±std band is cut there too).

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    drawn = _draw_curves(df, experiment, styles=styles, ddof=ddof, with_paper=with_paper)
    if drawn is None:
        return []
    figure, parameter = drawn
    return save_figure(figure, out_dir, _file_stem(experiment, f"auc-vs-{parameter}"), formats=formats)


def draw_best_vs_second(
    df: pd.DataFrame,
    experiment: str,
    *,
    alpha: float = DEFAULT_ALPHA,
    ddof: int = 1,
) -> dict[str, Any]:
    """The figures of :func:`plot_best_vs_second`, not written anywhere: dataset -> Figure."""
    new_figure = _figure_factory()
    data = validate_results(df)
    data = data[data["experiment"] == experiment]
    if data.empty:
        return {}
    tests = compare_validated(data, summarize_validated(data, ddof=ddof), alpha=alpha)
    tests = tests[tests["n_pairs"] > 0]
    drawn = {}
    for dataset in dict.fromkeys(tests["dataset"]):
        rows = tests[tests["dataset"] == dataset]
        figure, axes = new_figure(len(rows))
        for axis, test in zip(axes, rows.itertuples(index=False)):
            row = tuple(getattr(test, key) for key in ROW_KEYS)
            pairs = paired_validated(data, row, (test.best_method, test.second_method)) * 100.0  # percent
            _scatter(axis, pairs, test, alpha=alpha)
        figure.suptitle(f"{paper_dataset_name(dataset)}: best (1st) vs second best (2nd)")
        drawn[str(dataset)] = figure
    return drawn


def plot_best_vs_second(
    df: pd.DataFrame,
    experiment: str,
    out_dir: str | os.PathLike,
    *,
    alpha: float = DEFAULT_ALPHA,
    ddof: int = 1,
    formats: Sequence[str] = FIGURE_FORMATS,
) -> list[Path]:
    """Per-setup AUCs (%) of the best against the second best method (Figures 7-9).

    One figure per dataset, one panel per parameter value: x = AUC of the second best, y = AUC
    of the best method on the setups both completed, with the identity line; both axes end at
    100. The panel title gives the Wilcoxon p-value and a ``⋆`` when it is below ``alpha``.

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`deepsad.experiments.statistics.validate_results`.
    experiment : str
        The experiment to draw.
    out_dir : path
        Folder for the files (created if needed).
    alpha : float, default 0.05
        Significance level shown in the titles.
    ddof : int, default 1
        Passed to the summary (the ranking uses only the means).
    formats : sequence of {"png", "pdf", "svg"}, default all three
        As in :func:`save_figure`.

    Returns
    -------
    list of pathlib.Path
        ``<out_dir>/<experiment>_<dataset>_best-vs-second.{png,pdf,svg}`` for every dataset
        with at least one row where two methods share a completed setup.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    paths = []
    for dataset, figure in draw_best_vs_second(df, experiment, alpha=alpha, ddof=ddof).items():
        paths += save_figure(figure, out_dir, _file_stem(experiment, dataset, "best-vs-second"), formats=formats)
    return paths


def _scatter(axis: Any, pairs: pd.DataFrame, test: Any, *, alpha: float) -> None:
    best, second = pairs.iloc[:, 0].to_numpy(), pairs.iloc[:, 1].to_numpy()
    low, _ = _auc_limits(min(best.min(), second.min()) - 4.0, 100.0)
    axis.plot([low, 100.0], [low, 100.0], color="grey", linewidth=1, linestyle="--", zorder=0)
    # one series of pairs, not a method: neutral, so it is not read as one method's colour
    axis.scatter(second, best, s=14, alpha=0.7, color="0.25", marker="o")
    axis.set_xlim(low, 100.0)
    axis.set_ylim(low, 100.0)
    axis.set_aspect("equal")
    axis.set_xlabel(f"2nd: {paper_method_name(test.second_method)}, AUC (%)")
    axis.set_ylabel(f"1st: {paper_method_name(test.best_method)}, AUC (%)")
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
    styles: Mapping[str, MethodStyle] | None = None,
    formats: Sequence[str] = FIGURE_FORMATS,
    with_paper: bool = False,
) -> list[Path]:
    """Draw every figure of the given experiments (default: all in ``df``).

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`deepsad.experiments.statistics.validate_results`.
    out_dir : path
        Folder for the files (created if needed).
    experiments : iterable of str, optional
        The experiments to draw; default all in ``df``, in the paper's order.
    alpha, ddof
        As in :func:`plot_best_vs_second`.
    styles : mapping of str to MethodStyle, optional
        Default :func:`method_styles` over every method in ``df``, so that a method looks the
        same in all the figures.
    formats : sequence of {"png", "pdf", "svg"}, default all three
        As in :func:`save_figure`.
    with_paper : bool, default False
        Draw the paper's means in the parameter curves (:func:`draw_parameter_curves`).

    Returns
    -------
    list of pathlib.Path
        The files written: per figure its PNG, PDF and SVG (the order of ``formats``).

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    data = validate_results(df)
    chosen = ordered_experiments(data["experiment"].unique()) if experiments is None else list(experiments)
    styles = dict(styles) if styles is not None else method_styles(ordered_methods(data["method"].unique()))
    paths: list[Path] = []
    for experiment in chosen:
        paths += plot_parameter_curves(data, experiment, out_dir, styles=styles, ddof=ddof, formats=formats,
                                       with_paper=with_paper)
        paths += plot_best_vs_second(data, experiment, out_dir, alpha=alpha, ddof=ddof, formats=formats)
    return paths
