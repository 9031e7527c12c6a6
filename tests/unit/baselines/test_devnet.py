"""DevNet (Pang, Shen & van den Hengel, KDD 2019): loss, labels, real-data accuracy, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import _num_samples

import deepsad
from deepsad.persistence import weights_path
from deepsad.baselines import DEEP_BASELINES, DevNet
from deepsad.baselines.devnet import AUTO_Z_THRESHOLD, deviation_loss
from deepsad.errors import InvalidInputError
from deepsad.methods import detector_class, make_detector, method_names, uses_labels

from helpers import semi_label_expected_failures

# a short schedule for the synthetic tests (the paper's 50 x 20 batches of 512 is for real data)
FAST = {"epochs": 5, "batches_per_epoch": 10, "batch_size": 64, "device": "cpu"}


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return DevNet(standardize=True, random_state=0, **FAST).fit(X, y)


# ---------------------------------------------------------------------------- the loss
def test_deviation_loss_matches_a_hand_computation():
    # reference [0, 2]: mean 1, population std 1 (the unbiased std, sqrt 2, would give other numbers)
    reference = torch.tensor([0.0, 2.0])
    scores = torch.tensor([1.5, -1.0, 3.0, 7.0])  # dev = [0.5, -2, 2, 6]
    is_anomaly = torch.tensor([0.0, 0.0, 1.0, 1.0])
    # normals |dev|: 0.5, 2; anomalies max(0, 5 - dev): 3, 0
    assert deviation_loss(scores, is_anomaly, reference).item() == pytest.approx((0.5 + 2 + 3 + 0) / 4)
    # margin 1: anomalies max(0, 1 - dev): 0, 0
    assert deviation_loss(scores, is_anomaly, reference, margin=1.0).item() == pytest.approx((0.5 + 2) / 4)
    # bool targets, a reference with another scale: r = [1, 3, 5], mean 3, std sqrt(8/3)
    std = np.sqrt(8 / 3)
    dev = (np.array([3.0, 4.0]) - 3.0) / std
    expected = (abs(dev[0]) + max(0.0, 5.0 - dev[1])) / 2
    got = deviation_loss(torch.tensor([3.0, 4.0]), torch.tensor([False, True]), torch.tensor([1.0, 3.0, 5.0]))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_deviation_loss_pushes_anomalies_up_and_normals_to_the_reference_mean():
    scores = torch.tensor([2.0, 2.0], requires_grad=True)
    deviation_loss(scores, torch.tensor([0.0, 1.0]), torch.tensor([-1.0, 1.0])).backward()
    normal_grad, anomaly_grad = scores.grad.tolist()
    assert normal_grad > 0 and anomaly_grad < 0  # gradient descent lowers the normal, raises the anomaly


# ---------------------------------------------------------------------------- labels and parameters
@pytest.mark.parametrize("labels", ["none", "no anomalies", "only normals"])
def test_fit_refuses_without_labeled_anomalies(data, labels):
    X, y = data
    y_bad = {"none": None, "no anomalies": np.where(y == -1, 0, y), "only normals": np.ones_like(y)}[labels]
    with pytest.raises(InvalidInputError, match=r"DevNet needs labeled anomalies \(y == -1\)"):
        DevNet(**FAST).fit(X, y_bad)


def test_fit_refuses_bad_labels_and_all_anomalies(data):
    X, y = data
    with pytest.raises(InvalidInputError, match="other than -1"):
        DevNet(**FAST).fit(X, np.where(y == -1, 2, y))
    with pytest.raises(InvalidInputError, match="3 labels but X has 150"):
        DevNet(**FAST).fit(X, y[:3])
    with pytest.raises(InvalidInputError, match="every sample is a labeled anomaly"):
        DevNet(**FAST).fit(X, -np.ones_like(y))


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("hidden_sizes", (20, 0)),
        ("hidden_sizes", 20),
        ("margin", 0.0),
        ("n_reference", 1),
        ("batch_size", 1),
        ("batches_per_epoch", 0),
        ("lr", -1e-3),
        ("standardize", "yes"),
        ("contamination", 0.7),
    ],
)
def test_bad_parameters_are_refused_by_name(data, param, value):
    X, y = data
    with pytest.raises(InvalidInputError, match=param):
        DevNet(**{**FAST, param: value}).fit(X, y)


# ---------------------------------------------------------------------------- fitted model
def test_fit_trains_the_paper_network_and_ranks_labeled_anomalies_high(data, fitted):
    X, y = data
    linears = [m for m in fitted.network_.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 20), (20, 1)]
    assert len(fitted.loss_history_) == FAST["epochs"]
    assert fitted.loss_history_[-1] < 0.5 * fitted.loss_history_[0]
    scores = fitted.anomaly_score(X)
    assert scores.dtype == np.float64 and scores.shape == (150,)
    assert scores[y == -1].min() > np.percentile(scores[y != -1], 90)
    np.testing.assert_allclose(fitted.score_samples(X), -scores)
    # contamination="auto": the 95% quantile of the N(0, 1) prior
    assert fitted.threshold_ == pytest.approx(AUTO_Z_THRESHOLD) and AUTO_Z_THRESHOLD == pytest.approx(1.6448536)
    np.testing.assert_array_equal(fitted.predict(X), np.where(scores > AUTO_Z_THRESHOLD, -1, 1))


def test_a_contamination_fraction_flags_that_share_of_the_training_data(data):
    X, y = data
    est = DevNet(contamination=0.1, random_state=0, **FAST).fit(X, y)
    assert (est.predict(X) == -1).sum() == 15


def test_same_random_state_same_model_other_state_other_model_global_rng_untouched(data, fitted):
    X, y = data
    before = torch.get_rng_state()
    again = clone(fitted).fit(X, y)
    assert torch.equal(torch.get_rng_state(), before)
    np.testing.assert_array_equal(again.anomaly_score(X), fitted.anomaly_score(X))
    assert again.loss_history_ == fitted.loss_history_
    other = clone(fitted).set_params(random_state=1).fit(X, y)
    assert not np.allclose(other.anomaly_score(X), fitted.anomaly_score(X))


def test_save_load_gives_identical_scores(tmp_path, data, fitted):
    X, _ = data
    fitted.save(tmp_path / "devnet")
    loaded = deepsad.load(tmp_path / "devnet")
    assert type(loaded) is DevNet
    assert loaded.get_params() == fitted.get_params() | {"device": "auto"}
    np.testing.assert_array_equal(loaded.anomaly_score(X), fitted.anomaly_score(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    assert loaded.loss_history_ == fitted.loss_history_
    config = json.loads((tmp_path / "devnet" / "model.json").read_text())
    assert config["class"] == "DevNet" and config["params"]["hidden_sizes"] == [20]


def test_save_load_keeps_custom_hidden_sizes_and_refuses_a_changed_byte(tmp_path, data):
    X, y = data
    est = DevNet(hidden_sizes=(8, 4), random_state=0, **FAST).fit(X, y)
    est.save(tmp_path / "m")
    loaded = deepsad.load(tmp_path / "m")
    assert loaded.hidden_sizes == (8, 4) and loaded.scaler_mean_ is None
    np.testing.assert_array_equal(loaded.anomaly_score(X), est.anomaly_score(X))
    weights = weights_path(tmp_path / "m")
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 1
    weights.write_bytes(bytes(raw))
    with pytest.raises(deepsad.errors.ModelFileError, match="checksum"):
        deepsad.load(tmp_path / "m")


def test_registered_as_devnet():
    assert DEEP_BASELINES["devnet"] is DevNet and detector_class("devnet") is DevNet
    names = method_names()
    assert names.index("devnet") == names.index("supervised") + 1
    assert uses_labels("devnet")
    assert make_detector("devnet", {"hidden_sizes": [32, 16]}).hidden_sizes == (32, 16)


# ---------------------------------------------------------------------------- real data
@pytest.mark.slow
def test_cardio_auc_floor(cardio):
    """One split of cardio (seed 0, gamma_l = .01, 10 labeled anomalies), the paper's schedule.

    Measured (CPU, torch 2.13): test AUC 0.898 at random_state=0 (0.899 / 0.943 / 0.935 at
    1 / 2 / 3; splits 1-4: 0.977-0.993), fit ~1 s. The scores reversed (e.g. the loss's
    sign flipped) give 0.10 and a random scorer 0.5, so 0.85 catches a broken method.
    """
    est = DevNet(random_state=0, device="cpu").fit(cardio.X_train, cardio.semi_labels)
    assert int((cardio.semi_labels == -1).sum()) == est.n_labeled_anomaly_ > 0
    auc = roc_auc_score(cardio.y_test, est.anomaly_score(cardio.X_test))
    assert auc > 0.85, f"DevNet cardio test AUC {auc:.4f}"


# ---------------------------------------------------------------------------- scikit-learn's checks
class _FirstRowAnomalyDevNet(DevNet):
    """DevNet for scikit-learn's checks, which fit with ``y=None`` or with class labels
    0/1: DevNet needs a labeled anomaly, so when ``y`` holds none the first row becomes
    one (-1), the rest keep their labels (0 unlabeled, 1 labeled normal). Every other
    path (validation, training, scoring, threshold, cloning) is DevNet's own."""

    def fit(self, X, y=None):
        try:
            n_samples = _num_samples(X)
            labels = np.zeros(n_samples, dtype=np.int8) if y is None else np.array(y)
        except TypeError:  # not array-like: DevNet's own validation raises the error
            return super().fit(X, y)
        if n_samples >= 2 and labels.shape == (n_samples,) and labels.dtype.kind in "iuf" and not (labels == -1).any():
            labels[0] = -1
            y = labels
        return super().fit(X, y)


@parametrize_with_checks(
    [_FirstRowAnomalyDevNet(epochs=4, batches_per_epoch=10, batch_size=32, n_reference=500, random_state=0)],
    # y holds semi-labels: the checks feeding class labels fail by design
    expected_failed_checks=lambda est: semi_label_expected_failures(),
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
