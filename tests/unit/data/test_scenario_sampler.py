"""Properties of the scenario samplers (hypothesis) and the paper's exact counts."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from deepsad.data.scenarios import (
    count_from_share,
    draw_known_classes,
    round_half_up,
    sample_image_scenario,
    sample_odds_scenario,
)
from deepsad.errors import InvalidInputError

RATIOS = st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 0.9])
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _nearest(share: float, base: int) -> float:
    """The real-valued count the formulas round (computed independently, in floats)."""
    return share * base / (1.0 - share)


@st.composite
def image_setups(draw):
    n_classes = draw(st.integers(2, 6))
    counts = draw(st.lists(st.integers(0, 40), min_size=n_classes, max_size=n_classes))
    normal = draw(st.integers(0, n_classes - 1))
    counts[normal] = max(counts[normal], 1)
    perm_seed = draw(st.integers(0, 2**32 - 1))
    train = np.random.default_rng(perm_seed).permutation(np.repeat(np.arange(n_classes), counts))
    present_anomalies = [c for c in range(n_classes) if c != normal and counts[c] > 0]
    known = draw(st.lists(st.sampled_from(present_anomalies), unique=True)) if present_anomalies else []
    test_counts = draw(st.lists(st.integers(0, 10), min_size=n_classes, max_size=n_classes))
    test = np.repeat(np.arange(n_classes), test_counts)
    return {
        "train": train, "test": test, "normal": normal, "known": known,
        "gamma_l": draw(RATIOS), "gamma_p": draw(RATIOS),
        "ratio_ln": draw(st.sampled_from([0.0, 0.0, 0.1, 0.5])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _expected_counts(s):
    n_normal = int(np.sum(s["train"] == s["normal"]))
    n_ln = math.floor(Fraction(str(s["ratio_ln"])) * n_normal + Fraction(1, 2))
    n_un = n_normal - n_ln
    gp, gl = Fraction(str(s["gamma_p"])), Fraction(str(s["gamma_l"]))
    n_p = math.floor(gp * n_un / (1 - gp) + Fraction(1, 2))
    m = math.floor(gl * (n_un + n_p + n_ln) / (1 - gl) + Fraction(1, 2)) if s["known"] else 0
    return n_normal, n_ln, n_un, n_p, m


def _draw(s, seed=None):
    return sample_image_scenario(
        s["train"], s["test"], normal_classes=s["normal"], known_anomaly_classes=s["known"],
        gamma_l=s["gamma_l"], gamma_p=s["gamma_p"], ratio_labeled_normal=s["ratio_ln"],
        rng=np.random.default_rng(s["seed"] if seed is None else seed), seed=s["seed"],
    )


@SETTINGS
@given(image_setups())
def test_image_scenario_properties(s):
    train, normal, known = s["train"], s["normal"], s["known"]
    n_normal, n_ln, n_un, n_p, m = _expected_counts(s)
    n_known_pool = int(np.isin(train, known).sum())
    n_anomaly_pool = int((train != normal).sum())
    if m > n_known_pool or n_p > n_anomaly_pool - m:
        event("pool too small")
        with pytest.raises(InvalidInputError, match=r"requested \d+, available \d+"):
            _draw(s)
        return
    draw = _draw(s)
    idx, semi = draw.train_indices, draw.train_semi_labels
    cls = train[idx]

    # dtypes, alignment, order, no index twice
    assert idx.dtype == np.int64 and semi.dtype == np.int8 and idx.shape == semi.shape
    assert np.unique(idx).size == idx.size
    assert np.all(np.diff(idx) > 0)
    assert set(np.unique(semi).tolist()) <= {-1, 0, 1}

    labeled_anomalies = idx[semi == -1]
    labeled_normals = idx[semi == 1]
    pollution = idx[(semi == 0) & (cls != normal)]
    unlabeled_normals = idx[(semi == 0) & (cls == normal)]

    # counts follow the formulas exactly ...
    assert (labeled_normals.size, unlabeled_normals.size, pollution.size, labeled_anomalies.size) == (n_ln, n_un, n_p, m)
    # ... and are the nearest integers to the real-valued targets (independent float check)
    assert abs(n_p - _nearest(s["gamma_p"], n_un)) <= 0.5 + 1e-9
    if known:
        assert abs(m - _nearest(s["gamma_l"], n_un + n_p + n_ln)) <= 0.5 + 1e-9
    # every normal training sample is used, labeled or not
    assert unlabeled_normals.size + labeled_normals.size == n_normal
    # labeled anomalies only from known classes, labeled normals only normal, pollution non-normal
    assert set(train[labeled_anomalies].tolist()) <= set(known)
    assert set(train[labeled_normals].tolist()) <= {normal}
    assert normal not in set(train[pollution].tolist())
    # labeled and unlabeled anomalies are disjoint samples
    assert np.intersect1d(labeled_anomalies, pollution).size == 0

    # test = the whole test split, ground truth 1 for every non-normal class
    assert np.array_equal(draw.test_indices, np.arange(s["test"].size))
    assert np.array_equal(draw.test_ground_truth, (s["test"] != normal).astype(np.int8))

    # the summary agrees with the arrays and is JSON
    t = draw.summary["train"]
    assert (t["labeled_anomaly"], t["pollution"], t["labeled_normal"], t["unlabeled_normal"]) == (m, n_p, n_ln, n_un)
    assert t["total"] == idx.size and draw.summary["seed"] == s["seed"]
    per_class = draw.summary["train_per_class"]
    assert sum(sum(v.values()) for v in per_class.values()) == idx.size
    json.dumps(draw.summary)

    # the same seed gives the same draw
    again = _draw(s)
    assert np.array_equal(again.train_indices, idx) and np.array_equal(again.train_semi_labels, semi)
    assert again.summary == draw.summary


def _medium_setup():
    rng = np.random.default_rng(123)
    train = rng.permutation(np.repeat(np.arange(10), 300))
    test = np.repeat(np.arange(10), 20)
    return train, test


def test_different_seeds_give_different_draws():
    train, test = _medium_setup()
    draws = [
        sample_image_scenario(train, test, normal_classes=0, known_anomaly_classes=[1], gamma_l=0.05,
                              gamma_p=0.1, rng=np.random.default_rng(seed), seed=seed)
        for seed in range(5)
    ]
    for a in range(5):
        for b in range(a + 1, 5):
            assert not np.array_equal(draws[a].train_indices, draws[b].train_indices)
    # same counts every time: only which samples differs
    assert len({json.dumps(d.summary["train"]) for d in draws}) == 1


def test_pollution_is_drawn_from_all_anomaly_classes_including_known():
    rng = np.random.default_rng(0)
    train = rng.permutation(np.repeat(np.arange(10), 1000))
    test = np.arange(10)
    # 900 unlabeled normals... gamma_p = .5 -> 1000 pollution over nine classes of 1000 each
    draw = sample_image_scenario(train, test, normal_classes=[0], known_anomaly_classes=[1], gamma_l=0.05,
                                 gamma_p=0.5, rng=np.random.default_rng(1))
    cls = train[draw.train_indices]
    pollution_classes = cls[(draw.train_semi_labels == 0) & (cls != 0)]
    counts = np.bincount(pollution_classes, minlength=10)
    assert counts[0] == 0 and np.all(counts[1:] > 0)
    # uniform over samples: each class gets about 1/9 (binomial sd ~ 10), known class 1 a bit less
    assert np.all(np.abs(counts[2:] - 1000 / 9) < 50)
    # the known class still polluted, but never with a sample that is also labeled
    labeled = draw.train_indices[draw.train_semi_labels == -1]
    assert counts[1] > 0 and set(train[labeled].tolist()) == {1}


def test_paper_example_mnist_like_counts_exact():
    # MNIST class sizes; class 0 normal, class 1 known, gamma_l .05, gamma_p .1
    sizes = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    train = np.repeat(np.arange(10), sizes)
    test = np.repeat(np.arange(10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    draw = sample_image_scenario(train, test, normal_classes=0, known_anomaly_classes=[1], gamma_l=0.05,
                                 gamma_p=0.1, rng=np.random.default_rng(0), seed=0)
    t = draw.summary["train"]
    # pollution R(.1 * 5923 / .9) = R(658.11) = 658; n = 6581; m = R(.05 * 6581 / .95) = R(346.37) = 346
    assert (t["unlabeled_normal"], t["pollution"], t["unlabeled"], t["labeled_anomaly"], t["total"]) == (5923, 658, 6581, 346, 6927)
    assert draw.summary["test"] == {"total": 10000, "normal": 980, "anomaly": 9020}


def test_rounding_is_half_up_and_exact():
    assert round_half_up(Fraction(1, 2)) == 1 and round_half_up(Fraction(3, 2)) == 2
    assert round_half_up(Fraction(5, 2)) == 3 and round_half_up(Fraction(-1, 2)) == 0
    # 0.2 * 2 / 0.8 = 0.5 exactly; in floats it is 0.5000000000000001 or less - never mind
    assert count_from_share(0.2, 2) == 1
    assert count_from_share(0.2, 6) == 2
    assert count_from_share(0.2, 10) == 3
    assert count_from_share(0.0, 1000) == 0
    assert count_from_share(0.5, 7) == 7


def test_k_l_zero_draws_no_labeled_anomalies():
    train, test = _medium_setup()
    draw = sample_image_scenario(train, test, normal_classes=3, known_anomaly_classes=[], gamma_l=0.05,
                                 gamma_p=0.1, rng=np.random.default_rng(0))
    assert not np.any(draw.train_semi_labels == -1)
    assert draw.summary["train"]["pollution"] == count_from_share(0.1, 300)


def test_labeled_normals_share():
    train, test = _medium_setup()
    draw = sample_image_scenario(train, test, normal_classes=[0, 1], known_anomaly_classes=[2], gamma_l=0.1,
                                 gamma_p=0.0, ratio_labeled_normal=0.25, rng=np.random.default_rng(0))
    t = draw.summary["train"]
    assert t["labeled_normal"] == 150 and t["unlabeled_normal"] == 450
    assert t["labeled_anomaly"] == count_from_share(0.1, 600)
    assert set(train[draw.train_indices[draw.train_semi_labels == 1]].tolist()) <= {0, 1}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gamma_l": 1.0}, r"gamma_l must be in \[0.0, 1.0\)"),
        ({"gamma_l": -0.1}, r"gamma_l must be in"),
        ({"gamma_p": 1.5}, r"gamma_p must be in"),
        ({"gamma_p": float("nan")}, r"gamma_p must be in"),
        ({"ratio_labeled_normal": 1.0}, r"ratio_labeled_normal must be in"),
        ({"normal_classes": 11}, r"normal class 11 is not in the data; classes present: \[0, 1"),
        ({"known_anomaly_classes": [0]}, r"known anomaly class 0 is also a normal class"),
        ({"known_anomaly_classes": [42]}, r"known anomaly class 42 is not in the data"),
        ({"known_anomaly_classes": [1, 1]}, r"lists a class twice"),
        ({"gamma_l": 0.9}, r"not enough labeled anomalies: requested 2997, available 300"),
        ({"gamma_p": 0.95, "gamma_l": 0.0}, r"not enough polluting anomalies: requested 5700, available 2700"),
        ({"rng": 0}, r"rng must be a numpy.random.Generator"),
    ],
)
def test_image_scenario_bad_input(kwargs, message):
    train, test = _medium_setup()
    args = {"normal_classes": 0, "known_anomaly_classes": [1], "gamma_l": 0.05, "gamma_p": 0.1,
            "rng": np.random.default_rng(0)}
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=message):
        sample_image_scenario(train, test, **args)


def test_pollution_shortfall_counts_labeled_anomalies_out():
    # normal 0 has 100; anomalies: class 1 with 30. gamma_l .1 -> m = R(.1*(100+p)/.9); gamma_p .2 -> p = 25
    train = np.repeat([0, 1], [100, 30])
    with pytest.raises(InvalidInputError, match=r"polluting anomalies: requested 25, available 16"):
        sample_image_scenario(train, train, normal_classes=0, known_anomaly_classes=[1], gamma_l=0.1,
                              gamma_p=0.2, rng=np.random.default_rng(0))


# --- ODDS ---------------------------------------------------------------------------

@st.composite
def odds_setups(draw):
    n = draw(st.integers(1, 300))
    n_anomaly = draw(st.integers(0, n))
    order_seed = draw(st.integers(0, 2**32 - 1))
    y = np.random.default_rng(order_seed).permutation(np.r_[np.zeros(n - n_anomaly, int), np.ones(n_anomaly, int)])
    return {
        "y": y, "gamma_l": draw(st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.3])),
        "gamma_p": draw(st.sampled_from([0.0, 0.0, 0.02, 0.1])),
        "test_fraction": draw(st.sampled_from([0.4, 0.4, 0.25, 0.5])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@SETTINGS
@given(odds_setups())
def test_odds_scenario_properties(s):
    y = s["y"]
    n0, n1 = int((y == 0).sum()), int((y == 1).sum())
    tf = Fraction(str(s["test_fraction"]))
    t0, t1 = math.floor(tf * n0 + Fraction(1, 2)), math.floor(tf * n1 + Fraction(1, 2))
    tr0, tr1 = n0 - t0, n1 - t1
    p = count_from_share(s["gamma_p"], tr0)
    m = count_from_share(s["gamma_l"], tr0 + p)
    kwargs = dict(gamma_l=s["gamma_l"], gamma_p=s["gamma_p"], test_fraction=s["test_fraction"], seed=s["seed"])
    if m + p > tr1:
        event("pool too small")
        with pytest.raises(InvalidInputError, match=rf"requested {m + p}, available {tr1}"):
            sample_odds_scenario(y, rng=np.random.default_rng(s["seed"]), **kwargs)
        return
    draw = sample_odds_scenario(y, rng=np.random.default_rng(s["seed"]), **kwargs)
    train, semi, test = draw.train_indices, draw.train_semi_labels, draw.test_indices
    # disjoint, no duplicates, inside the data
    assert np.intersect1d(train, test).size == 0
    assert np.unique(train).size == train.size and np.unique(test).size == test.size
    assert train.size == 0 or (train.min() >= 0 and train.max() < y.size)
    # stratified split with the documented rounding
    assert int((y[test] == 0).sum()) == t0 and int((y[test] == 1).sum()) == t1
    assert np.array_equal(draw.test_ground_truth, y[test].astype(np.int8))
    # all training normals unlabeled; anomalies: m labeled, p polluting, the rest dropped
    assert np.all(semi[y[train] == 0] == 0) and int((y[train] == 0).sum()) == tr0
    assert int((semi == -1).sum()) == m and np.all(y[train[semi == -1]] == 1)
    assert int(((semi == 0) & (y[train] == 1)).sum()) == p
    assert draw.summary["train"]["dropped_anomaly"] == tr1 - m - p
    assert abs(m - _nearest(s["gamma_l"], tr0 + p)) <= 0.5 + 1e-9
    # reproducible
    again = sample_odds_scenario(y, rng=np.random.default_rng(s["seed"]), **kwargs)
    assert np.array_equal(again.train_indices, train) and np.array_equal(again.test_indices, test)
    json.dumps(draw.summary)


def test_odds_arrhythmia_like_counts_and_seeds():
    y = np.r_[np.zeros(386, int), np.ones(66, int)]
    a = sample_odds_scenario(y, gamma_l=0.01, rng=np.random.default_rng(0), seed=0)
    b = sample_odds_scenario(y, gamma_l=0.01, rng=np.random.default_rng(1), seed=1)
    assert a.summary["split"] == {"train_normal": 232, "train_anomaly": 40, "test_normal": 154, "test_anomaly": 26}
    assert a.summary["train"]["labeled_anomaly"] == 2  # R(.01 * 232 / .99) = R(2.34)
    assert not np.array_equal(a.test_indices, b.test_indices)


def test_odds_half_rounds_up_and_bad_input():
    y = np.r_[np.zeros(3, int), np.ones(3, int)]
    draw = sample_odds_scenario(y, gamma_l=0.0, test_fraction=0.5, rng=np.random.default_rng(0))
    assert draw.summary["split"]["test_normal"] == 2 and draw.summary["split"]["test_anomaly"] == 2
    with pytest.raises(InvalidInputError, match="ground_truth must hold 0"):
        sample_odds_scenario(np.array([0, 2]), gamma_l=0.0, rng=np.random.default_rng(0))
    with pytest.raises(InvalidInputError, match=r"test_fraction must be in \(0.0, 1.0\)"):
        sample_odds_scenario(y, gamma_l=0.0, test_fraction=1.0, rng=np.random.default_rng(0))


def test_draw_known_classes():
    a = draw_known_classes(range(1, 10), 3, np.random.default_rng(0))
    assert len(a) == 3 and len(set(a)) == 3 and set(a) <= set(range(1, 10)) and list(a) == sorted(a)
    assert a == draw_known_classes(range(1, 10), 3, np.random.default_rng(0))
    assert draw_known_classes(range(1, 10), 0, np.random.default_rng(0)) == ()
    seen = {draw_known_classes(range(1, 10), 1, np.random.default_rng(s))[0] for s in range(60)}
    assert seen == set(range(1, 10))
    with pytest.raises(InvalidInputError, match="requested 10, available 9"):
        draw_known_classes(range(1, 10), 10, np.random.default_rng(0))
