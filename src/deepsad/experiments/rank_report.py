"""Multi-dataset comparison reports: per-dataset AUC, average ranks, Friedman / Nemenyi, CD diagrams.

The input is task rows as the result store exports them (:func:`deepsad.experiments.store.read_results`),
optionally joined by rows from elsewhere (e.g. a peer library run by a benchmark script) with
just the columns :data:`RANK_COLUMNS`: ``dataset, method, seed, auc``. For every *scenario* the
report gives

* the mean AUC over seeds per dataset x method (percent, one decimal, best of a row in bold);
* the average ranks (:mod:`deepsad.experiments.ranking`), the mean AUC over the ranked datasets
  and the wins / ties / losses against a reference method (Isolation Forest by default);
* the Friedman test, Iman and Davenport's F and the Nemenyi critical difference in one line;
* links to the critical-difference diagrams (:mod:`deepsad.experiments.cd_diagram`) when a
  figure folder is given.

Scenarios, and why they are found this way
------------------------------------------
A benchmark runs the same methods on the same datasets under different conditions ("clean",
"polluted"), as separate configs, profiles or parameter values. Ranks only make sense within
one condition, so rows are split into scenarios: a ``scenario`` column is used as is; otherwise
the scenario is whatever of ``experiment``, ``profile`` and (``parameter``, ``value``) differs
between the rows (:func:`scenario_labels`); e.g. two result files of profiles ``clean`` and
``polluted`` give the scenarios ``clean`` and ``polluted``. Extra rows name their scenario in a
``scenario`` column, which may be left out where there is only one.

Per-dataset values
------------------
A cell is the mean AUC over the completed tasks (seeds, and setups where a dataset has several)
of a method on a dataset; failed tasks are left out and listed in a note, and a cell without
any completed task is missing. Missing cells are never ranked: by default the datasets that
lack some method are left out of the ranking (and marked ``†`` in the AUC table), see
:func:`deepsad.experiments.ranking.complete_cases`.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from deepsad.errors import DataFileError, InvalidInputError, InvalidInputTypeError
from deepsad.experiments.paper_tables import PARAMETER_TEXT, paper_dataset_name, paper_method_name
from deepsad.experiments.ranking import DEFAULT_ALPHA, RankingResult, compare_methods, wins_against
from deepsad.experiments.statistics import ordered_methods

logger = logging.getLogger(__name__)

#: the columns every row needs, from the store or from an extra CSV
RANK_COLUMNS: tuple[str, ...] = ("dataset", "method", "seed", "auc")

#: the columns that tell scenarios apart when the rows carry no ``scenario`` column
SCENARIO_SOURCES: tuple[str, ...] = ("experiment", "profile", "parameter", "value")

#: the reference method of the wins / ties / losses column unless another is asked for
DEFAULT_REFERENCE = "iforest"

_DROPPED_MARK = "†"


# --------------------------------------------------------------------------- rows


def validate_rank_rows(df: pd.DataFrame, *, source: str = "results") -> pd.DataFrame:
    """Check rows for a ranking report and return a clean copy.

    Parameters
    ----------
    df : pandas.DataFrame
        At least the columns of :data:`RANK_COLUMNS`; optionally ``status`` (``done`` /
        ``failed``; without it a row with an AUC is done and one without is failed),
        ``scenario``, ``setup_key`` and the columns of :data:`SCENARIO_SOURCES`.
    source : str, default "results"
        Names the rows in error messages (e.g. a file name).

    Returns
    -------
    pandas.DataFrame
        A copy with ``dataset``, ``method``, ``seed`` and ``status`` as ``str``, ``auc`` as
        ``float``, and only the rows that are done or failed (others are dropped with a
        warning, e.g. tasks still pending).

    Raises
    ------
    InvalidInputError
        Missing columns or names, non-numeric or out-of-range AUCs, a done row without an
        AUC, or no rows.
    """
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputTypeError(f"{source}: rows must be a pandas DataFrame, got {type(df).__name__}")
    missing = [column for column in RANK_COLUMNS if column not in df.columns]
    if missing:
        raise InvalidInputError(f"{source}: lacks the column(s) {', '.join(missing)}; "
                                f"rows to rank need {', '.join(RANK_COLUMNS)}")
    if df.empty:
        raise InvalidInputError(f"{source}: no rows to rank")
    data = df.copy()
    blank = [c for c in ("dataset", "method", "seed") if data[c].isna().any()]
    if blank:
        raise InvalidInputError(f"{source}: missing values in column(s) {', '.join(blank)}")
    if "scenario" in data.columns and data["scenario"].isna().any():
        raise InvalidInputError(f"{source}: missing values in column scenario")
    for column in ("dataset", "method"):
        data[column] = data[column].astype(str)
    # seeds read from SQLite are integers, from a CSV maybe floats: 3 and 3.0 are one seed
    data["seed"] = data["seed"].map(lambda seed: f"{seed:g}" if isinstance(seed, (float, np.floating)) else str(seed))
    auc = pd.to_numeric(data["auc"], errors="coerce")
    bad = auc.isna() & data["auc"].notna() & (data["auc"].astype(str).str.strip() != "")
    if bad.any():
        raise InvalidInputError(f"{source}: column 'auc' must be numeric, got {data.loc[bad, 'auc'].iloc[0]!r}")
    data["auc"] = auc.astype(float)
    if "status" in data.columns:
        data["status"] = data["status"].astype(str)
    else:
        data["status"] = np.where(data["auc"].notna(), "done", "failed")
    known = data["status"].isin(("done", "failed"))
    if not known.all():
        logger.warning("%s: ignoring %d row(s) with status %s (neither done nor failed)", source,
                       int((~known).sum()), sorted(set(data.loc[~known, "status"])))
        data = data[known]
        if data.empty:
            raise InvalidInputError(f"{source}: no row is done or failed")
    done = data["status"] == "done"
    if (done & data["auc"].isna()).any():
        row = data[done & data["auc"].isna()].iloc[0]
        raise InvalidInputError(f"{source}: a done row without an AUC ({row['method']} on {row['dataset']}, "
                                f"seed {row['seed']}); a row without an AUC must be failed")
    outside = done & ((data["auc"] < 0) | (data["auc"] > 1))
    if outside.any():
        raise InvalidInputError(f"{source}: AUC outside [0, 1]: {data.loc[outside, 'auc'].iloc[0]!r}")
    return data.reset_index(drop=True)


def read_extra_rows(path: str | os.PathLike) -> pd.DataFrame:
    """Read rows from outside the result store: a CSV with ``dataset, method, seed, auc``.

    Optional columns: ``scenario`` (needed when the report has several scenarios), ``status``.

    Raises
    ------
    DataFileError
        If the file cannot be read as CSV.
    InvalidInputError
        If its rows are invalid (see :func:`validate_rank_rows`).
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataFileError(f"cannot read extra rows from {path}: {error}") from None
    return validate_rank_rows(frame, source=str(path))


def scenario_labels(df: pd.DataFrame) -> pd.Series:
    """The scenario of every row (see the module docstring).

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with a ``scenario`` column, or some of :data:`SCENARIO_SOURCES`.

    Returns
    -------
    pandas.Series of str
        Same index as ``df``. Only what differs between the rows names a scenario, joined by
        ", "; when nothing differs, the profile (else the experiment, else ``"all"``).
    """
    if "scenario" in df.columns:
        return df["scenario"].astype(str)
    parts: dict[str, pd.Series] = {}
    for column in ("experiment", "profile"):
        if column in df.columns:
            parts[column] = df[column].fillna("").astype(str)
    if "parameter" in df.columns:
        values = df["value"] if "value" in df.columns else pd.Series(math.nan, index=df.index)
        parts["setting"] = pd.Series([_setting(p, v) for p, v in zip(df["parameter"], values)], index=df.index)
    varying = [part for part in parts.values() if part.nunique() > 1]
    if varying:
        labels = pd.concat(varying, axis=1).apply(lambda row: ", ".join(p for p in row if p), axis=1)
        return labels.astype(str)
    for column in ("profile", "experiment"):
        if column in parts and parts[column].iloc[0]:
            return pd.Series(parts[column].iloc[0], index=df.index)
    return pd.Series("all", index=df.index)


def _setting(parameter: object, value: object) -> str:
    if not isinstance(parameter, str) or not parameter:
        return ""
    name = PARAMETER_TEXT.get(parameter, parameter)
    if isinstance(value, (int, float, np.number)) and not math.isnan(float(value)):
        return f"{name}={float(value):g}"
    return name


def combine_rows(results: pd.DataFrame | None, extra: Sequence[pd.DataFrame] = ()) -> pd.DataFrame:
    """Result-store rows and extra rows in one frame with a ``scenario`` column.

    Parameters
    ----------
    results : pandas.DataFrame or None
        Rows from the result store(s); their scenarios come from :func:`scenario_labels`.
    extra : sequence of pandas.DataFrame
        Further rows (:func:`read_extra_rows`). With a ``scenario`` column every value must be
        one of the results' scenarios (when there are results); without one, the results must
        form a single scenario, which the rows join.

    Returns
    -------
    pandas.DataFrame
        The validated rows of both, with ``scenario``.

    Raises
    ------
    InvalidInputError
        No rows at all, an unknown or ambiguous scenario, a method from two sources (e.g. an
        extra method named like one of the store's), or a (scenario, dataset, method, seed[,
        setup_key]) given twice (e.g. a results file given twice).
    """
    frames = []
    known: list[str] = []
    if results is not None:
        rows = validate_rank_rows(results)
        rows["scenario"] = scenario_labels(rows).to_numpy()
        known = list(dict.fromkeys(rows["scenario"]))
        frames.append(rows)
    for index, frame in enumerate(extra):
        rows = validate_rank_rows(frame, source=f"extra rows #{index + 1}")
        if "scenario" in rows.columns:
            rows["scenario"] = rows["scenario"].astype(str)
            unknown = sorted(set(rows["scenario"]) - set(known)) if known else []
            if unknown:
                raise InvalidInputError(f"extra rows name scenario(s) {', '.join(unknown)} that no results file has; "
                                        f"the scenarios are: {', '.join(known)}")
        elif len(known) > 1:
            raise InvalidInputError(f"extra rows need a 'scenario' column: the results hold several scenarios "
                                    f"({', '.join(known)})")
        else:
            rows["scenario"] = known[0] if known else "all"
        frames.append(rows)
    if not frames:
        raise InvalidInputError("no rows to rank: give results files or extra rows")
    combined = pd.concat([f.assign(_source=i) for i, f in enumerate(frames)], ignore_index=True)
    sources = combined.groupby(["scenario", "method"])["_source"].nunique()
    if (sources > 1).any():
        scenario, method = sources[sources > 1].index[0]
        raise InvalidInputError(
            f"method {method!r} comes from two sources in scenario {scenario!r}; give an extra method a name "
            "of its own (e.g. deepod-deepsad), so that its rows do not repeat another's"
        )
    combined = combined.drop(columns="_source")
    keys = ["scenario", "dataset", "method", "seed"]
    if "setup_key" in combined.columns:
        keys.append("setup_key")
        combined["setup_key"] = combined["setup_key"].fillna("").astype(str)
    repeated = combined.duplicated(keys, keep=False)
    if repeated.any():
        row = combined[repeated].iloc[0]
        raise InvalidInputError(
            f"{int(repeated.sum())} rows repeat a (scenario, dataset, method, seed), e.g. {row['method']} on "
            f"{row['dataset']} seed {row['seed']} in scenario {row['scenario']!r}: is a results file given twice, "
            "or does an extra method share a name with one of the store's?"
        )
    return combined


# --------------------------------------------------------------------------- per scenario


@dataclass(frozen=True)
class ScenarioRanking:
    """One scenario of a ranking report.

    Attributes
    ----------
    scenario : str
    means : pandas.DataFrame
        Mean AUC (in [0, 1]) over completed tasks, datasets x methods; NaN = no completed task.
    n_done, n_failed : pandas.DataFrame
        Completed and failed tasks per cell (same shape).
    result : RankingResult or None
        None when fewer than two methods could be ranked (``error`` says why).
    wins : pandas.DataFrame or None
        :func:`~deepsad.experiments.ranking.wins_against` the reference, when present.
    reference : str or None
        The reference method, when present in the scenario.
    error : str or None
    figures : tuple of pathlib.Path
        The diagram files written (PNG, PDF, SVG).
    labels : mapping
        Display names of methods (default: the paper's names).
    """

    scenario: str
    means: pd.DataFrame
    n_done: pd.DataFrame
    n_failed: pd.DataFrame
    result: RankingResult | None
    wins: pd.DataFrame | None
    reference: str | None
    error: str | None = None
    figures: tuple[Path, ...] = field(default=())
    labels: Mapping[str, str] = field(default_factory=dict)


def cell_means(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Mean AUC, completed and failed tasks per dataset x method of one scenario's rows."""
    done = rows["status"] == "done"
    work = rows.assign(auc=rows["auc"].where(done), done=done.astype(int), failed=(~done).astype(int))
    grouped = work.groupby(["dataset", "method"], sort=False)
    methods = ordered_methods(rows["method"].unique())
    datasets = sorted(rows["dataset"].unique(), key=lambda name: (name.lower(), name))

    def table(series: pd.Series, fill: float) -> pd.DataFrame:
        return series.unstack("method").reindex(index=datasets, columns=methods).fillna(fill)

    means = grouped["auc"].mean().unstack("method").reindex(index=datasets, columns=methods)
    return means, table(grouped["done"].sum(), 0).astype(int), table(grouped["failed"].sum(), 0).astype(int)


def rank_scenarios(
    rows: pd.DataFrame,
    *,
    reference: str | None = DEFAULT_REFERENCE,
    alpha: float = DEFAULT_ALPHA,
    missing: str = "drop-datasets",
    tie_correction: bool = False,
) -> list[ScenarioRanking]:
    """Rank the methods of every scenario of :func:`combine_rows`' output.

    Parameters
    ----------
    rows : pandas.DataFrame
        Rows with a ``scenario`` column.
    reference : str or None, default "iforest"
        The method to count wins against (skipped where a scenario lacks it).
    alpha, missing, tie_correction
        As in :func:`deepsad.experiments.ranking.compare_methods`.

    Returns
    -------
    list of ScenarioRanking
        In the order the scenarios first appear.
    """
    rankings = []
    for scenario in dict.fromkeys(rows["scenario"]):
        means, n_done, n_failed = cell_means(rows[rows["scenario"] == scenario])
        result, error = None, None
        try:
            result = compare_methods(means, alpha=alpha, missing=missing, tie_correction=tie_correction)
        except InvalidInputError as problem:
            # one scenario that cannot be ranked (a single method, nothing complete) must not
            # hide the others
            error = str(problem)
            logger.warning("scenario %s: not ranked: %s", scenario, problem)
        present = reference if reference is not None and reference in means.columns else None
        wins = wins_against(means, present) if present is not None else None
        rankings.append(ScenarioRanking(str(scenario), means, n_done, n_failed, result, wins, present, error))
    return rankings


# --------------------------------------------------------------------------- Markdown


def _escape(text: str) -> str:
    return text.replace("|", r"\|")


def _method(name: str, labels: Mapping[str, str] | None = None) -> str:
    return _escape((labels or {}).get(name) or paper_method_name(name))


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2g}"


def _column_order(ranking: ScenarioRanking) -> list[str]:
    if ranking.result is None:
        return list(ranking.means.columns)
    ranked = [str(m) for m in ranking.result.average_ranks.index]
    return ranked + [m for m in ranking.means.columns if m not in ranked]


def _auc_table(ranking: ScenarioRanking) -> list[str]:
    methods = _column_order(ranking)
    dropped = set(ranking.result.dropped_datasets) if ranking.result is not None else set()
    lines = ["| Dataset | " + " | ".join(_method(m, ranking.labels) for m in methods) + " |",
             "| --- | " + " | ".join("---:" for _ in methods) + " |"]
    for dataset, row in ranking.means[methods].iterrows():
        best = row.max()
        cells = []
        for method in methods:
            value = row[method]
            if math.isnan(value):
                cells.append("failed" if ranking.n_failed.loc[dataset, method] else "–")
                continue
            text = f"{100 * value:.1f}"
            cells.append(f"**{text}**" if value == best else text)
        label = _escape(paper_dataset_name(str(dataset))) + (f" {_DROPPED_MARK}" if dataset in dropped else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _rank_table(ranking: ScenarioRanking) -> list[str]:
    result = ranking.result
    assert result is not None
    header = "| # | Method | Avg. rank | Mean AUC (%) |"
    align = "| ---: | --- | ---: | ---: |"
    if ranking.wins is not None:
        header += f" vs {_method(ranking.reference, ranking.labels)} W/T/L |"
        align += " ---: |"
    lines = [header, align]
    mean_auc = result.scores.mean(axis=0)
    for position, (method, rank) in enumerate(result.average_ranks.items(), start=1):
        line = f"| {position} | {_method(method, ranking.labels)} | {rank:.2f} | {100 * mean_auc[method]:.1f} |"
        if ranking.wins is not None:
            if method == ranking.reference:
                line += " (reference) |"
            else:
                w = ranking.wins.loc[method]
                line += f" {w['wins']}/{w['ties']}/{w['losses']} |"
        lines.append(line)
    return lines


def _groups(result: RankingResult, labels: Mapping[str, str] | None) -> str:
    groups = [group for group in result.cliques if len(group) > 1]
    if not groups:
        return "every method differs significantly from every other"
    return "; ".join("{" + ", ".join(_method(m, labels) for m in group) + "}" for group in groups)


def summary_line(result: RankingResult, labels: Mapping[str, str] | None = None) -> str:
    """The Friedman / Iman-Davenport / Nemenyi outcome of a ranking in one Markdown line
    (methods by their ``labels``, default the paper's names)."""
    f = result.friedman
    verdict = ("the methods differ significantly" if result.rejects_null
               else "no significant difference (the post-hoc groups are shown for information only)")
    tie_note = ", tie-corrected" if f.tie_correction else ""
    return (
        f"Friedman test over N = {f.n_datasets} datasets and k = {f.n_methods} methods: "
        f"χ²F = {f.chi2:.2f} (df {f.df_numerator}{tie_note}, p = {_p(f.chi2_p_value)}); "
        f"Iman–Davenport FF = {f.f_statistic:.2f} (df {f.df_numerator}, {f.df_denominator}, p = {_p(f.f_p_value)}): "
        f"{verdict} at α = {result.alpha:g}. Nemenyi post-hoc test: qα = {result.q_alpha:.3f}, "
        f"CD = {result.cd:.2f}; not significantly different: {_groups(result, labels)}."
    )


def _notes(ranking: ScenarioRanking) -> list[str]:
    notes = []
    result = ranking.result
    if result is not None and result.dropped_datasets:
        reasons = []
        for dataset in result.dropped_datasets:
            absent = [m for m in ranking.means.columns if math.isnan(ranking.means.loc[dataset, m])]
            reasons.append(f"{_escape(paper_dataset_name(dataset))} (no result: "
                           f"{', '.join(_method(m, ranking.labels) for m in absent)})")
        notes.append(f"{_DROPPED_MARK} Left out of the ranking ({len(result.dropped_datasets)} of "
                     f"{len(ranking.means)} datasets): " + "; ".join(reasons) + ".")
    if result is not None and result.dropped_methods:
        notes.append("Methods left out of the ranking (missing on some dataset): "
                     + ", ".join(_method(m, ranking.labels) for m in result.dropped_methods) + ".")
    partial = [(d, m) for d in ranking.n_failed.index for m in ranking.n_failed.columns
               if ranking.n_failed.loc[d, m] > 0]
    if partial:
        notes.append("Failed tasks (left out of the means): " + "; ".join(
            f"{_escape(paper_dataset_name(d))} {_method(m, ranking.labels)}: {ranking.n_failed.loc[d, m]} of "
            f"{ranking.n_failed.loc[d, m] + ranking.n_done.loc[d, m]}" for d, m in partial) + ".")
    return notes


def render_scenario(ranking: ScenarioRanking, report_path: Path | None = None) -> str:
    """One scenario's Markdown section (figures linked relative to ``report_path``)."""
    lines = [f"## Scenario: {_escape(ranking.scenario)}", ""]
    n_seeds = int(ranking.n_done.to_numpy().max()) if ranking.n_done.size else 0
    lines += [f"Mean AUC (%) over the completed seeds (up to {n_seeds}) per dataset; bold: best of a row; "
              "methods in the order of their average rank.", ""]
    lines += _auc_table(ranking)
    lines.append("")
    if ranking.result is None:
        lines += [f"Not ranked: {_escape(ranking.error or 'fewer than two methods')}.", ""]
    else:
        lines += [f"Average ranks over the {ranking.result.n_datasets} ranked datasets (rank 1 = best on a dataset, "
                  "ties share their average rank); mean AUC over the same datasets"
                  + ("; W/T/L: datasets where a method beats, ties or loses to the reference (all datasets both have)."
                     if ranking.wins is not None else "."), ""]
        lines += _rank_table(ranking)
        lines += ["", summary_line(ranking.result, ranking.labels), ""]
    for note in _notes(ranking):  # one paragraph each
        lines += [note, ""]
    if ranking.figures:
        first, *others = ranking.figures
        extra = ", ".join(f"[{p.suffix[1:].upper()}]({_link(p, report_path)})" for p in others)
        lines += [f"![Critical-difference diagram, {_escape(ranking.scenario)}]({_link(first, report_path)})"
                  + (f" ({extra})" if extra else ""), ""]
    return "\n".join(lines)


def _link(figure: Path, report: Path | None) -> str:
    """A figure's path as the report should link it: relative to the report file."""
    if report is None:
        return figure.as_posix()
    return Path(os.path.relpath(figure.resolve(), report.resolve().parent)).as_posix()


# --------------------------------------------------------------------------- the whole report


@dataclass(frozen=True)
class RankReport:
    """What :func:`write_rank_report` produced: the text, the file and the rankings."""

    text: str
    path: Path | None
    scenarios: tuple[ScenarioRanking, ...]

    @property
    def figures(self) -> tuple[Path, ...]:
        """Every diagram file written."""
        return tuple(p for s in self.scenarios for p in s.figures)


def write_rank_report(
    rows: pd.DataFrame,
    out: str | os.PathLike | TextIO | None = None,
    figures_dir: str | os.PathLike | None = None,
    *,
    reference: str | None = DEFAULT_REFERENCE,
    alpha: float = DEFAULT_ALPHA,
    missing: str = "drop-datasets",
    tie_correction: bool = False,
    labels: Mapping[str, str] | None = None,
) -> RankReport:
    """Write the per-scenario comparison report in Markdown, and the CD diagrams.

    Parameters
    ----------
    rows : pandas.DataFrame
        :func:`combine_rows`' output (rows with a ``scenario`` column); plain result-store
        rows are accepted too.
    out : path, text stream, "-" or None
        A file (parent folders created), a stream, or standard output.
    figures_dir : path, optional
        Write one diagram per ranked scenario, ``cd_<scenario>.{png,pdf,svg}`` (needs
        matplotlib; see :func:`deepsad.experiments.cd_diagram.file_stem`, a numeric suffix
        where two scenarios would share a name); a method keeps its colour across the
        scenarios' diagrams.
    reference, alpha, missing, tie_correction
        As in :func:`rank_scenarios`.
    labels : mapping, optional
        Display names of methods in the tables and diagrams (default: the paper's names).

    Returns
    -------
    RankReport
    """
    rows = combine_rows(rows)
    path = None if out is None or out == "-" or hasattr(out, "write") else Path(out)
    rankings = rank_scenarios(rows, reference=reference, alpha=alpha, missing=missing, tie_correction=tie_correction)
    rankings = [replace(ranking, labels=dict(labels or {})) for ranking in rankings]
    if figures_dir is not None:
        rankings = _draw(rankings, Path(figures_dir), labels)

    alpha_text = f"{alpha:g}"
    header = [
        "# Multi-dataset comparison",
        "",
        "Per scenario: mean AUC per dataset and method, average ranks, the Friedman test with Iman and "
        f"Davenport's F and the Nemenyi post-hoc test at α = {alpha_text} (Demšar, JMLR 2006). "
        "Datasets where some method has no result are left out of the ranking, never ranked with a gap.",
        "",
    ]
    text = "\n".join(header) + "\n" + "\n".join(render_scenario(r, path) for r in rankings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        logger.info("wrote ranking report %s", path)
    else:
        stream = sys.stdout if out is None or out == "-" else out
        stream.write(text)
    return RankReport(text=text, path=path, scenarios=tuple(rankings))


def _draw(rankings: list[ScenarioRanking], folder: Path, labels: Mapping[str, str] | None) -> list[ScenarioRanking]:
    # matplotlib only when asked for
    from deepsad.experiments.cd_diagram import file_stem, method_styles, write_cd_diagram

    every = ordered_methods({m for r in rankings if r.result is not None for m in r.result.average_ranks.index})
    styles = method_styles(every)
    names = {m: paper_method_name(m) for m in every} | dict(labels or {})
    drawn = []
    used: set[str] = set()
    for ranking in rankings:
        if ranking.result is None:
            drawn.append(ranking)
            continue
        # two scenario names may differ only in characters a file name cannot hold
        stem, n = file_stem(f"cd_{ranking.scenario}"), 2
        while stem.lower() in used:
            stem, n = f"{file_stem(f'cd_{ranking.scenario}')}-{n}", n + 1
        used.add(stem.lower())
        paths = write_cd_diagram(ranking.result, folder, stem, labels=names, styles=styles, title=ranking.scenario)
        drawn.append(replace(ranking, figures=tuple(paths)))
    return drawn
