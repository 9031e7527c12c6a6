"""Paper-style reports of experiment results: tables in Markdown, LaTeX or CSV.

The input is the result store's export: a :class:`pandas.DataFrame` with one row per task (see
:data:`~deepsad.experiments.statistics.REQUIRED_COLUMNS` and :func:`validate_results`). The
numbers come from :mod:`deepsad.experiments.statistics` (summaries and the Wilcoxon test between
the best and second best method of a row, whose public names this module also offers); this
module lays them out:

* :func:`report_frame` -- the tidy table behind every rendering: the summary, the test outcome
  and the paper's own numbers;
* :func:`render_table` / :func:`write_report` -- Tables 3-6 of the paper in Markdown, LaTeX or
  CSV, with the paper's own numbers beside ours (and, on request, the figures of
  :mod:`deepsad.experiments.figures`).

Conventions, and why
--------------------
* **Standard deviation**: the sample standard deviation by default (``ddof=1``; see
  :mod:`deepsad.experiments.statistics` for why).
* **Best and significance**: the best mean of a row is set in bold, as in the paper. The paper's
  captions (Figures 2-4, Table 2) say: *A "⋆" indicates a statistically significant (alpha = 0.05)
  difference between the 1st and 2nd best method* -- the marker sits on the best cell and means
  *significant* (p < alpha), so we do exactly that. The test is scipy's default two-sided
  Wilcoxon signed-rank test on the AUCs of the setups both methods completed; with no such pair
  the p-value is NaN and no marker is set.
* **Paper vs ours**: each table row of ours (``ours``) is followed by the paper's row for the same
  setting (``paper``), same columns, so that the two lines can be read and diffed one above the
  other. The paper rows bold their own best among the shown columns and carry no marker (the
  paper's appendix tables report no tests).
* Failed tasks count in ``n_failed`` and are left out of the means; tables list them in a note.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pandas as pd

from deepsad.errors import InvalidInputError
from deepsad.experiments.paper_tables import (
    PARAMETER_MATH,
    PARAMETER_TEXT,
    SINGLE_SETTING_EXPERIMENTS,
    paper_dataset_name,
    paper_method_name,
    paper_results,
)
from deepsad.experiments.statistics import (
    CELL_KEYS,
    DATASET_ORDER,
    DEFAULT_ALPHA,
    EXPERIMENT_ORDER,
    REQUIRED_COLUMNS,
    ROW_KEYS,
    check_alpha,
    compare_best,
    compare_validated,
    is_nan,
    ordered_experiments,
    ordered_methods,
    paired_aucs,
    paper_order,
    summarize,
    summarize_validated,
    validate_results,
    wilcoxon_test,
)

__all__ = [
    # rendering
    "FORMATS",
    "SIGNIFICANCE_MARKER",
    "ReportOutput",
    "render_table",
    "report_frame",
    "write_report",
    # labels, from paper_tables
    "PARAMETER_MATH",
    "PARAMETER_TEXT",
    # statistics, from deepsad.experiments.statistics
    "CELL_KEYS",
    "DATASET_ORDER",
    "DEFAULT_ALPHA",
    "EXPERIMENT_ORDER",
    "REQUIRED_COLUMNS",
    "ROW_KEYS",
    "compare_best",
    "ordered_experiments",
    "ordered_methods",
    "paired_aucs",
    "summarize",
    "validate_results",
    "wilcoxon_test",
]

logger = logging.getLogger(__name__)

#: output formats of :func:`render_table` and :func:`write_report`
FORMATS: tuple[str, ...] = ("md", "latex", "csv")

#: the marker the paper sets on a best cell that differs significantly from the second best
SIGNIFICANCE_MARKER = "⋆"

#: experiment -> (Markdown title, LaTeX caption start)
_TITLES = {
    "table3": ("Table 3: scenario (i), ratio of labeled anomalies γl",
               r"Scenario (i): ratio of labeled anomalies $\gamma_l$"),
    "table4": ("Table 4: scenario (ii), pollution ratio γp of the unlabeled data",
               r"Scenario (ii): pollution ratio $\gamma_p$ of the unlabeled data"),
    "table5": ("Table 5: scenario (iii), number kl of known anomaly classes",
               r"Scenario (iii): number $k_l$ of known anomaly classes"),
    "table6": ("Table 6: classic AD benchmarks (γl = 0.01, γp = 0)",
               r"Classic AD benchmarks ($\gamma_l = 0.01$, $\gamma_p = 0$)"),
    "eta": ("Sensitivity to η (Figure 5)", r"Sensitivity to $\eta$"),
    "rep_dim": ("Sensitivity to the representation dimension d (Figure 6)",
                r"Sensitivity to the representation dimension $d$"),
}


# --------------------------------------------------------------------------- the tidy report frame


def report_frame(
    df: pd.DataFrame, *, with_paper: bool = True, alpha: float = DEFAULT_ALPHA, ddof: int = 1
) -> pd.DataFrame:
    """The tidy summary behind every table: :func:`summarize` plus test outcome and paper numbers.

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`validate_results`.
    with_paper : bool, default True
        Join the paper's ``paper_auc_mean`` and ``paper_auc_std`` (percent; NaN where the
        paper has no such cell).
    alpha : float, default 0.05
        Significance level of the Wilcoxon test.
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`summarize` and ``is_best``, ``is_second``, ``p_value`` and
        ``significant`` (the row's test between best and second best, repeated on each cell
        of the row), then the paper columns.
    """
    check_alpha(alpha)
    data = validate_results(df)
    return _report_frame(data, with_paper=with_paper, alpha=alpha, ddof=ddof)


def _report_frame(data: pd.DataFrame, *, with_paper: bool, alpha: float, ddof: int) -> pd.DataFrame:
    summary = summarize_validated(data, ddof=ddof)
    tests = compare_validated(data, summary, alpha=alpha)
    frame = _merge_rows(summary, tests[[*ROW_KEYS, "best_method", "second_method", "p_value", "significant"]])
    frame["is_best"] = frame["method"] == frame["best_method"]
    frame["is_second"] = frame["method"] == frame["second_method"]
    frame = frame.drop(columns=["best_method", "second_method"])
    ordered = [*CELL_KEYS, "auc_mean", "auc_std", "n_done", "n_failed", "is_best", "is_second",
               "p_value", "significant", "ap_mean", "fit_seconds_mean", "score_seconds_mean"]
    frame = frame[ordered]
    if with_paper:
        frame = _join_paper(frame)
    return paper_order(frame)


def _join_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the keys that match our cells to the paper's: value rounded, nothing for Table 6."""
    single = frame["experiment"].isin(SINGLE_SETTING_EXPERIMENTS)
    # float values from the store and the CSV may differ in the last bits; NaN never matches
    # in a merge, hence the sentinel
    value = frame["value"].round(9).fillna(-1.0)
    return frame.assign(_parameter=frame["parameter"].where(~single, ""), _value=value.where(~single, 0.0))


def _merge_rows(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    left_keys = left.assign(_value=left["value"].fillna(-1.0))
    right_keys = right.assign(_value=right["value"].fillna(-1.0)).drop(columns=["value"])
    on = ["experiment", "dataset", "parameter", "_value"]
    return left_keys.merge(right_keys, on=on, how="left").drop(columns=["_value"])


#: The columns that match a row of ours to the paper's (see :func:`_join_keys`).
_PAPER_ROW_KEYS = ["experiment", "dataset", "_parameter", "_value"]


def _paper_cells_keyed() -> pd.DataFrame:
    """The paper's numbers with the join keys: one row per (table row, method)."""
    paper = paper_results().rename(columns={"auc_mean": "paper_auc_mean", "auc_std": "paper_auc_std"})
    return _join_keys(paper)[[*_PAPER_ROW_KEYS, "method", "paper_auc_mean", "paper_auc_std"]]


def _join_paper(frame: pd.DataFrame) -> pd.DataFrame:
    merged = _join_keys(frame).merge(_paper_cells_keyed(), on=[*_PAPER_ROW_KEYS, "method"], how="left")
    return merged.drop(columns=["_parameter", "_value"])


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Style:
    """How one output format writes the pieces of a cell."""

    bold: Callable[[str], str]
    marker: str
    plus_minus: str
    escape: Callable[[str], str]


def _escape_md(text: str) -> str:
    return text.replace("|", r"\|")


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                   "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _escape_latex(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(char, char) for char in text)


_STYLES = {
    "md": _Style(bold=lambda text: f"**{text}**", marker=SIGNIFICANCE_MARKER, plus_minus="±", escape=_escape_md),
    "latex": _Style(bold=lambda text: rf"\textbf{{{text}}}", marker=r"$^\star$", plus_minus=r"$\pm$",
                    escape=_escape_latex),
}


def _format_value(value: float) -> str:
    if is_nan(value):
        return ""
    return f"{value:g}"


def _format_auc(mean: float, std: float, style: _Style) -> str:
    if is_nan(mean):
        return ""
    if is_nan(std):  # one completed task and ddof=1: no spread to show
        return f"{mean:.1f}"
    return f"{mean:.1f}{style.plus_minus}{std:.1f}"


def _checked_results(df: pd.DataFrame, fmt: str, alpha: float) -> pd.DataFrame:
    """``df`` validated, after the format and alpha: the cheap checks refuse a typo first."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    check_alpha(alpha)
    return validate_results(df)


def render_table(
    df: pd.DataFrame,
    experiment: str,
    fmt: str = "md",
    with_paper: bool = True,
    *,
    alpha: float = DEFAULT_ALPHA,
    ddof: int = 1,
) -> str:
    """One experiment as a paper-style table.

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`validate_results`; rows of other experiments are ignored.
    experiment : str
        The experiment to render, e.g. ``"table3"``.
    fmt : {"md", "latex", "csv"}, default "md"
        Markdown (best ``**bold**``), LaTeX (``\\textbf{}``, a ``table`` environment without
        extra packages) or CSV (the tidy :func:`report_frame` of this experiment).
    with_paper : bool, default True
        Follow every row of ours with the paper's row (md, latex), or join the paper's
        columns (csv).
    alpha : float, default 0.05
        Significance level of the Wilcoxon test between best and second best.
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation (1: sample std).

    Returns
    -------
    str
        The table, ending in a newline. Rows are (dataset, parameter value), columns the
        methods present in the paper's order, cells ``"96.0±2.9"`` (mean ± std AUC in
        percent); the best mean of a row is bold and carries ``⋆`` when the Wilcoxon test
        against the second best gives p < alpha.

    Raises
    ------
    InvalidInputError
        For an unknown format, invalid results, or an experiment absent from ``df``.
    """
    data = _checked_results(df, fmt, alpha)
    return _render_experiment(data, experiment, fmt, with_paper=with_paper, alpha=alpha, ddof=ddof)


def _render_experiment(data: pd.DataFrame, experiment: str, fmt: str, *, with_paper: bool, alpha: float,
                       ddof: int) -> str:
    subset = data[data["experiment"] == experiment]
    if subset.empty:
        present = ", ".join(ordered_experiments(data["experiment"].unique()))
        raise InvalidInputError(f"no results for experiment {experiment!r}; the results hold: {present}")
    frame = _report_frame(subset, with_paper=with_paper, alpha=alpha, ddof=ddof)
    if fmt == "csv":
        return frame.to_csv(index=False, lineterminator="\n")
    rows = _table_rows(frame, _STYLES[fmt], with_paper=with_paper, fmt=fmt)
    labels = PARAMETER_TEXT if fmt == "md" else PARAMETER_MATH
    notes = _failure_notes(frame, _STYLES[fmt], labels)
    if fmt == "md":
        return _markdown(experiment, rows, notes, alpha=alpha, ddof=ddof, with_paper=with_paper)
    return _latex(experiment, rows, notes, alpha=alpha, ddof=ddof, with_paper=with_paper)


@dataclass(frozen=True)
class _Rows:
    header: list[str]
    body: list[list[str]]
    n_label_columns: int


def _table_rows(frame: pd.DataFrame, style: _Style, *, with_paper: bool, fmt: str) -> _Rows:
    methods = ordered_methods(frame["method"].unique())
    parameters = [p for p in dict.fromkeys(frame["parameter"]) if p]
    labels = PARAMETER_TEXT if fmt == "md" else PARAMETER_MATH
    header = ["Data"]
    if len(parameters) == 1:
        header.append(labels.get(parameters[0], style.escape(parameters[0])))
    elif parameters:  # a hand-made table mixing parameters: name them in the cells
        header.append("setting")
    if with_paper:
        header.append("source")
    header += [style.escape(paper_method_name(m)) for m in methods]

    paper_rows = _paper_by_row(frame) if with_paper else {}
    body = []
    for row, cells in frame.groupby(list(ROW_KEYS), dropna=False, sort=False):
        _, dataset, parameter, value = row
        label = [style.escape(paper_dataset_name(dataset))]
        if len(parameters) == 1:
            label.append(_format_value(value))
        elif parameters:
            name = labels.get(parameter, style.escape(parameter))
            label.append(f"{name}={_format_value(value)}" if parameter else "")
        by_method = cells.set_index("method")
        ours = [_our_cell(by_method, m, style) for m in methods]
        body.append(label + (["ours"] if with_paper else []) + ours)
        if with_paper:
            paper = _paper_cells(paper_rows.get(_row_key(*row)), methods, style)
            if paper is not None:
                body.append(label + ["paper"] + paper)
    n_labels = len(header) - len(methods)
    return _Rows(header=header, body=body, n_label_columns=n_labels)


def _our_cell(by_method: pd.DataFrame, method: str, style: _Style) -> str:
    if method not in by_method.index:
        return ""
    cell = by_method.loc[method]
    if cell["n_done"] == 0:
        return "failed"
    text = _format_auc(cell["auc_mean"], cell["auc_std"], style)
    if cell["is_best"]:
        text = style.bold(text)
        if cell["significant"]:
            text += style.marker
    return text


def _row_key(experiment: str, dataset: str, parameter: str, value: float) -> tuple[str, str, str, float]:
    """A hashable table row key: NaN (no setting) never equals itself, hence the sentinel."""
    return experiment, dataset, parameter, -1.0 if is_nan(value) else round(float(value), 9)


def _paper_by_row(frame: pd.DataFrame) -> dict[tuple[str, str, str, float], pd.DataFrame]:
    """The paper's numbers for each row of ``frame``, for every method it reports.

    Looked up per row rather than taken from the joined frame, so a method shown in the
    table keeps its paper numbers in a row where we have no result of ours for it.
    """
    rows = _join_keys(frame[list(ROW_KEYS)].drop_duplicates())
    merged = rows.merge(_paper_cells_keyed(), on=_PAPER_ROW_KEYS, how="inner")
    return {
        _row_key(*row): cells.set_index("method")
        for row, cells in merged.groupby(list(ROW_KEYS), dropna=False, sort=False)
    }


def _paper_cells(paper: pd.DataFrame | None, methods: list[str], style: _Style) -> list[str] | None:
    if paper is None:
        return None
    means = paper["paper_auc_mean"].reindex(methods)
    if means.isna().all():
        return None
    stds = paper["paper_auc_std"].reindex(methods)
    # the paper's numbers are rounded to .1: bold every method that reaches the best of them
    best = means.max()
    cells = []
    for method in methods:
        text = _format_auc(means[method], stds[method], style)
        cells.append(style.bold(text) if text and means[method] == best else text)
    return cells


def _failure_notes(frame: pd.DataFrame, style: _Style, labels: dict[str, str]) -> list[str]:
    notes = []
    for r in frame[frame["n_failed"] > 0].itertuples(index=False):
        name = labels.get(r.parameter, style.escape(r.parameter))
        setting = f" {name}={_format_value(r.value)}" if r.parameter else ""
        notes.append(
            f"{style.escape(paper_dataset_name(r.dataset))}{setting} {style.escape(paper_method_name(r.method))}: "
            f"{int(r.n_failed)} of {int(r.n_done + r.n_failed)} failed"
        )
    return notes


def _legend(*, alpha: float, ddof: int, with_paper: bool, latex: bool) -> str:
    plus_minus, marker, alpha_text = ("$\\pm$", "$^\\star$", f"$\\alpha = {alpha:g}$") if latex else (
        "±", SIGNIFICANCE_MARKER, f"α = {alpha:g}")
    std = {0: "population", 1: "sample"}.get(ddof, f"ddof={ddof}")
    percent = r"\%" if latex else "%"  # a bare % starts a LaTeX comment
    text = (
        f"Mean {plus_minus} {std} std of the AUC ({percent}) over the completed tasks of a cell. "
        "Bold: best mean of a row; "
        f"{marker}: the best differs significantly from the second best (two-sided Wilcoxon signed-rank test "
        f"paired on the setup, {alpha_text})."
    )
    if with_paper:
        text += " Rows labelled paper: Ruff et al. (ICLR 2020), Appendix F, best of the shown columns in bold."
    return text


def _markdown(experiment: str, rows: _Rows, notes: list[str], *, alpha: float, ddof: int, with_paper: bool) -> str:
    title = _TITLES.get(experiment, (f"Experiment {experiment}", ""))[0]
    lines = [f"**{_escape_md(title)}.** {_legend(alpha=alpha, ddof=ddof, with_paper=with_paper, latex=False)}", ""]
    align = ["---"] * rows.n_label_columns + ["---:"] * (len(rows.header) - rows.n_label_columns)
    lines.append("| " + " | ".join(rows.header) + " |")
    lines.append("| " + " | ".join(align) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows.body]
    if notes:
        lines += ["", "Failed tasks (left out of the means): " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def _latex(experiment: str, rows: _Rows, notes: list[str], *, alpha: float, ddof: int, with_paper: bool) -> str:
    title = _TITLES.get(experiment, ("", f"Experiment {_escape_latex(experiment)}"))[1]
    caption = f"{title}. {_legend(alpha=alpha, ddof=ddof, with_paper=with_paper, latex=True)}"
    if notes:
        caption += " Failed tasks (left out of the means): " + "; ".join(notes) + "."
    spec = "l" * rows.n_label_columns + "r" * (len(rows.header) - rows.n_label_columns)
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:deepsad-{re.sub(r'[^A-Za-z0-9:_-]', '-', experiment)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\hline",
        " & ".join(rows.header) + r" \\",
        r"\hline",
        *(" & ".join(row) + r" \\" for row in rows.body),
        r"\hline",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the whole report


@dataclass(frozen=True)
class ReportOutput:
    """What :func:`write_report` produced.

    Attributes
    ----------
    text : str
        The report as written.
    path : pathlib.Path or None
        The file written, ``None`` when the report went to a stream.
    figures : tuple of pathlib.Path
        The figure files written, each figure's PNG, PDF and SVG (empty without ``figures_dir``).
    """

    text: str
    path: Path | None
    figures: tuple[Path, ...]


def write_report(
    df: pd.DataFrame,
    fmt: str = "md",
    out: str | os.PathLike | TextIO | None = None,
    figures_dir: str | os.PathLike | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    ddof: int = 1,
    with_paper: bool = True,
) -> ReportOutput:
    """Write the tables of every experiment in ``df``, and optionally their figures.

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`validate_results`.
    fmt : {"md", "latex", "csv"}, default "md"
        Output format; ``csv`` writes one tidy table covering all experiments.
    out : path, text stream, "-" or None, default None
        Where to write: a file path (parent folders are created), an open text stream, or
        standard output for ``None`` / ``"-"``.
    figures_dir : path, optional
        Also draw the figures (see :mod:`deepsad.experiments.figures`) into this folder;
        needs matplotlib (``pip install 'deepsad[report]'``). Every figure is written as PNG,
        PDF and SVG; the Markdown report embeds the PNG and links the PDF and SVG beside it.
    alpha, ddof, with_paper
        As in :func:`render_table`; ``with_paper`` also draws the paper's means dashed in
        the parameter curves.

    Returns
    -------
    ReportOutput
        The text, the file written and the figures.

    Raises
    ------
    InvalidInputError
        For an unknown format or invalid results.
    """
    data = _checked_results(df, fmt, alpha)
    experiments = ordered_experiments(data["experiment"].unique())
    path = None if out is None or out == "-" or hasattr(out, "write") else Path(out)

    figures: dict[str, list[Path]] = {}
    if figures_dir is not None:
        from deepsad.experiments import figures as figure_module  # matplotlib only when asked for

        for experiment in experiments:
            figures[experiment] = figure_module.write_figures(
                data, figures_dir, experiments=[experiment], alpha=alpha, ddof=ddof, with_paper=with_paper
            )

    if fmt == "csv":
        tidy = _report_frame(data, with_paper=with_paper, alpha=alpha, ddof=ddof)
        text = tidy.to_csv(index=False, lineterminator="\n")
    else:
        sections = []
        for experiment in experiments:
            table = _render_experiment(data, experiment, fmt, with_paper=with_paper, alpha=alpha, ddof=ddof)
            if fmt == "md":
                title = _TITLES.get(experiment, (f"Experiment {experiment}",))[0]
                links = _figure_links(figures.get(experiment, []), path)
                table = f"## {title}\n\n{table}" + ("\n" + "\n".join(links) + "\n" if links else "")
            sections.append(table)
        header = "# Experiment report\n\n" if fmt == "md" else ""
        text = header + "\n".join(sections)

    _emit(text, out, path)
    written = tuple(p for paths in figures.values() for p in paths)
    return ReportOutput(text=text, path=path, figures=written)


def _figure_links(paths: Sequence[Path], report: Path | None) -> list[str]:
    """One Markdown line per figure: its PNG embedded, its other formats linked beside it."""
    by_stem: dict[Path, list[Path]] = {}
    for figure in paths:
        by_stem.setdefault(figure.with_suffix(""), []).append(figure)
    lines = []
    for stem, files in by_stem.items():
        shown = next((f for f in files if f.suffix == ".png"), files[0])
        others = ", ".join(f"[{f.suffix[1:].upper()}]({_link(f, report)})" for f in files if f != shown)
        lines.append(f"![{stem.name}]({_link(shown, report)})" + (f" ({others})" if others else ""))
    return lines


def _link(figure: Path, report: Path | None) -> str:
    """A figure's path as the Markdown report should link it: relative to the report file."""
    if report is None:
        return figure.as_posix()
    return Path(os.path.relpath(figure.resolve(), report.resolve().parent)).as_posix()


def _emit(text: str, out: str | os.PathLike | TextIO | None, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        logger.info("wrote report %s", path)
        return
    stream = sys.stdout if out is None or out == "-" else out
    stream.write(text)
    if hasattr(stream, "flush"):
        stream.flush()
