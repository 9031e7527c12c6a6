"""Multi-dataset comparison statistics: ranks, Friedman / Iman-Davenport, Nemenyi CD, cliques, wins.

Reference numbers come from Demšar (JMLR 7, 2006): Table 5(a) for q_alpha and the worked example
of Section 3.2.2 (Table 6, four C4.5 variants on 14 datasets).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import friedmanchisquare

from deepsad.errors import InvalidInputError
from deepsad.experiments.ranking import (
    average_ranks,
    cliques,
    compare_methods,
    complete_cases,
    critical_difference,
    friedman_test,
    nemenyi_q,
    rank_scores,
    wins_against,
)

DEMSAR_METHODS = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
# Demšar (2006), Table 6: AUC of four C4.5 variants on 14 datasets, as printed (3 decimals)
DEMSAR_TABLE = [
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
    [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
    [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
    [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.975, 0.975], [0.957, 0.978, 0.946, 0.970],
]


def demsar_scores(*, as_ranked_in_the_paper: bool = True) -> pd.DataFrame:
    table = np.array(DEMSAR_TABLE)
    if as_ranked_in_the_paper:
        # The paper's ranks (C4.5+cf 2.893, C4.5+m+cf 1.964) rank C4.5+cf above C4.5+m+cf on
        # "voting", where the printed three decimals tie (.975 / .975): the unrounded AUCs differed.
        table[12, 2] = 0.97501
    return pd.DataFrame(table, index=[f"d{i}" for i in range(14)], columns=DEMSAR_METHODS)


# --------------------------------------------------------------------------- ranks


def test_ranks_best_is_one_and_ties_share_the_average():
    scores = pd.DataFrame({"a": [0.9, 0.5, 0.7], "b": [0.8, 0.5, 0.7], "c": [0.7, 0.5, 0.9]}, index=["x", "y", "z"])
    ranks = rank_scores(scores)
    assert ranks.loc["x"].tolist() == [1.0, 2.0, 3.0]
    assert ranks.loc["y"].tolist() == [2.0, 2.0, 2.0]  # a three-way tie: the average of 1, 2, 3
    assert ranks.loc["z"].tolist() == [2.5, 2.5, 1.0]
    assert average_ranks(scores).to_dict() == pytest.approx({"a": 11 / 6, "b": 13 / 6, "c": 2.0})
    assert list(average_ranks(scores).index) == ["a", "c", "b"]


def test_ranks_refuse_missing_cells():
    scores = pd.DataFrame({"a": [0.9, np.nan], "b": [0.8, 0.7]}, index=["x", "y"])
    with pytest.raises(InvalidInputError, match="missing cells.*'a'.*'y'"):
        rank_scores(scores)


# --------------------------------------------------------------------------- Friedman


def test_friedman_reproduces_demsars_worked_example():
    result = compare_methods(demsar_scores())
    assert result.average_ranks.round(3).to_dict() == {
        "C4.5": 3.143, "C4.5+m": 2.000, "C4.5+cf": 2.893, "C4.5+m+cf": 1.964}
    assert result.friedman.chi2 == pytest.approx(9.28, abs=0.005)
    assert result.friedman.f_statistic == pytest.approx(3.69, abs=0.005)
    assert (result.friedman.df_numerator, result.friedman.df_denominator) == (3, 39)
    assert result.friedman.f_p_value < 0.05  # "the null hypothesis is rejected"
    assert result.cd == pytest.approx(1.25, abs=0.005)  # CD = 2.569 sqrt(4 * 5 / (6 * 14))
    # "the data is not sufficient to reach any conclusion" about the others: the largest
    # difference, 3.143 - 1.964 = 1.18, is below CD, so all four form one group
    assert result.cliques == [("C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5")]


def test_friedman_equals_scipy_without_ties():
    # a hand-made 5 x 3 matrix without ties: rank sums 6, 9, 15
    scores = pd.DataFrame(
        {"a": [0.9, 0.8, 0.95, 0.7, 0.85], "b": [0.8, 0.9, 0.90, 0.6, 0.80], "c": [0.7, 0.6, 0.50, 0.5, 0.75]})
    result = friedman_test(scores)
    # 12 N / (k (k + 1)) * (sum R^2 - k (k + 1)^2 / 4) with R = (1.2, 1.8, 3.0)
    assert result.chi2 == pytest.approx(12 * 5 / 12 * (1.2**2 + 1.8**2 + 3.0**2 - 12))
    expected = friedmanchisquare(*scores.T.to_numpy())
    assert result.chi2 == pytest.approx(expected.statistic)
    assert result.chi2_p_value == pytest.approx(expected.pvalue)
    assert result.f_statistic == pytest.approx(4 * result.chi2 / (5 * 2 - result.chi2))


def test_tie_correction_matches_scipy_on_ties():
    scores = demsar_scores(as_ranked_in_the_paper=False)
    corrected = friedman_test(scores, tie_correction=True)
    expected = friedmanchisquare(*scores.T.to_numpy())
    assert corrected.chi2 == pytest.approx(expected.statistic)
    assert corrected.chi2_p_value == pytest.approx(expected.pvalue)
    assert friedman_test(scores).chi2 < corrected.chi2  # the correction only ever raises chi2


def test_friedman_edge_cases():
    same_order = pd.DataFrame({"a": [0.9, 0.8, 0.7], "b": [0.5, 0.4, 0.3]})
    result = friedman_test(same_order)
    assert result.chi2 == pytest.approx(3.0)  # N (k - 1): the maximum
    assert result.f_statistic == math.inf and result.f_p_value == 0.0
    all_tied = pd.DataFrame({"a": [0.5, 0.5], "b": [0.5, 0.5]})
    assert friedman_test(all_tied, tie_correction=True).chi2 == 0.0
    one_dataset = friedman_test(pd.DataFrame({"a": [0.9], "b": [0.1]}))
    assert math.isnan(one_dataset.f_p_value)
    with pytest.raises(InvalidInputError, match="at least two methods"):
        friedman_test(pd.DataFrame({"a": [0.9, 0.8]}))


# --------------------------------------------------------------------------- Nemenyi


@pytest.mark.parametrize(("k", "q"), [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (7, 2.949), (10, 3.164)])
def test_q_alpha_matches_demsars_table(k, q):
    # the table's third decimal is off by up to 7e-4 from the exact quantile (k = 3, 7)
    assert nemenyi_q(k) == pytest.approx(q, abs=1e-3)


def test_q_alpha_at_ten_percent():
    # Demšar, Table 5(a), alpha = 0.10
    assert nemenyi_q(2, 0.10) == pytest.approx(1.645, abs=1e-3)
    assert nemenyi_q(10, 0.10) == pytest.approx(2.920, abs=1e-3)


@pytest.mark.parametrize(("k", "n"), [(4, 14), (12, 37), (13, 37), (2, 5)])
def test_critical_difference_formula(k, n):
    assert critical_difference(k, n) == pytest.approx(nemenyi_q(k) * math.sqrt(k * (k + 1) / (6 * n)))


def test_invalid_nemenyi_arguments():
    with pytest.raises(InvalidInputError, match=">= 2"):
        nemenyi_q(1)
    with pytest.raises(InvalidInputError, match="alpha"):
        nemenyi_q(4, 1.5)
    with pytest.raises(InvalidInputError, match=">= 1"):
        critical_difference(4, 0)


# --------------------------------------------------------------------------- cliques


def test_cliques_on_a_constructed_case():
    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 2.2, "d": 3.5, "e": 4.0, "f": 6.0})
    # CD 1.3: a-b-c within 1.2; c-d exactly 1.3 is significant; d-e; f alone
    assert cliques(ranks, 1.3) == [("a", "b", "c"), ("d", "e"), ("f",)]
    # CD 2.0: a..c, b..d (3.5 - 1.5 = 2.0 is significant), c..e, f alone
    assert cliques(ranks, 2.0) == [("a", "b", "c"), ("c", "d", "e"), ("f",)]
    assert cliques(ranks, 10.0) == [("a", "b", "c", "d", "e", "f")]
    assert cliques(ranks.sample(frac=1.0, random_state=0), 1.3) == cliques(ranks, 1.3)  # order-free


def test_significance_agrees_with_the_cliques():
    rng = np.random.default_rng(3)
    scores = pd.DataFrame(rng.normal(np.linspace(0, 1, 6), 0.6, size=(20, 6)), columns=list("abcdef"))
    result = compare_methods(scores)
    for first in scores.columns:
        for second in scores.columns:
            together = any(first in group and second in group for group in result.cliques)
            assert together != result.significantly_different(first, second) or first == second


# --------------------------------------------------------------------------- missing cells


def missing_scores() -> pd.DataFrame:
    return pd.DataFrame(
        {"a": [0.9, 0.8, np.nan, 0.7, 0.6], "b": [0.8, 0.9, 0.7, 0.6, np.nan], "c": [0.7, 0.6, 0.5, 0.8, 0.9]},
        index=["d1", "d2", "d3", "d4", "d5"],
    )


def test_missing_cells_drop_datasets_by_default():
    result = compare_methods(missing_scores())
    assert result.dropped_datasets == ("d3", "d5")
    assert result.dropped_methods == ()
    assert list(result.scores.index) == ["d1", "d2", "d4"]
    assert result.n_datasets == 3
    assert result.ranks.notna().all().all()


def test_missing_cells_drop_methods_or_raise():
    scores = missing_scores().assign(d=[0.1, 0.2, 0.3, 0.4, 0.5])
    by_method = compare_methods(scores, missing="drop-methods")
    assert by_method.dropped_methods == ("a", "b")
    assert by_method.dropped_datasets == ()
    assert list(by_method.average_ranks.index) == ["c", "d"]
    with pytest.raises(InvalidInputError, match="at least two methods"):
        compare_methods(missing_scores(), missing="drop-methods")  # only c is complete
    with pytest.raises(InvalidInputError, match="missing cells"):
        compare_methods(missing_scores(), missing="raise")
    with pytest.raises(InvalidInputError, match="policy"):
        complete_cases(missing_scores(), "ignore")


def test_a_method_without_any_score_is_dropped_not_every_dataset():
    scores = missing_scores().assign(z=np.nan)
    complete = complete_cases(scores)
    assert complete.dropped_methods == ("z",)
    assert complete.dropped_datasets == ("d3", "d5")


# --------------------------------------------------------------------------- wins


def test_wins_against_a_reference_are_pairwise():
    wins = wins_against(missing_scores(), "c")
    # a vs c on d1, d2, d4, d5 (a has no d3; b's missing d5 does not matter here)
    assert wins.loc["a"].to_dict() == {"wins": 2, "ties": 0, "losses": 2, "n_datasets": 4}
    # b vs c on d1-d4: differences .1, .3, .2, -.2
    assert wins.loc["b"].to_dict() == {"wins": 3, "ties": 0, "losses": 1, "n_datasets": 4}
    assert wins.loc["c"].to_dict() == {"wins": 0, "ties": 5, "losses": 0, "n_datasets": 5}
    assert wins_against(missing_scores(), "c", tolerance=0.15).loc["b"].to_dict() == {
        "wins": 2, "ties": 1, "losses": 1, "n_datasets": 4}
    with pytest.raises(InvalidInputError, match="reference method 'iforest'"):
        wins_against(missing_scores(), "iforest")
