"""Statistics of experiment results: validation, summaries, paired comparisons and tests.

The input is the result store's export: a :class:`pandas.DataFrame` with one row per task (see
:data:`REQUIRED_COLUMNS` and :func:`validate_results`). From it this module computes

* :func:`summarize` -- mean and standard deviation of the AUC (in percent) per
  (experiment, dataset, parameter, value, method), with the numbers of completed and failed tasks;
* :func:`paired_aucs` -- the AUCs of two methods on the setups both completed (paired on
  ``setup_key``);
* :func:`compare_best` -- the best and second best method of every table row by mean AUC and a
  two-sided Wilcoxon signed-rank test between them (:func:`wilcoxon_test`).

Each of them validates its input first; the ``*_validated`` variants take results that
:func:`validate_results` already returned, for callers that compute several things from one
table (the report, the figures). Rendering lives in :mod:`deepsad.experiments.report`.

Conventions, and why
--------------------
* **Standard deviation**: the paper reports "avg. AUC with st. dev. computed over 90 experiments"
  and does not say which estimator; we use the *sample* standard deviation (``ddof=1``, pandas'
  default) over the completed tasks of a cell. ``ddof=0`` is available everywhere for the
  population version; with 90-100 experiments per cell the two differ by < 0.6 %, with the 10
  seeds of Table 6 by about 5 %.
* **Significance**: the paper's captions (Figures 2-4, Table 2) mark a statistically significant
  (alpha = 0.05) difference between the 1st and 2nd best method. The test is scipy's default
  two-sided Wilcoxon signed-rank test on the AUCs of the setups both methods completed; with no
  such pair the p-value is NaN and the difference is not significant.
* Failed tasks count in ``n_failed`` and are left out of the means.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from deepsad.errors import InvalidInputError, InvalidInputTypeError
from deepsad.experiments.paper_tables import PAPER_DATASETS
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

#: significance level of the Wilcoxon test between best and second best, as in the paper
DEFAULT_ALPHA = 0.05

#: keys of one table row, and of one table cell (a row and a method)
ROW_KEYS: tuple[str, ...] = ("experiment", "dataset", "parameter", "value")
CELL_KEYS: tuple[str, ...] = (*ROW_KEYS, "method")

#: the paper's order of experiments and datasets; unknown names follow alphabetically
EXPERIMENT_ORDER: tuple[str, ...] = ("table3", "table4", "table5", "table6", "eta", "rep_dim")
DATASET_ORDER: tuple[str, ...] = tuple(PAPER_DATASETS.values())


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


def paper_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort rows in the paper's order: experiment, dataset, setting, method.

    Parameters
    ----------
    frame : pandas.DataFrame
        With the columns of :data:`ROW_KEYS`, and ``method`` optionally.

    Returns
    -------
    pandas.DataFrame
        The rows sorted (stable; unknown names after the paper's, alphabetically), index reset.
    """
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


# --------------------------------------------------------------------------- summaries and tests


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
    return summarize_validated(validate_results(df), ddof=ddof)


def summarize_validated(data: pd.DataFrame, *, ddof: int) -> pd.DataFrame:
    """:func:`summarize` of results that :func:`validate_results` returned.

    Parameters
    ----------
    data : pandas.DataFrame
        Validated results.
    ddof : int
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    pandas.DataFrame
        As :func:`summarize`.
    """
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
    return paper_order(summary)


def _row_mask(data: pd.DataFrame, row: Sequence) -> pd.Series:
    """Rows of ``data`` that belong to one table row; NaN values match NaN."""
    experiment, dataset, parameter, value = row
    mask = (data["experiment"] == experiment) & (data["dataset"] == dataset) & (data["parameter"] == parameter)
    same_value = data["value"].isna() if is_nan(value) else np.isclose(data["value"], value, rtol=0, atol=1e-12)
    return mask & same_value



def is_nan(value: object) -> bool:
    """Whether ``value`` is a float NaN (a table row without a setting); other objects are not."""
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
    return paired_validated(validate_results(df), (experiment, dataset, parameter, value), methods)


def paired_validated(data: pd.DataFrame, row: Sequence, methods: tuple[str, str]) -> pd.DataFrame:
    """:func:`paired_aucs` on results that :func:`validate_results` returned.

    Parameters
    ----------
    data : pandas.DataFrame
        Validated results.
    row : sequence
        The table row: ``(experiment, dataset, parameter, value)``.
    methods : tuple of str
        The two methods to pair.

    Returns
    -------
    pandas.DataFrame
        As :func:`paired_aucs`.
    """
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
    check_alpha(alpha)
    data = validate_results(df)
    return compare_validated(data, summarize_validated(data, ddof=ddof), alpha=alpha)


def check_alpha(alpha: float) -> None:
    """Refuse a significance level outside (0, 1).

    Raises
    ------
    InvalidInputError
        ``alpha`` is not a number in (0, 1).
    """
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be a number in (0, 1), got {alpha!r}")


def compare_validated(data: pd.DataFrame, summary: pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    """:func:`compare_best` on validated results and their summary.

    Parameters
    ----------
    data : pandas.DataFrame
        Validated results.
    summary : pandas.DataFrame
        :func:`summarize_validated` of ``data``.
    alpha : float
        Significance level (not checked here: see :func:`check_alpha`).

    Returns
    -------
    pandas.DataFrame
        As :func:`compare_best`.
    """
    records = []
    for row, cells in summary.groupby(list(ROW_KEYS), dropna=False, sort=False):
        ranked = cells[cells["n_done"] > 0].assign(_order=_rank(cells["method"], method_names()))
        ranked = ranked.sort_values(["auc_mean", "_order", "method"], ascending=[False, True, True], kind="stable")
        best = ranked.iloc[0] if len(ranked) > 0 else None
        second = ranked.iloc[1] if len(ranked) > 1 else None
        n_pairs, statistic, p_value = 0, math.nan, math.nan
        if best is not None and second is not None:
            pairs = paired_validated(data, row, (best["method"], second["method"]))
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
    return paper_order(pd.DataFrame.from_records(records, columns=columns))
