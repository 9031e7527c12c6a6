"""Comparing many methods over many datasets: average ranks, Friedman and Nemenyi tests.

The procedure is Demšar's (*Statistical Comparisons of Classifiers over Multiple Data Sets*,
JMLR 7, 2006, Sections 3.2.2 and 3.2.2.1), the one behind critical-difference diagrams:

1. rank the methods on every dataset (rank 1 = best, ties share the average of the ranks
   they span) and average the ranks over the datasets (:func:`rank_scores`, :func:`average_ranks`);
2. the Friedman test of "all methods are equivalent" (:func:`friedman_test`): Friedman's
   chi² statistic and Iman and Davenport's less conservative F statistic, with p-values;
3. the Nemenyi post-hoc test (:func:`critical_difference`): two methods differ significantly
   when their average ranks differ by at least ``CD = q_alpha * sqrt(k (k + 1) / (6 N))``, with
   ``q_alpha`` the Studentized range statistic for k groups and infinite degrees of freedom
   divided by sqrt(2) (:func:`nemenyi_q`, computed with :data:`scipy.stats.studentized_range`);
4. the groups of methods no two of which differ significantly (:func:`cliques`), the thick bars
   of the diagram.

:func:`compare_methods` does all of it at once and returns a :class:`RankingResult`;
:func:`wins_against` counts on how many datasets each method beats a reference method.

The input everywhere is a score matrix: a :class:`pandas.DataFrame` with one row per dataset
and one column per method, *higher = better* (e.g. the AUC averaged over seeds).

Missing cells, and why they are never ranked
--------------------------------------------
The Friedman test needs complete blocks: every method ranked on every dataset. A NaN cell (a
method that failed on a dataset) has no rank, and ranking the others without it would change
what a rank means on that dataset. :func:`complete_cases` therefore removes the gaps before
anything is ranked, by one of three explicit policies, and reports what it removed:

* ``"drop-datasets"`` (default) -- leave out every dataset on which some method has no score;
  the methods compared stay the ones asked for, on fewer datasets;
* ``"drop-methods"`` -- leave out every method that misses some dataset (useful when one
  method failed broadly and would otherwise cost many datasets);
* ``"raise"`` -- refuse the matrix.

:func:`rank_scores` itself refuses any NaN. :func:`wins_against` is pairwise and uses every
dataset both methods have, whatever the others did.

Ties in the Friedman statistic
------------------------------
By default the statistic is Demšar's formula, which ranks ties by their average and applies no
further correction (his worked example, chi² = 9.28 on 14 datasets with ties, is reproduced
exactly). ``tie_correction=True`` divides by ``1 - sum(t³ - t) / (N k (k² - 1))`` over the tie
groups, as :func:`scipy.stats.friedmanchisquare` does; without ties both are the same number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2 as chi2_distribution
from scipy.stats import f as f_distribution
from scipy.stats import rankdata, studentized_range

from deepsad.errors import InvalidInputError, InvalidInputTypeError

logger = logging.getLogger(__name__)

#: significance level of the Friedman and Nemenyi tests unless one is given, as in Demšar (2006)
DEFAULT_ALPHA = 0.05

#: the policies of :func:`complete_cases` for datasets where some method has no score
MISSING_POLICIES: tuple[str, ...] = ("drop-datasets", "drop-methods", "raise")

# rank differences are sums of halves divided by N: a difference that equals CD in exact
# arithmetic must not flip to "not significant" on the last bit
_RANK_TOLERANCE = 1e-12


# --------------------------------------------------------------------------- the score matrix


def check_scores(scores: pd.DataFrame, *, allow_missing: bool = True) -> pd.DataFrame:
    """Validate a dataset x method score matrix and return it as floats.

    Parameters
    ----------
    scores : pandas.DataFrame
        Rows = datasets, columns = methods, higher = better.
    allow_missing : bool, default True
        Whether NaN cells are acceptable (they are refused where ranks are computed).

    Returns
    -------
    pandas.DataFrame
        A float copy.

    Raises
    ------
    InvalidInputError
        Not a DataFrame, empty, repeated dataset or method names, non-numeric or infinite
        values, or NaN cells when ``allow_missing`` is false.
    """
    if not isinstance(scores, pd.DataFrame):
        raise InvalidInputTypeError(f"scores must be a pandas DataFrame (datasets x methods), got {type(scores).__name__}")
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise InvalidInputError(f"scores must hold at least one dataset and one method, got shape {scores.shape}")
    for axis, names in (("dataset", scores.index), ("method", scores.columns)):
        if names.has_duplicates:
            repeated = sorted({str(name) for name in names[names.duplicated()]})
            raise InvalidInputError(f"repeated {axis} name(s) in the score matrix: {', '.join(repeated)}")
    try:
        values = scores.astype(float)
    except (TypeError, ValueError):
        raise InvalidInputError("scores must be numeric") from None
    if np.isinf(values.to_numpy()).any():
        raise InvalidInputError("scores must be finite (NaN marks a missing cell)")
    if not allow_missing and values.isna().any().any():
        dataset, method = _first_missing(values)
        raise InvalidInputError(
            f"the score matrix has missing cells, e.g. method {method!r} on dataset {dataset!r}; "
            f"remove them first with complete_cases (policies: {', '.join(MISSING_POLICIES)})"
        )
    return values


def _first_missing(values: pd.DataFrame) -> tuple[str, str]:
    rows, columns = np.nonzero(values.isna().to_numpy())
    return str(values.index[rows[0]]), str(values.columns[columns[0]])


@dataclass(frozen=True)
class CompleteCases:
    """A score matrix without missing cells and what was removed to get it.

    Attributes
    ----------
    scores : pandas.DataFrame
        The complete matrix (no NaN).
    dropped_datasets : tuple of str
        Datasets left out because some method had no score there.
    dropped_methods : tuple of str
        Methods left out because they missed some dataset.
    """

    scores: pd.DataFrame
    dropped_datasets: tuple[str, ...]
    dropped_methods: tuple[str, ...]


def complete_cases(scores: pd.DataFrame, missing: str = "drop-datasets") -> CompleteCases:
    """Remove the missing cells of a score matrix by an explicit policy.

    Parameters
    ----------
    scores : pandas.DataFrame
        Rows = datasets, columns = methods; NaN = no score (e.g. the method failed there).
    missing : {"drop-datasets", "drop-methods", "raise"}, default "drop-datasets"
        Leave out the incomplete datasets, the incomplete methods, or refuse (see the module
        docstring). Methods or datasets without any score are always left out first.

    Returns
    -------
    CompleteCases
        The complete matrix and the names removed (logged at warning level when any).

    Raises
    ------
    InvalidInputError
        An unknown policy, ``"raise"`` with missing cells, or nothing left to rank.
    """
    if missing not in MISSING_POLICIES:
        raise InvalidInputError(f"unknown missing-cell policy {missing!r}; choose one of {', '.join(MISSING_POLICIES)}")
    values = check_scores(scores)
    if missing == "raise":
        check_scores(values, allow_missing=False)
        return CompleteCases(values, (), ())
    # a method (dataset) with no score at all would otherwise empty the other axis
    empty_methods = [str(m) for m in values.columns[values.isna().all(axis=0)]]
    empty_datasets = [str(d) for d in values.index[values.isna().all(axis=1)]]
    values = values.loc[values.notna().any(axis=1), values.notna().any(axis=0)]
    if missing == "drop-datasets":
        keep = values.notna().all(axis=1)
        dropped_datasets = empty_datasets + [str(d) for d in values.index[~keep]]
        dropped_methods = empty_methods
        values = values[keep]
    else:
        keep = values.notna().all(axis=0)
        dropped_methods = empty_methods + [str(m) for m in values.columns[~keep]]
        dropped_datasets = empty_datasets
        values = values.loc[:, keep]
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise InvalidInputError(
            f"no complete data left to rank after policy {missing!r} "
            f"(dropped {len(dropped_datasets)} dataset(s) and {len(dropped_methods)} method(s))"
        )
    if dropped_datasets or dropped_methods:
        logger.warning("missing cells: left out %d dataset(s) %s and %d method(s) %s",
                       len(dropped_datasets), dropped_datasets, len(dropped_methods), dropped_methods)
    return CompleteCases(values, tuple(dropped_datasets), tuple(dropped_methods))


# --------------------------------------------------------------------------- ranks


def rank_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Rank the methods on every dataset: 1 = best (highest score), ties get their average rank.

    Parameters
    ----------
    scores : pandas.DataFrame
        A complete score matrix (rows = datasets, columns = methods, higher = better).

    Returns
    -------
    pandas.DataFrame
        Same shape and labels, the ranks in [1, k]; every row sums to k (k + 1) / 2.

    Raises
    ------
    InvalidInputError
        For missing cells (use :func:`complete_cases` first) or an invalid matrix.
    """
    values = check_scores(scores, allow_missing=False)
    # rankdata ranks ascending, so rank the negated scores to give the highest rank 1
    ranks = rankdata(-values.to_numpy(), method="average", axis=1)
    return pd.DataFrame(ranks, index=values.index, columns=values.columns)


def average_ranks(scores: pd.DataFrame) -> pd.Series:
    """Average rank of every method over the datasets, best (lowest) first.

    Parameters
    ----------
    scores : pandas.DataFrame
        A complete score matrix.

    Returns
    -------
    pandas.Series
        Indexed by method, sorted ascending; equal averages keep the column order.
    """
    return rank_scores(scores).mean(axis=0).sort_values(kind="stable")


# --------------------------------------------------------------------------- the Friedman test


@dataclass(frozen=True)
class FriedmanResult:
    """The Friedman test and Iman and Davenport's F statistic (Demšar 2006, Section 3.2.2).

    Attributes
    ----------
    n_datasets, n_methods : int
        N and k.
    chi2 : float
        Friedman's statistic, chi² distributed with k - 1 degrees of freedom under the null.
    chi2_p_value : float
    f_statistic : float
        ``(N - 1) chi2 / (N (k - 1) - chi2)``, F distributed with (k - 1, (k - 1)(N - 1))
        degrees of freedom; ``inf`` when every dataset ranks the methods the same way.
    f_p_value : float
        NaN with a single dataset (no denominator degrees of freedom).
    df_numerator, df_denominator : int
        k - 1 and (k - 1)(N - 1).
    tie_correction : bool
        Whether the chi² statistic was corrected for ties.
    """

    n_datasets: int
    n_methods: int
    chi2: float
    chi2_p_value: float
    f_statistic: float
    f_p_value: float
    df_numerator: int
    df_denominator: int
    tie_correction: bool


def friedman_test(scores: pd.DataFrame, *, tie_correction: bool = False) -> FriedmanResult:
    """Friedman's test that all methods perform equally, with Iman and Davenport's F.

    Parameters
    ----------
    scores : pandas.DataFrame
        A complete score matrix with at least two methods.
    tie_correction : bool, default False
        Divide chi² by the tie correction factor as :func:`scipy.stats.friedmanchisquare`
        does; the default is Demšar's uncorrected formula (see the module docstring).

    Returns
    -------
    FriedmanResult

    Raises
    ------
    InvalidInputError
        Missing cells or fewer than two methods.
    """
    ranks = rank_scores(scores)
    n, k = ranks.shape
    if k < 2:
        raise InvalidInputError(f"the Friedman test needs at least two methods, got {k}")
    mean_ranks = ranks.mean(axis=0).to_numpy()
    chi2 = 12.0 * n / (k * (k + 1)) * (np.sum(mean_ranks**2) - k * (k + 1) ** 2 / 4.0)
    if tie_correction:
        factor = 1.0 - _tie_sum(ranks.to_numpy()) / (n * k * (k * k - 1))
        # every dataset one big tie: no information at all, not "infinitely significant"
        chi2 = chi2 / factor if factor > 0 else 0.0
    chi2 = max(float(chi2), 0.0)  # -1e-15 from rounding would give a p-value above 1
    df1, df2 = k - 1, (k - 1) * (n - 1)
    denominator = n * (k - 1) - chi2
    if df2 == 0:
        f_statistic, f_p_value = math.nan, math.nan
    elif denominator <= 1e-12 * n * k:  # identical rankings on every dataset
        f_statistic, f_p_value = math.inf, 0.0
    else:
        f_statistic = (n - 1) * chi2 / denominator
        f_p_value = float(f_distribution.sf(f_statistic, df1, df2))
    return FriedmanResult(
        n_datasets=n, n_methods=k, chi2=chi2, chi2_p_value=float(chi2_distribution.sf(chi2, df1)),
        f_statistic=float(f_statistic), f_p_value=f_p_value, df_numerator=df1, df_denominator=df2,
        tie_correction=tie_correction,
    )


def _tie_sum(ranks: np.ndarray) -> float:
    """Sum of t³ - t over the groups of tied ranks of every row."""
    total = 0.0
    for row in ranks:
        _, counts = np.unique(row, return_counts=True)
        total += float(np.sum(counts.astype(float) ** 3 - counts))
    return total


# --------------------------------------------------------------------------- the Nemenyi test


def nemenyi_q(n_methods: int, alpha: float = DEFAULT_ALPHA) -> float:
    """The Nemenyi test's critical value q_alpha for k methods (Demšar 2006, Table 5a).

    The upper-alpha quantile of the Studentized range for k groups and infinite degrees of
    freedom, divided by sqrt(2). For alpha = 0.05: 1.960 (k = 2), 2.343 (3), 2.569 (4),
    2.728 (5), ..., 3.164 (10).

    Parameters
    ----------
    n_methods : int
        k >= 2.
    alpha : float, default 0.05

    Returns
    -------
    float
    """
    _check_alpha(alpha)
    if not isinstance(n_methods, (int, np.integer)) or n_methods < 2:
        raise InvalidInputError(f"the Nemenyi test needs an integer number of methods >= 2, got {n_methods!r}")
    return float(studentized_range.ppf(1.0 - alpha, int(n_methods), np.inf) / math.sqrt(2.0))


def critical_difference(n_methods: int, n_datasets: int, alpha: float = DEFAULT_ALPHA) -> float:
    """Nemenyi's critical difference of average ranks: ``q_alpha * sqrt(k (k + 1) / (6 N))``.

    Parameters
    ----------
    n_methods : int
        k >= 2.
    n_datasets : int
        N >= 1.
    alpha : float, default 0.05

    Returns
    -------
    float
        E.g. 1.25 for Demšar's example (k = 4, N = 14).
    """
    if not isinstance(n_datasets, (int, np.integer)) or n_datasets < 1:
        raise InvalidInputError(f"the critical difference needs an integer number of datasets >= 1, got {n_datasets!r}")
    q = nemenyi_q(n_methods, alpha)
    return q * math.sqrt(n_methods * (n_methods + 1) / (6.0 * n_datasets))


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be a number in (0, 1), got {alpha!r}")


def cliques(ranks: pd.Series, cd: float) -> list[tuple[str, ...]]:
    """The maximal groups of methods whose average ranks differ by less than ``cd``.

    No two methods of a group differ significantly; these are the bars of a critical-difference
    diagram. Methods are taken in rank order, so every group is a run of consecutive methods;
    a group contained in another is left out. A method that differs significantly from every
    other one forms a group of its own.

    Parameters
    ----------
    ranks : pandas.Series
        Average rank per method (any order).
    cd : float
        The critical difference; a difference of at least ``cd`` is significant.

    Returns
    -------
    list of tuple of str
        The groups, each in rank order, ordered by their best member.
    """
    if not isinstance(ranks, pd.Series) or ranks.empty:
        raise InvalidInputError("ranks must be a non-empty pandas Series of average ranks by method")
    if not (isinstance(cd, (int, float)) and cd >= 0):
        raise InvalidInputError(f"the critical difference must be a number >= 0, got {cd!r}")
    ordered = ranks.astype(float).sort_values(kind="stable")
    names = [str(name) for name in ordered.index]
    values = ordered.to_numpy()
    groups: list[tuple[str, ...]] = []
    previous_end = -1
    for start in range(len(values)):
        end = start
        while end + 1 < len(values) and values[end + 1] - values[start] < cd - _RANK_TOLERANCE:
            end += 1
        # the run starting here is contained in the previous one unless it reaches further
        if end > previous_end:
            groups.append(tuple(names[start:end + 1]))
            previous_end = end
    return groups


# --------------------------------------------------------------------------- wins vs a reference


def wins_against(scores: pd.DataFrame, reference: str, *, tolerance: float = 0.0) -> pd.DataFrame:
    """On how many datasets every method beats, ties or loses to a reference method.

    Pairwise: each method is compared with the reference on the datasets where both have a
    score, whatever the other methods did there.

    Parameters
    ----------
    scores : pandas.DataFrame
        Rows = datasets, columns = methods, higher = better; NaN = no score.
    reference : str
        A column of ``scores``, e.g. ``"iforest"``.
    tolerance : float, default 0
        Differences with ``|a - b| <= tolerance`` count as ties.

    Returns
    -------
    pandas.DataFrame
        Indexed by method (the reference included, all ties), columns ``wins``, ``ties``,
        ``losses`` and ``n_datasets`` (datasets both have).
    """
    values = check_scores(scores)
    if reference not in values.columns:
        raise InvalidInputError(
            f"reference method {reference!r} is not in the scores; methods: {', '.join(map(str, values.columns))}"
        )
    if tolerance < 0:
        raise InvalidInputError(f"tolerance must be >= 0, got {tolerance!r}")
    base = values[reference]
    records = {}
    for method in values.columns:
        both = values[method].notna() & base.notna()
        difference = values.loc[both, method] - base[both]
        wins = int((difference > tolerance).sum())
        losses = int((difference < -tolerance).sum())
        records[method] = {"wins": wins, "ties": int(both.sum()) - wins - losses, "losses": losses,
                           "n_datasets": int(both.sum())}
    return pd.DataFrame.from_dict(records, orient="index", columns=["wins", "ties", "losses", "n_datasets"])


# --------------------------------------------------------------------------- all at once


@dataclass(frozen=True)
class RankingResult:
    """Everything a critical-difference comparison needs (see :func:`compare_methods`).

    Attributes
    ----------
    scores : pandas.DataFrame
        The complete matrix that was ranked.
    ranks : pandas.DataFrame
        Rank of every method on every dataset.
    average_ranks : pandas.Series
        Best (lowest) first.
    friedman : FriedmanResult
    alpha : float
    q_alpha : float
        Nemenyi's critical value for k methods.
    cd : float
        Nemenyi's critical difference.
    cliques : list of tuple of str
        Groups of methods not significantly different (:func:`cliques`).
    dropped_datasets, dropped_methods : tuple of str
        Removed by the missing-cell policy.
    missing_policy : str
    """

    scores: pd.DataFrame
    ranks: pd.DataFrame
    average_ranks: pd.Series
    friedman: FriedmanResult
    alpha: float
    q_alpha: float
    cd: float
    cliques: list[tuple[str, ...]]
    dropped_datasets: tuple[str, ...]
    dropped_methods: tuple[str, ...]
    missing_policy: str

    @property
    def n_datasets(self) -> int:
        """N, the datasets ranked."""
        return self.friedman.n_datasets

    @property
    def n_methods(self) -> int:
        """k, the methods ranked."""
        return self.friedman.n_methods

    @property
    def rejects_null(self) -> bool:
        """Whether Iman and Davenport's F test rejects "all methods equivalent" at ``alpha``.

        Demšar recommends F over chi² (less conservative) and the post-hoc test only after a
        rejection.
        """
        return bool(self.friedman.f_p_value < self.alpha)

    def significantly_different(self, first: str, second: str) -> bool:
        """Whether two methods' average ranks differ by at least the critical difference."""
        difference = abs(self.average_ranks[first] - self.average_ranks[second])
        return bool(difference >= self.cd - _RANK_TOLERANCE)


def compare_methods(
    scores: pd.DataFrame,
    *,
    alpha: float = DEFAULT_ALPHA,
    missing: str = "drop-datasets",
    tie_correction: bool = False,
    methods: Sequence[str] | None = None,
) -> RankingResult:
    """Rank methods over datasets and test them: Friedman, Iman-Davenport, Nemenyi, cliques.

    Parameters
    ----------
    scores : pandas.DataFrame
        Rows = datasets, columns = methods, higher = better; NaN = no score.
    alpha : float, default 0.05
        Significance level of the tests.
    missing : {"drop-datasets", "drop-methods", "raise"}, default "drop-datasets"
        How missing cells are removed (:func:`complete_cases`).
    tie_correction : bool, default False
        Passed to :func:`friedman_test`.
    methods : sequence of str, optional
        Compare only these columns (in any order); default all.

    Returns
    -------
    RankingResult

    Raises
    ------
    InvalidInputError
        Invalid scores, alpha or policy, unknown methods, or fewer than two methods left.
    """
    _check_alpha(alpha)
    values = check_scores(scores)
    if methods is not None:
        unknown = [m for m in methods if m not in values.columns]
        if unknown:
            raise InvalidInputError(f"unknown method(s) {', '.join(map(str, unknown))}; "
                                    f"the scores hold {', '.join(map(str, values.columns))}")
        values = values[list(methods)]
    complete = complete_cases(values, missing)
    if complete.scores.shape[1] < 2:
        raise InvalidInputError(
            f"need at least two methods to compare, {complete.scores.shape[1]} left after policy {missing!r}"
        )
    ranks = rank_scores(complete.scores)
    mean_ranks = ranks.mean(axis=0).sort_values(kind="stable")
    friedman = friedman_test(complete.scores, tie_correction=tie_correction)
    q = nemenyi_q(friedman.n_methods, alpha)
    cd = critical_difference(friedman.n_methods, friedman.n_datasets, alpha)
    return RankingResult(
        scores=complete.scores, ranks=ranks, average_ranks=mean_ranks, friedman=friedman, alpha=float(alpha),
        q_alpha=q, cd=cd, cliques=cliques(mean_ranks, cd), dropped_datasets=complete.dropped_datasets,
        dropped_methods=complete.dropped_methods, missing_policy=missing,
    )
