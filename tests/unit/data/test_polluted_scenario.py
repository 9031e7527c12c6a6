"""The tabular keep-all ("polluted") draw: counts, disjointness, the shared split, errors."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepsad.data.scenarios import sample_odds_scenario
from deepsad.errors import InvalidInputError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def setups(draw):
    n = draw(st.integers(1, 300))
    n_anomaly = draw(st.integers(0, n))
    order = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y = order.permutation(np.r_[np.zeros(n - n_anomaly, int), np.ones(n_anomaly, int)])
    return {
        "y": y,
        "fraction": draw(st.sampled_from([0.0, 0.01, 0.1, 0.1, 0.25, 0.5, 1.0])),
        "test_fraction": draw(st.sampled_from([0.4, 0.4, 0.25])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _polluted(y, fraction, seed, test_fraction=0.4):
    return sample_odds_scenario(y, gamma_l=0.0, test_fraction=test_fraction, keep_all_anomalies=True,
                                labeled_anomaly_fraction=fraction, rng=np.random.default_rng(seed), seed=seed)


@SETTINGS
@given(setups())
def test_keep_all_properties(s):
    y, fraction = s["y"], s["fraction"]
    draw = _polluted(y, fraction, s["seed"], s["test_fraction"])
    train, semi, test = draw.train_indices, draw.train_semi_labels, draw.test_indices
    # every sample is in exactly one of train and test
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.sort(np.r_[train, test]), np.arange(y.size))
    anomalies_train = int((y[train] == 1).sum())
    expected = math.floor(Fraction(str(fraction)) * anomalies_train + Fraction(1, 2))
    if fraction > 0 and anomalies_train > 0:
        expected = max(expected, 1)
    labeled = semi == -1
    assert int(labeled.sum()) == expected and np.all(y[train[labeled]] == 1)
    # all the rest unlabeled: normals and the other anomalies
    assert np.all(semi[~labeled] == 0) and not np.any(semi == 1)
    t = draw.summary["train"]
    assert t["labeled_anomaly"] == expected and t["pollution"] == anomalies_train - expected
    assert t["dropped_anomaly"] == 0 and t["total"] == train.size
    assert t["unlabeled"] == train.size - expected
    assert draw.summary["parameters"]["keep_all_anomalies"] is True
    assert draw.summary["parameters"]["labeled_anomaly_fraction"] == fraction
    # the clean draw of the same seed has the same test set, and its labeled anomalies
    # are among the polluted draw's training anomalies
    clean_kwargs = dict(gamma_l=0.0, test_fraction=s["test_fraction"], rng=np.random.default_rng(s["seed"]))
    clean = sample_odds_scenario(y, **clean_kwargs)
    assert np.array_equal(clean.test_indices, test)
    assert np.array_equal(clean.test_ground_truth, draw.test_ground_truth)
    assert set(clean.train_indices) <= set(train)
    json.dumps(draw.summary)


def test_same_split_and_nested_labels_as_the_clean_draw():
    y = np.r_[np.zeros(1655, int), np.ones(176, int)]  # cardio's class sizes
    clean = sample_odds_scenario(y, gamma_l=0.01, rng=np.random.default_rng(3))
    polluted = _polluted(y, 0.1, 3)
    assert np.array_equal(clean.test_indices, polluted.test_indices)
    # 106 training anomalies: 11 labeled (R(10.6)), 95 unlabeled; 993 normals unlabeled
    assert polluted.summary["train"]["labeled_anomaly"] == 11 and polluted.summary["train"]["pollution"] == 95
    assert polluted.train_indices.size == 993 + 106
    assert polluted.summary["train"]["realized_gamma_p"] == pytest.approx(95 / (993 + 95))
    labeled_clean = set(clean.train_indices[clean.train_semi_labels == -1])
    labeled_polluted = set(polluted.train_indices[polluted.train_semi_labels == -1])
    assert len(labeled_clean) == 10 and labeled_clean <= labeled_polluted
    # the clean summary names no keep-all parameter (stored summaries stay as they were)
    assert set(clean.summary["parameters"]) == {"gamma_l", "gamma_p", "test_fraction"}


def test_at_least_one_label_half_up_and_none_without_anomalies():
    y = np.r_[np.zeros(50, int), np.ones(4, int)]  # 2 training anomalies after a 50:50 split
    assert _polluted(y, 0.1, 0, test_fraction=0.5).summary["train"]["labeled_anomaly"] == 1  # R(0.2) = 0 -> 1
    assert _polluted(y, 0.25, 0, test_fraction=0.5).summary["train"]["labeled_anomaly"] == 1  # R(0.5) = 1
    assert _polluted(y, 0.75, 0, test_fraction=0.5).summary["train"]["labeled_anomaly"] == 2  # R(1.5) = 2
    assert _polluted(y, 0.0, 0, test_fraction=0.5).summary["train"]["labeled_anomaly"] == 0
    only_normal = _polluted(np.zeros(20, int), 0.1, 0)
    assert only_normal.summary["train"]["labeled_anomaly"] == 0 and only_normal.train_indices.size == 12


@pytest.mark.parametrize("kwargs, message", [
    ({"keep_all_anomalies": True}, "keep_all_anomalies needs labeled_anomaly_fraction"),
    ({"labeled_anomaly_fraction": 0.1}, "labeled_anomaly_fraction applies only with keep_all_anomalies=True"),
    ({"keep_all_anomalies": True, "labeled_anomaly_fraction": 0.1, "gamma_l": 0.01}, "gamma_l and gamma_p must be 0"),
    ({"keep_all_anomalies": True, "labeled_anomaly_fraction": 0.1, "gamma_p": 0.1}, "gamma_l and gamma_p must be 0"),
    ({"keep_all_anomalies": True, "labeled_anomaly_fraction": 1.5}, r"labeled_anomaly_fraction must be in \[0.0, 1.0\]"),
    ({"keep_all_anomalies": "yes", "labeled_anomaly_fraction": 0.1}, "keep_all_anomalies must be True or False"),
])
def test_contradictions_are_clear_errors(kwargs, message):
    y = np.r_[np.zeros(20, int), np.ones(5, int)]
    kwargs = {"gamma_l": 0.0, **kwargs}
    with pytest.raises(InvalidInputError, match=message):
        sample_odds_scenario(y, rng=np.random.default_rng(0), **kwargs)


def test_a_clean_draw_short_of_anomalies_labels_all_of_them_only_when_asked():
    """smtp-like: 1% of the training set is more than the training anomalies there are."""
    import numpy as np
    import pytest

    from deepsad.data.scenarios import sample_odds_scenario
    from deepsad.errors import InvalidInputError

    truth = np.zeros(5000, dtype=np.int64)
    truth[:20] = 1  # 12 training anomalies after the 60:40 split; gamma_l = .01 asks for 30
    with pytest.raises(InvalidInputError, match="not enough training anomalies"):
        sample_odds_scenario(truth, gamma_l=0.01, rng=np.random.default_rng(0))
    draw = sample_odds_scenario(truth, gamma_l=0.01, label_available_if_short=True, rng=np.random.default_rng(0))
    train = draw.summary["train"]
    assert train["labeled_anomaly"] == 12 and train["labeled_shortfall"] == 18 and train["pollution"] == 0
    assert int((draw.train_semi_labels == -1).sum()) == 12
    # the same split as without the option, and nothing changes where the anomalies suffice
    enough = np.zeros(5000, dtype=np.int64)
    enough[:200] = 1
    plain = sample_odds_scenario(enough, gamma_l=0.01, rng=np.random.default_rng(1))
    lenient = sample_odds_scenario(enough, gamma_l=0.01, label_available_if_short=True, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(plain.train_indices, lenient.train_indices)
    np.testing.assert_array_equal(plain.train_semi_labels, lenient.train_semi_labels)
    assert "labeled_shortfall" not in lenient.summary["train"]
