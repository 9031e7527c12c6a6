"""Paper-style reports of experiment results: summaries, significance tests and tables.

The input is the result store's export: a :class:`pandas.DataFrame` with one row per task (see
:data:`REQUIRED_COLUMNS` and :func:`validate_results`). From it this module computes

* :func:`summarize` -- mean and standard deviation of the AUC (in percent) per
  (experiment, dataset, parameter, value, method), with the numbers of completed and failed tasks;
* :func:`compare_best` -- the best and second best method of every table row by mean AUC and a
  two-sided Wilcoxon signed-rank test between them, paired on ``setup_key``;
* :func:`render_table` / :func:`write_report` -- Tables 3-6 of the paper in Markdown, LaTeX or
  CSV, with the paper's own numbers beside ours.

Conventions, and why
--------------------
* **Standard deviation**: the paper reports "avg. AUC with st. dev. computed over 90 experiments"
  and does not say which estimator; we use the *sample* standard deviation (``ddof=1``, pandas'
  default) over the completed tasks of a cell. ``ddof=0`` is available everywhere for the
  population version; with 90-100 experiments per cell the two differ by < 0.6 %, with the 10
  seeds of Table 6 by about 5 %.
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
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from deepsad.errors import InvalidInputError, InvalidInputTypeError
from deepsad.experiments.paper_tables import (
    PAPER_DATASETS,
    SINGLE_SETTING_EXPERIMENTS,
    paper_dataset_name,
    paper_method_name,
    paper_results,
)
from deepsad.methods import method_names

logger = logging.getLogger(__name__)

#: the columns of the result store's export that reports rely on
REQUIRED_COLUMNS: tuple[str, ...] = (
    "experiment",
    "dataset",
    "parameter",
    "value",
    "method",
    "setup_key",
    "seed",
    "status",
    "auc",
    "average_precision",
    "fit_seconds",
    "score_seconds",
)

#: output formats of :func:`render_table` and :func:`write_report`
FORMATS: tuple[str, ...] = ("md", "latex", "csv")

#: significance level of the Wilcoxon test between best and second best, as in the paper
DEFAULT_ALPHA = 0.05

#: the marker the paper sets on a best cell that differs significantly from the second best
SIGNIFICANCE_MARKER = "⋆"

#: keys of one table row, and of one table cell (a row and a method)
ROW_KEYS: tuple[str, ...] = ("experiment", "dataset", "parameter", "value")
CELL_KEYS: tuple[str, ...] = (*ROW_KEYS, "method")

#: the paper's order of experiments and datasets; unknown names follow alphabetically
EXPERIMENT_ORDER: tuple[str, ...] = ("table3", "table4", "table5", "table6", "eta", "rep_dim")
DATASET_ORDER: tuple[str, ...] = tuple(PAPER_DATASETS.values())

#: labels of the varied parameters: plain text for Markdown, math for LaTeX and matplotlib
PARAMETER_TEXT = {"gamma_l": "γl", "gamma_p": "γp", "k_l": "kl", "eta": "η", "rep_dim": "d"}
PARAMETER_MATH = {
    "gamma_l": r"$\gamma_l$",
    "gamma_p": r"$\gamma_p$",
    "k_l": r"$k_l$",
    "eta": r"$\eta$",
    "rep_dim": r"$d$",
}

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


# --------------------------------------------------------------------------- validation


def validate_results(df: pd.DataFrame) -> pd.DataFrame:
    """Check a results table against the result store's contract and return a clean copy.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per task with at least the columns of :data:`REQUIRED_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        A copy with normalised types: names as ``str`` (``parameter`` NaN -> ``""``), ``value``
        and ``auc`` as ``float``. Rows whose status is neither ``"done"`` nor ``"failed"``
        (e.g. tasks still pending) are dropped with a warning.

    Raises
    ------
    InvalidInputError
        If ``df`` is not a DataFrame, lacks columns (named in the message), holds no rows,
        has non-numeric values or AUCs, a completed task without an AUC, or an AUC outside
        [0, 1].
    """
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputTypeError(f"results must be a pandas DataFrame, got {type(df).__name__}")
    missing = [column for column in REQUIRED_COLUMNS if column not in df.columns]
    if missing:
        raise InvalidInputError(
            f"results lack the column(s) {', '.join(missing)}; "
            f"a results table needs {', '.join(REQUIRED_COLUMNS)}"
        )
    if df.empty:
        raise InvalidInputError("no results to report: the results table has no rows")

    names = ("experiment", "dataset", "method", "setup_key", "status")
    blank = [column for column in names if df[column].isna().any()]
    if blank:
        raise InvalidInputError(f"results have missing values in column(s) {', '.join(blank)}")
    data = df.copy()
    for column in names:
        data[column] = data[column].astype(str)
    # the store writes "" for experiments that vary nothing (Table 6); NaN means the same
    data["parameter"] = data["parameter"].fillna("").astype(str)
    for column in ("value", "auc"):
        data[column] = _numeric(data[column], column)

    known = data["status"].isin(("done", "failed"))
    if not known.all():
        others = sorted(set(data.loc[~known, "status"]))
        logger.warning("ignoring %d task(s) with status %s (neither done nor failed)", int((~known).sum()), others)
        data = data[known]
        if data.empty:
            raise InvalidInputError("no results to report: no task is done or failed")

    done = data["status"] == "done"
    no_auc = done & data["auc"].isna()
    if no_auc.any():
        raise InvalidInputError(
            f"{int(no_auc.sum())} done task(s) have no AUC (NaN), e.g. {_describe(data[no_auc].iloc[0])}; "
            "a task without an AUC must have status 'failed'"
        )
    outside = done & ((data["auc"] < 0) | (data["auc"] > 1))
    if outside.any():
        raise InvalidInputError(
            f"{int(outside.sum())} AUC value(s) outside [0, 1], e.g. {data.loc[outside, 'auc'].iloc[0]!r} "
            f"for {_describe(data[outside].iloc[0])}"
        )
    return data.reset_index(drop=True)


def _numeric(column: pd.Series, name: str) -> pd.Series:
    if column.dtype == object:  # CSV round trips write a missing number as ""
        column = column.mask(column.astype(str).str.strip() == "")
    converted = pd.to_numeric(column, errors="coerce")
    bad = converted.isna() & column.notna()
    if bad.any():
        raise InvalidInputError(f"column {name!r} must be numeric, got {column[bad].iloc[0]!r}")
    return converted.astype(float)


def _describe(row: pd.Series) -> str:
    return f"{row['experiment']}/{row['dataset']}/{row['method']}/{row['setup_key']}"


# --------------------------------------------------------------------------- ordering


def _rank(values: pd.Series, canonical: Sequence[str]) -> pd.Series:
    position = {name: index for index, name in enumerate(canonical)}
    return values.map(lambda name: position.get(name, len(position)))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort rows in the paper's order: experiment, dataset, setting, method."""
    keys = frame.assign(
        _experiment=_rank(frame["experiment"], EXPERIMENT_ORDER),
        _dataset=_rank(frame["dataset"], DATASET_ORDER),
    )
    by = ["_experiment", "experiment", "_dataset", "dataset", "parameter", "value"]
    if "method" in frame.columns:
        keys["_method"] = _rank(frame["method"], method_names())
        by += ["_method", "method"]
    keys = keys.sort_values(by, kind="stable", na_position="first")
    return frame.loc[keys.index].reset_index(drop=True)


def ordered_methods(methods: Iterable[str]) -> list[str]:
    """Method names in the paper's column order; names the paper lacks follow alphabetically."""
    canonical = method_names()
    unique = set(methods)
    return [m for m in canonical if m in unique] + sorted(unique - set(canonical))


def ordered_experiments(experiments: Iterable[str]) -> list[str]:
    """Experiment names in the paper's order; other names follow alphabetically."""
    unique = set(experiments)
    return [e for e in EXPERIMENT_ORDER if e in unique] + sorted(unique - set(EXPERIMENT_ORDER))


# --------------------------------------------------------------------------- statistics


def summarize(df: pd.DataFrame, *, ddof: int = 1) -> pd.DataFrame:
    """Mean and standard deviation of the AUC per table cell, in percent.

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`validate_results`.
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation: 1 = sample std (our default, the
        paper does not say), 0 = population std.

    Returns
    -------
    pandas.DataFrame
        One row per (experiment, dataset, parameter, value, method) in the paper's order with
        ``auc_mean``, ``auc_std`` (percent, over completed tasks; NaN when none completed, std
        NaN for a single task with ``ddof=1``), ``n_done``, ``n_failed``, and the means of
        ``average_precision`` (percent), ``fit_seconds`` and ``score_seconds`` over completed tasks.
    """
    return _summarize(validate_results(df), ddof=ddof)


def _summarize(data: pd.DataFrame, *, ddof: int) -> pd.DataFrame:
    done = data["status"] == "done"
    # failed tasks count but their (NaN or stale) metrics must not enter any mean
    work = data[list(CELL_KEYS)].assign(
        auc=data["auc"].where(done) * 100.0,
        ap=pd.to_numeric(data["average_precision"], errors="coerce").where(done) * 100.0,
        fit=pd.to_numeric(data["fit_seconds"], errors="coerce").where(done),
        score=pd.to_numeric(data["score_seconds"], errors="coerce").where(done),
        done=done.astype(int),
        failed=(~done).astype(int),
    )
    grouped = work.groupby(list(CELL_KEYS), dropna=False, sort=False)
    summary = pd.DataFrame(
        {
            "auc_mean": grouped["auc"].mean(),
            "auc_std": grouped["auc"].std(ddof=ddof),
            "n_done": grouped["done"].sum(),
            "n_failed": grouped["failed"].sum(),
            "ap_mean": grouped["ap"].mean(),
            "fit_seconds_mean": grouped["fit"].mean(),
            "score_seconds_mean": grouped["score"].mean(),
        }
    ).reset_index()
    return _sorted(summary)


def _row_mask(data: pd.DataFrame, row: Sequence) -> pd.Series:
    """Rows of ``data`` that belong to one table row; NaN values match NaN."""
    experiment, dataset, parameter, value = row
    mask = (data["experiment"] == experiment) & (data["dataset"] == dataset) & (data["parameter"] == parameter)
    same_value = data["value"].isna() if _isnan(value) else np.isclose(data["value"], value, rtol=0, atol=1e-12)
    return mask & same_value


def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def paired_aucs(
    df: pd.DataFrame,
    *,
    experiment: str,
    dataset: str,
    parameter: str,
    value: float,
    methods: tuple[str, str],
) -> pd.DataFrame:
    """AUCs of two methods on the setups both completed, for one table row.

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`validate_results`.
    experiment, dataset, parameter, value
        The table row.
    methods : tuple of str
        The two methods to pair.

    Returns
    -------
    pandas.DataFrame
        Index ``setup_key`` (sorted), one column of AUCs (in [0, 1]) per method. Setups that
        either method did not complete are left out; repeated setups are averaged (with a warning).
    """
    return _paired(validate_results(df), (experiment, dataset, parameter, value), methods)


def _paired(data: pd.DataFrame, row: Sequence, methods: tuple[str, str]) -> pd.DataFrame:
    first, second = methods
    rows = data[_row_mask(data, row) & (data["status"] == "done") & data["method"].isin(methods)]
    if rows.duplicated(["method", "setup_key"]).any():
        logger.warning("%s: repeated setup keys for %s; their AUCs are averaged", "/".join(map(str, row)), methods)
    table = rows.pivot_table(index="setup_key", columns="method", values="auc", aggfunc="mean")
    table = table.reindex(columns=[first, second]).dropna().sort_index()
    table.columns.name = None
    return table


def wilcoxon_test(best: Sequence[float], second: Sequence[float]) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of paired AUCs: ``(statistic, p_value)``.

    Exactly :func:`scipy.stats.wilcoxon` with its defaults; ``(nan, nan)`` for no pairs or where
    scipy refuses the data (a single zero difference). When all of several differences are zero
    scipy answers p = 1 (no evidence of a difference), which we keep.
    """
    best_values = np.asarray(best, dtype=float)
    second_values = np.asarray(second, dtype=float)
    if best_values.size == 0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        # scipy warns on degenerate inputs (all differences zero, tiny n) but still answers
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            result = wilcoxon(best_values, second_values)
        except ValueError as error:  # e.g. a single pair with zero difference: nothing to rank
            logger.debug("Wilcoxon test not possible on %d pair(s): %s", best_values.size, error)
            return math.nan, math.nan
    return float(result.statistic), float(result.pvalue)


def compare_best(df: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA, ddof: int = 1) -> pd.DataFrame:
    """Best and second best method of every table row, and the Wilcoxon test between them.

    Parameters
    ----------
    df : pandas.DataFrame
        Results as described in :func:`validate_results`.
    alpha : float, default 0.05
        Significance level.
    ddof : int, default 1
        Passed to :func:`summarize` (the ranking uses only the means).

    Returns
    -------
    pandas.DataFrame
        One row per (experiment, dataset, parameter, value) with ``best_method``,
        ``best_auc_mean``, ``second_method``, ``second_auc_mean`` (percent; ``None``/NaN with
        fewer than two methods that completed a task), ``n_pairs`` (setups both completed),
        ``statistic``, ``p_value`` and ``significant`` (``p_value < alpha``). Ties in the mean
        go to the method earlier in the paper's column order.
    """
    _check_alpha(alpha)
    data = validate_results(df)
    return _compare(data, _summarize(data, ddof=ddof), alpha=alpha)


def _check_alpha(alpha: float) -> None:
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be a number in (0, 1), got {alpha!r}")


def _compare(data: pd.DataFrame, summary: pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    records = []
    for row, cells in summary.groupby(list(ROW_KEYS), dropna=False, sort=False):
        ranked = cells[cells["n_done"] > 0].assign(_order=_rank(cells["method"], method_names()))
        ranked = ranked.sort_values(["auc_mean", "_order", "method"], ascending=[False, True, True], kind="stable")
        best = ranked.iloc[0] if len(ranked) > 0 else None
        second = ranked.iloc[1] if len(ranked) > 1 else None
        n_pairs, statistic, p_value = 0, math.nan, math.nan
        if best is not None and second is not None:
            pairs = _paired(data, row, (best["method"], second["method"]))
            n_pairs = len(pairs)
            statistic, p_value = wilcoxon_test(pairs.iloc[:, 0], pairs.iloc[:, 1])
        records.append(
            dict(
                zip(ROW_KEYS, row),
                best_method=None if best is None else best["method"],
                best_auc_mean=math.nan if best is None else best["auc_mean"],
                second_method=None if second is None else second["method"],
                second_auc_mean=math.nan if second is None else second["auc_mean"],
                n_pairs=n_pairs,
                statistic=statistic,
                p_value=p_value,
                # NaN (no test possible) compares False: no marker
                significant=bool(p_value < alpha),
            )
        )
    columns = [*ROW_KEYS, "best_method", "best_auc_mean", "second_method", "second_auc_mean",
               "n_pairs", "statistic", "p_value", "significant"]
    return _sorted(pd.DataFrame.from_records(records, columns=columns))


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
    _check_alpha(alpha)
    data = validate_results(df)
    return _report_frame(data, with_paper=with_paper, alpha=alpha, ddof=ddof)


def _report_frame(data: pd.DataFrame, *, with_paper: bool, alpha: float, ddof: int) -> pd.DataFrame:
    summary = _summarize(data, ddof=ddof)
    tests = _compare(data, summary, alpha=alpha)
    frame = _merge_rows(summary, tests[[*ROW_KEYS, "best_method", "second_method", "p_value", "significant"]])
    frame["is_best"] = frame["method"] == frame["best_method"]
    frame["is_second"] = frame["method"] == frame["second_method"]
    frame = frame.drop(columns=["best_method", "second_method"])
    ordered = [*CELL_KEYS, "auc_mean", "auc_std", "n_done", "n_failed", "is_best", "is_second",
               "p_value", "significant", "ap_mean", "fit_seconds_mean", "score_seconds_mean"]
    frame = frame[ordered]
    if with_paper:
        frame = _join_paper(frame)
    return _sorted(frame)


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
    if _isnan(value):
        return ""
    return f"{value:g}"


def _format_auc(mean: float, std: float, style: _Style) -> str:
    if _isnan(mean):
        return ""
    if _isnan(std):  # one completed task and ddof=1: no spread to show
        return f"{mean:.1f}"
    return f"{mean:.1f}{style.plus_minus}{std:.1f}"


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


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
    _check_format(fmt)
    _check_alpha(alpha)
    data = validate_results(df)
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
    return experiment, dataset, parameter, -1.0 if _isnan(value) else round(float(value), 9)


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
    with_paper: bool = True,
    alpha: float = DEFAULT_ALPHA,
    ddof: int = 1,
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
    with_paper, alpha, ddof
        As in :func:`render_table`.

    Returns
    -------
    ReportOutput
        The text, the file written and the figures.

    Raises
    ------
    InvalidInputError
        For an unknown format or invalid results.
    """
    _check_format(fmt)
    _check_alpha(alpha)
    data = validate_results(df)
    experiments = ordered_experiments(data["experiment"].unique())
    path = None if out is None or out == "-" or hasattr(out, "write") else Path(out)

    figures: dict[str, list[Path]] = {}
    if figures_dir is not None:
        from deepsad.experiments import figures as figure_module  # matplotlib only when asked for

        for experiment in experiments:
            figures[experiment] = figure_module.write_figures(
                data, figures_dir, experiments=[experiment], alpha=alpha, ddof=ddof
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
