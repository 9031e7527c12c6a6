"""SS-DGM (Kingma et al., 2014; M2 and M1+M2), the Deep SAD paper's semi-supervised generative baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

import deepsad
from deepsad.baselines import DEEP_BASELINES, SSDGM
from deepsad.baselines.ssdgm import ANOMALY, labeled_bound, m2_objective, unlabeled_bound
from deepsad.errors import InvalidInputError
from deepsad.models import LeNetSpec, MLPSpec

# few epochs at a 10x learning rate keep the file fast on a shared CPU
FAST = {"epochs": 8, "lr": 1e-3, "lr_milestones": (5,), "batch_size": 50, "device": "cpu"}

LOG_2PI = math.log(2.0 * math.pi)


@pytest.fixture(scope="module")
def m2(data):
    X, y = data
    return SSDGM(standardize=True, random_state=0, **FAST).fit(X, y)


@pytest.fixture(scope="module")
def m1m2(data):
    X, y = data
    return SSDGM(variant="m1+m2", standardize=True, random_state=0, **FAST).fit(X, y)


def _t(rows):
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------------------- the bounds by hand
def test_labeled_bound_gaussian_by_hand():
    # x = (1, 0), decoder mean (0.5, 0.5), q(z|x,y) = N((0, 1), diag(1, 2)), p(y) = 1/2
    x, output = _t([[1.0, 0.0]]), _t([[0.5, 0.5]])
    mean, logvar = _t([[0.0, 1.0]]), _t([[0.0, math.log(2.0)]])
    log_px = -0.5 * (0.25 + 0.25) - LOG_2PI  # unit-variance Gaussian, constant kept
    kl = 0.5 * ((1 + 0 - 1 - 0) + (2 + 1 - 1 - math.log(2.0)))  # per latent coordinate
    expected = log_px + math.log(0.5) - kl
    bound = labeled_bound(x, output, mean, logvar, math.log(0.5), likelihood="gaussian")
    assert bound.shape == (1,)
    assert bound.item() == pytest.approx(expected, abs=1e-12)
    assert bound.item() == pytest.approx(-1.25 - LOG_2PI - 0.5 * math.log(2.0), abs=1e-12)


def test_labeled_bound_bernoulli_by_hand():
    # logits (0, log 3) are probabilities (1/2, 3/4); x = (1, 0) has likelihood 1/2 * 1/4
    x, output = _t([[1.0, 0.0], [0.0, 1.0]]), _t([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    mean, logvar = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64)  # KL = 0
    log_prior = _t([0.0, math.log(0.25)])
    bound = labeled_bound(x, output, mean, logvar, log_prior, likelihood="bernoulli")
    np.testing.assert_allclose(
        bound.numpy(), [math.log(0.5 * 0.25), math.log(0.5 * 0.75) + math.log(0.25)], rtol=1e-12
    )


def test_unlabeled_bound_by_hand():
    # q(y|x) = softmax(0, log 3) = (1/4, 3/4); -L = (-3, -5)
    bounds, logits = _t([[-3.0, -5.0]]), _t([[0.0, math.log(3.0)]])
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    expected = 0.25 * -3.0 + 0.75 * -5.0 + entropy
    assert unlabeled_bound(bounds, logits).item() == pytest.approx(expected, abs=1e-12)


def test_unlabeled_bound_marginalises_the_labeled_bounds():
    # U(x) = sum_y q(y|x) (-L(x, y)) + H(q(y|x)), with -L from labeled_bound for both classes
    x = _t([[1.0, 0.0], [0.2, -0.4]])
    # per class: decoder output, q-mean, q-log-variance
    q_params = {
        0: (_t([[0.5, 0.5], [0.0, 0.0]]), _t([[0.0, 1.0], [0.3, 0.0]]), _t([[0.0, 0.5], [0.1, -0.2]])),
        1: (_t([[1.0, -0.5], [0.2, -0.1]]), _t([[0.2, 0.1], [0.0, -1.0]]), _t([[0.3, 0.0], [0.0, 0.0]])),
    }
    per_class = [
        labeled_bound(x, *q_params[c], math.log(0.5), likelihood="gaussian") for c in (0, 1)
    ]
    bounds = torch.stack(per_class, dim=1)  # (2 samples, 2 classes)
    logits = _t([[0.3, -1.2], [2.0, 0.5]])
    q = torch.softmax(logits, dim=1)
    expected = (q * bounds).sum(1) - (q * q.log()).sum(1)
    np.testing.assert_allclose(unlabeled_bound(bounds, logits).numpy(), expected.numpy(), rtol=1e-12)
    # the bound is tight, log sum_y exp(-L(x, y)), when q(y|x) is the model's posterior
    np.testing.assert_allclose(
        unlabeled_bound(bounds, bounds).numpy(), torch.logsumexp(bounds, dim=1).numpy(), rtol=1e-12
    )
    assert torch.all(unlabeled_bound(bounds, logits) <= torch.logsumexp(bounds, dim=1))


def test_m2_objective_by_hand():
    # sample 0: labeled anomaly; sample 1: unlabeled; sample 2: labeled normal
    bounds = _t([[-3.0, -5.0], [-2.0, -4.0], [-1.0, -6.0]])
    logits = _t([[0.0, math.log(3.0)], [math.log(3.0), 0.0], [0.0, 0.0]])
    classes = torch.tensor([ANOMALY, -1, 1 - ANOMALY])
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    per_sample = [
        5.0 + 2.0 * -math.log(0.75),  # L(x, anomaly) + weight * (-log q(anomaly | x))
        -(0.75 * -2.0 + 0.25 * -4.0 + entropy),  # U(x)
        1.0 + 2.0 * -math.log(0.5),
    ]
    loss = m2_objective(bounds, logits, classes, label_weight=2.0)
    assert loss.item() == pytest.approx(sum(per_sample) / 3, abs=1e-12)


# ---------------------------------------------------------------------------- training and scoring
def test_the_objective_improves_over_training(m2, m1m2):
    for model in (m2, m1m2):
        assert len(model.loss_history_) == FAST["epochs"]
        assert model.loss_history_[-1] < model.loss_history_[0]
    assert m2.m1_ is None and m2.m1_loss_history_ == []
    assert len(m1m2.m1_loss_history_) == FAST["epochs"]
    assert m1m2.m1_loss_history_[-1] < m1m2.m1_loss_history_[0]


def test_score_is_the_class_probability_of_anomaly_by_hand(data, m2):
    X, y = data
    X_std = (X - m2.scaler_mean_) / m2.scaler_scale_
    with torch.no_grad():
        logits = m2.m2_(torch.from_numpy(X_std.astype(np.float32))).double()
    expected = torch.softmax(logits, dim=1)[:, ANOMALY].numpy()
    scores = m2.anomaly_score(X)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-9)
    assert np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_allclose(m2.predict_proba(X).sum(axis=1), 1.0)
    assert m2.likelihood_ == "gaussian"  # standardized tabular data
    assert m2.alpha_ == pytest.approx(0.1 * X.shape[0])
    assert m2.threshold_ == 0.5  # contamination="auto": the classifier's own boundary
    assert scores[y == -1].mean() > scores[y != -1].mean()


def test_m1m2_scores_through_the_m1_latent_means(data, m1m2):
    X, _ = data
    X_std = torch.from_numpy(((X - m1m2.scaler_mean_) / m1m2.scaler_scale_).astype(np.float32))
    with torch.no_grad():
        codes, _ = m1m2.m1_.encoder(X_std)
        logits = m1m2.m2_(codes).double()
    assert codes.shape == (X.shape[0], m1m2.spec_.rep_dim)
    np.testing.assert_allclose(
        m1m2.anomaly_score(X), torch.softmax(logits, dim=1)[:, ANOMALY].numpy(), rtol=1e-6, atol=1e-9
    )


def test_images_use_a_bernoulli_likelihood_and_flattened_mlps():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(60, 1, 8, 8)).astype(np.float32)
    y = np.zeros(60, dtype=np.int64)
    y[:4] = -1
    est = SSDGM(network=MLPSpec(hidden_sizes=(16,), rep_dim=4), random_state=0, **FAST).fit(X, y)
    assert est.likelihood_ == "bernoulli"
    assert est.anomaly_score(X[:5]).shape == (5,)
    auto = SSDGM(random_state=0, **{**FAST, "epochs": 1}).fit(X, y)
    assert auto.spec_ == MLPSpec(hidden_sizes=(500,), rep_dim=50)  # Kingma et al.'s M2


def test_contamination_fraction_flags_that_share_of_training_scores(data):
    X, y = data
    est = SSDGM(contamination=0.1, standardize=True, random_state=0, **FAST).fit(X, y)
    assert np.mean(est.predict(X) == -1) == pytest.approx(0.1, abs=0.02)


def test_is_deterministic_given_random_state(data, m2, m1m2):
    X, y = data
    again = SSDGM(standardize=True, random_state=0, **FAST).fit(X, y)
    np.testing.assert_array_equal(again.anomaly_score(X), m2.anomaly_score(X))
    assert again.loss_history_ == m2.loss_history_
    again = SSDGM(variant="m1+m2", standardize=True, random_state=0, **FAST).fit(X, y)
    np.testing.assert_array_equal(again.anomaly_score(X), m1m2.anomaly_score(X))
    other = SSDGM(standardize=True, random_state=1, **FAST).fit(X, y)
    assert not np.allclose(other.anomaly_score(X), m2.anomaly_score(X))


@pytest.mark.parametrize("variant", ["m2", "m1+m2"])
def test_save_load_gives_identical_scores(tmp_path, data, m2, m1m2, variant):
    X, _ = data
    est = m2 if variant == "m2" else m1m2
    est.save(tmp_path / "ssdgm")
    loaded = deepsad.load(tmp_path / "ssdgm")
    assert type(loaded) is SSDGM
    assert loaded.get_params() == est.get_params() | {"device": "auto"}
    np.testing.assert_array_equal(loaded.anomaly_score(X), est.anomaly_score(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.loss_history_ == est.loss_history_
    assert loaded.m1_loss_history_ == est.m1_loss_history_
    assert (loaded.m1_ is None) == (variant == "m2")


def test_registered_as_a_deep_baseline(data):
    X, y = data
    assert DEEP_BASELINES["ssdgm"] is SSDGM
    est = clone(SSDGM(random_state=0, **FAST))
    assert set(np.unique(est.fit_predict(X, y))) <= {-1, 1}
    np.testing.assert_allclose(est.score_samples(X), -est.anomaly_score(X))


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("labels", ["none", "no anomalies"])
def test_refuses_labels_without_anomalies(data, labels):
    X, y = data
    y_bad = None if labels == "none" else np.where(y == -1, 1, y)
    with pytest.raises(InvalidInputError, match="at least one labeled anomaly"):
        SSDGM(**FAST).fit(X, y_bad)


def test_refuses_only_anomalies(data):
    X, _ = data
    with pytest.raises(InvalidInputError, match="every sample is a labeled anomaly"):
        SSDGM(**FAST).fit(X[:10], -np.ones(10, dtype=int))


def test_bad_data_and_labels_are_refused(data, m2):
    X, y = data
    X_nan = X.copy()
    X_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SSDGM(**FAST).fit(X_nan, y)
    with pytest.raises(InvalidInputError, match="other than -1"):
        SSDGM(**FAST).fit(X, np.where(y == -1, 2, y))
    with pytest.raises(InvalidInputError, match="labels but X has"):
        SSDGM(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError):
        SSDGM(**FAST).fit(X[:, 0], y)  # 1-D
    with pytest.raises(InvalidInputError, match="dimensions"):
        SSDGM(**FAST).fit(X.reshape(150, 1, 1, 2, 3), y)
    with pytest.raises(ValueError, match="features"):
        m2.anomaly_score(X[:, :4])  # fitted on 6 features


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"variant": "m3"}, "variant"),
        ({"network": LeNetSpec("mnist")}, "MLPSpec"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": "big"}, "alpha"),
        ({"prior": 1.5}, "prior"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"epochs": -1}, "epochs"),
    ],
)
def test_bad_parameters_are_refused(data, params, match):
    X, y = data
    with pytest.raises(InvalidInputError, match=match):
        SSDGM(**{**FAST, **params}).fit(X, y)


# ---------------------------------------------------------------------------- real data
# thyroid, stratified disjoint 60:40 split, gamma_l = 0.01, standardized (conftest's odds_split).
# 30 epochs at 3x the paper's rate (milestone 20) land where the paper's 150-epoch schedule
# does; measured AUCs for seeds 0, 1, 2: 0.995, 0.796, 0.981 (150 epochs, default schedule:
# 0.995, 0.793, 0.983; paper Table 6: 72.7 +- 12.0). SS-DGM's spread across seeds is large
# (its unlabeled bound assigns classes by generative fit, the cluster assumption), so the
# floors are on the mean of the three seeds and, more loosely, on each; a random scorer
# gives ~0.5 and an inverted score ~0.1.
_REAL = {"epochs": 30, "lr": 3e-4, "lr_milestones": (20,), "device": "cpu"}


@pytest.mark.slow
def test_auc_floor_on_thyroid(odds_split):
    aucs = []
    for seed in (0, 1, 2):
        split = odds_split("thyroid", seed=seed)
        est = SSDGM(random_state=seed, **_REAL).fit(split.X_train, split.semi_labels)
        aucs.append(roc_auc_score(split.y_test, est.anomaly_score(split.X_test)))
    assert np.mean(aucs) >= 0.78, aucs
    assert min(aucs) >= 0.6, aucs
