"""Critical-difference diagrams (Demšar, JMLR 2006, Figure 1) of a :class:`RankingResult`.

The classic layout: an axis of average ranks 1 .. k (best on the left), every method hanging
from its average rank to the left (the better half) or right side with its name and rank,
thick bars joining the groups of methods that the Nemenyi test does not tell apart, and the
critical difference drawn as an interval above the axis.

* :func:`method_styles` -- a colour and a marker per method, no pair repeated within a figure
  (:func:`deepsad.experiments.figures.method_styles`, shared with the other figures);
* :func:`draw_cd_diagram` -- the matplotlib figure;
* :func:`write_cd_diagram` -- the figure as PNG, PDF and SVG through
  :func:`deepsad.experiments.figures.save_figure` (:func:`file_stem` names the files).

matplotlib is optional (``pip install 'deepsad[report]'``) and imported only here, when a
diagram is drawn, on the object API with the Agg canvas (never ``pyplot``), as in
:mod:`deepsad.experiments.figures`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepsad.experiments.figures import (
    FIGURE_FORMATS,
    MethodStyle,
    MissingDependencyError,
    check_formats,
    check_styles,
    method_styles,
    save_figure,
)
from deepsad.experiments.ranking import RankingResult

__all__ = ["CD_FORMATS", "MethodStyle", "draw_cd_diagram", "file_stem", "method_styles", "write_cd_diagram"]

#: the file formats :func:`write_cd_diagram` writes by default (those of every figure)
CD_FORMATS: tuple[str, ...] = FIGURE_FORMATS

# layout, in inches (the axes span the whole figure with data units = inches)
_WIDTH = 7.0
_ROW = 0.24  # vertical distance between two methods on one side
_BAR_GAP = 0.09  # vertical distance between two clique bars
_CHAR = 0.075  # approximate width of one label character at the label font size
_EDGE_GAP = 0.45  # from the axis' ends to the labels: room for a rank number such as "1.00"


def _figure_class() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("drawing figures needs matplotlib: pip install 'deepsad[report]'") from None
    return Figure, FigureCanvasAgg


def draw_cd_diagram(
    result: RankingResult,
    *,
    labels: Mapping[str, str] | None = None,
    styles: Mapping[str, MethodStyle] | None = None,
    title: str | None = None,
) -> Any:
    """Draw the critical-difference diagram of a ranking.

    Parameters
    ----------
    result : RankingResult
        From :func:`deepsad.experiments.ranking.compare_methods`.
    labels : mapping of str to str, optional
        Display names of methods (default: the names themselves).
    styles : mapping of str to MethodStyle, optional
        Colours and markers (default :func:`method_styles` of the ranked methods); must cover
        every method and give no two methods the same colour and marker.
    title : str, optional
        Drawn above the diagram.

    Returns
    -------
    matplotlib.figure.Figure
        On the Agg canvas. Every method's line carries the method's name as its ``gid``.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    Figure, FigureCanvasAgg = _figure_class()
    ranks = result.average_ranks
    methods = [str(m) for m in ranks.index]
    k = len(methods)
    styles = dict(styles) if styles is not None else method_styles(methods)
    check_styles(styles, methods)
    names = {m: (labels or {}).get(m, m) for m in methods}

    n_left = (k + 1) // 2
    left, right = methods[:n_left], methods[n_left:][::-1]  # right side: the worst hangs nearest the axis
    label_width = max(len(name) for name in names.values()) * _CHAR
    margin = max(1.2, label_width + _EDGE_GAP + 0.3)
    width = max(_WIDTH, 2 * margin + 0.45 * (k - 1))
    bars = [group for group in result.cliques if len(group) > 1]

    y = 0.15 + (0.3 if title else 0.0)
    cd_y = y + 0.25
    axis_y = cd_y + 0.45
    first_row = axis_y + 0.28 + _BAR_GAP * len(bars)
    height = first_row + _ROW * (max(len(left), len(right)) - 1) + 0.55

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)  # Agg whatever backend the user's session has selected
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_xlim(0.0, width)
    axes.set_ylim(height, 0.0)
    axes.set_axis_off()

    def x_of(rank: float) -> float:
        return margin + (rank - 1.0) / max(k - 1, 1) * (width - 2 * margin)

    if title:
        axes.text(width / 2, 0.15, title, ha="center", va="top", fontsize="large")

    # the critical difference, anchored at rank 1
    cd_end = min(1.0 + result.cd, float(max(k, 2)))
    axes.plot([x_of(1.0), x_of(cd_end)], [cd_y, cd_y], color="black", linewidth=1.2)
    for x in (x_of(1.0), x_of(cd_end)):
        axes.plot([x, x], [cd_y - 0.05, cd_y + 0.05], color="black", linewidth=1.2)
    axes.text((x_of(1.0) + x_of(cd_end)) / 2, cd_y - 0.07, f"CD = {result.cd:.2f}", ha="center", va="bottom",
              fontsize="small")

    # the rank axis with ticks at every half rank, labelled at the integers
    axes.plot([x_of(1.0), x_of(float(k))], [axis_y, axis_y], color="black", linewidth=1.2)
    for step in range(2 * (k - 1) + 1):
        rank = 1.0 + step / 2
        tall = step % 2 == 0
        axes.plot([x_of(rank)] * 2, [axis_y - (0.1 if tall else 0.05), axis_y], color="black", linewidth=1.0)
        if tall:
            axes.text(x_of(rank), axis_y - 0.12, f"{rank:g}", ha="center", va="bottom", fontsize="small")

    # the cliques: thick bars a little wider than the ranks they join
    for index, group in enumerate(bars):
        bar_y = axis_y + 0.2 + _BAR_GAP * index
        low, high = ranks[list(group)].min(), ranks[list(group)].max()
        axes.plot([x_of(low) - 0.06, x_of(high) + 0.06], [bar_y, bar_y], color="black", linewidth=3.5,
                  solid_capstyle="round")

    for side, hanging in (("left", left), ("right", right)):
        edge = margin - _EDGE_GAP if side == "left" else width - margin + _EDGE_GAP
        for row, method in enumerate(hanging):
            x, row_y = x_of(float(ranks[method])), first_row + _ROW * row
            style = styles[method]
            line = axes.plot([x, x, edge], [axis_y, row_y, row_y], color=style.color, linewidth=1.3)[0]
            line.set_gid(f"line:{method}")
            point = axes.plot([x], [row_y], color=style.color, marker=style.marker, markersize=6,
                              linestyle="none")[0]
            point.set_gid(method)
            outside = -0.08 if side == "left" else 0.08
            axes.text(edge + outside, row_y, names[method], ha="right" if side == "left" else "left",
                      va="center", color=style.color)
            axes.text(edge + (0.04 if side == "left" else -0.04), row_y - 0.03, f"{ranks[method]:.2f}",
                      ha="left" if side == "left" else "right", va="bottom", fontsize="x-small")

    axes.text(width / 2, height - 0.12, _footnote(result), ha="center", va="bottom", fontsize="x-small",
              color="0.3")
    return figure


def _footnote(result: RankingResult) -> str:
    friedman = result.friedman
    text = (f"N = {result.n_datasets} datasets, k = {result.n_methods} methods; Friedman p = {friedman.chi2_p_value:.2g}, "
            f"Iman-Davenport p = {friedman.f_p_value:.2g}; Nemenyi α = {result.alpha:g}")
    if not result.rejects_null:
        text += " (Friedman test not significant)"
    return text


def file_stem(name: str) -> str:
    """``name`` as a portable file stem: characters other than ASCII letters, digits, ``.``,
    ``_`` and ``-`` become ``-`` (scenario names are user-defined and may hold anything)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return stem or "cd"


def write_cd_diagram(
    result: RankingResult,
    out_dir: str | os.PathLike,
    name: str,
    *,
    formats: Sequence[str] = CD_FORMATS,
    labels: Mapping[str, str] | None = None,
    styles: Mapping[str, MethodStyle] | None = None,
    title: str | None = None,
) -> list[Path]:
    """Draw the diagram and write it as ``<out_dir>/<name>.<format>`` for every format.

    Parameters
    ----------
    result : RankingResult
    out_dir : path
        Created if needed.
    name : str
        The file stem; characters unsafe in a file name become ``-``.
    formats : sequence of {"png", "pdf", "svg"}, default all three
    labels, styles, title
        As in :func:`draw_cd_diagram`.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``; as in
        :func:`deepsad.experiments.figures.save_figure`, the same ranking writes the same bytes.

    Raises
    ------
    InvalidInputError
        For an unknown format.
    MissingDependencyError
        If matplotlib is not installed.
    """
    check_formats(formats)  # before the drawing
    figure = draw_cd_diagram(result, labels=labels, styles=styles, title=title)
    return save_figure(figure, out_dir, file_stem(name), formats=formats)
