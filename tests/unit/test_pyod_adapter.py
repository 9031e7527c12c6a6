"""deepsad.pyod: deepsad's detectors under PyOD's BaseDetector contract, checked with PyOD's own tools.

PyOD's conventions: ``fit(X, y)`` with 1 = labeled anomaly and 0 = unlabeled,
``decision_function`` higher = more anomalous, ``predict`` 0 / 1, ``threshold_`` the
``(1 - contamination)`` percentile of the training scores.
"""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.stats import rankdata

pytest.importorskip("pyod")

from pyod.models.base import BaseDetector  # noqa: E402
from pyod.models.iforest import IForest  # noqa: E402
from pyod.models.knn import KNN  # noqa: E402
from pyod.utils.data import evaluate_print, generate_data  # noqa: E402
from pyod.utils.utility import standardizer  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import deepsad  # noqa: E402
from deepsad import pyod as dpyod  # noqa: E402
from deepsad.errors import InvalidInputError  # noqa: E402
from deepsad.validation import SemiLabelConventionWarning  # noqa: E402

# tiny, CPU, few epochs: the data are easy (inliers a tight Gaussian, outliers uniform)
DEEP = dict(epochs=5, n_networks=2, batch_size=64, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def data():
    # X_train, X_test, y_train, y_test with 1 = anomaly, as PyOD generates them
    return generate_data(n_train=200, n_test=100, n_features=4, contamination=0.1, random_state=42)


@pytest.fixture(scope="module")
def deep_sad(data):
    X_train, _, y_train, _ = data
    return dpyod.DeepSAD(**DEEP).fit(X_train, y_train)


def _roc_from_evaluate_print(capsys, name, y, scores) -> float:
    evaluate_print(name, y, scores)
    printed = capsys.readouterr().out
    return float(re.search(r"ROC:([0-9.]+)", printed).group(1))


def test_adapters_are_pyod_detectors():
    for cls in (dpyod.DeepSAD, dpyod.DeepSVDD, dpyod.SSAD, dpyod.DevNet):
        assert issubclass(cls, BaseDetector)
        assert cls().contamination == 0.1  # PyOD's default, not deepsad's "auto"


def test_deep_sad_with_labels_scores_test_data_well(data, deep_sad, capsys):
    X_train, X_test, y_train, y_test = data
    assert _roc_from_evaluate_print(capsys, "DeepSAD", y_test, deep_sad.decision_function(X_test)) > 0.8
    # the labeled anomalies arrived as deepsad's -1, and 0 as unlabeled (not as labeled normals)
    assert deep_sad.detector_.n_labeled_anomaly_ == int(y_train.sum())
    assert deep_sad.detector_.n_labeled_normal_ == 0


def test_deep_svdd_without_labels_scores_test_data_well(data, capsys):
    X_train, X_test, _, y_test = data
    clf = dpyod.DeepSVDD(**DEEP).fit(X_train)
    assert _roc_from_evaluate_print(capsys, "DeepSVDD", y_test, clf.decision_function(X_test)) > 0.8
    assert _roc_from_evaluate_print(capsys, "DeepSVDD train", data[2], clf.decision_scores_) > 0.8


def test_decision_function_is_higher_for_anomalies_and_matches_training_scores(data, deep_sad):
    X_train, X_test, _, y_test = data
    scores = deep_sad.decision_function(X_test)
    assert scores[y_test == 1].mean() > scores[y_test == 0].mean()
    np.testing.assert_allclose(deep_sad.decision_function(X_train), deep_sad.decision_scores_, rtol=1e-6)
    # the opposite of the wrapped estimator's scikit-learn decision_function direction
    np.testing.assert_allclose(scores, deep_sad.detector_.anomaly_score(X_test), rtol=1e-6)


def test_threshold_labels_and_predict_follow_contamination(data, deep_sad):
    X_train, X_test, _, _ = data
    n = X_train.shape[0]
    assert deep_sad.threshold_ == pytest.approx(np.percentile(deep_sad.decision_scores_, 90.0))
    assert set(np.unique(deep_sad.labels_)) <= {0, 1}
    assert abs(deep_sad.labels_.mean() - 0.1) <= 1.0 / n
    np.testing.assert_array_equal(deep_sad.predict(X_train), deep_sad.labels_)
    assert set(np.unique(deep_sad.predict(X_test))) <= {0, 1}


def test_contamination_sets_the_threshold(data):
    X_train, _, y_train, _ = data
    clf = dpyod.DeepSAD(contamination=0.05, **DEEP).fit(X_train, y_train)
    assert abs(clf.labels_.mean() - 0.05) <= 1.0 / X_train.shape[0]
    assert clf.detector_.contamination == 0.05  # the wrapped estimator's own threshold agrees
    with pytest.raises(ValueError, match="contamination"):
        dpyod.DeepSAD(contamination=0.7)


def test_predict_proba_and_confidence(data, deep_sad):
    _, X_test, _, y_test = data
    for method in ("linear", "unify"):
        proba = deep_sad.predict_proba(X_test, method=method)
        assert proba.shape == (X_test.shape[0], 2)
        assert np.all((proba >= 0) & (proba <= 1))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert proba[y_test == 1, 1].mean() > proba[y_test == 0, 1].mean()
    confidence = deep_sad.predict_confidence(X_test)
    assert confidence.shape == (X_test.shape[0],) and np.all((confidence >= 0) & (confidence <= 1))
    labels, confidence2 = deep_sad.predict(X_test, return_confidence=True)
    np.testing.assert_array_equal(labels, deep_sad.predict(X_test))
    np.testing.assert_allclose(confidence2, confidence)


def test_labeled_anomalies_change_the_model():
    # anomalies a tight cluster inside the normal cloud: without labels nothing marks them
    # out, so whatever moves them up the ranking is the labels
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[180:] = 0.7 + 0.1 * rng.normal(size=(20, 4))
    y = np.zeros(200)
    y[180:190] = 1  # half the cluster labeled; 190: stays unlabeled
    params = dict(DEEP, epochs=10, lr=1e-3)
    unsupervised = dpyod.DeepSAD(**params).fit(X)
    semi = dpyod.DeepSAD(**params).fit(X, y)
    assert unsupervised.detector_.n_labeled_anomaly_ == 0
    assert semi.detector_.n_labeled_anomaly_ == 10 and semi.detector_.n_labeled_normal_ == 0

    def mean_rank(clf, rows):
        return float(rankdata(clf.decision_scores_)[rows].mean() / X.shape[0])

    assert mean_rank(unsupervised, slice(180, 200)) < 0.75
    assert mean_rank(semi, slice(180, 190)) > 0.85  # the labeled anomalies are pushed out
    assert mean_rank(semi, slice(190, 200)) > 0.8  # and their unlabeled neighbours with them
    assert semi.labels_[180:].sum() > unsupervised.labels_[180:].sum()


def test_ground_truth_labels_do_not_trigger_deepsads_convention_warning(data):
    X_train, _, y_train, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", SemiLabelConventionWarning)
        dpyod.DeepSAD(**DEEP).fit(X_train, y_train)


@pytest.mark.parametrize(
    "bad, shown",
    [
        ("minus_one", "-1"),  # deepsad's convention handed to the PyOD adapter
        ("two", "2"),
        ("half", "0.5"),
        ("nan", "nan"),
    ],
)
@pytest.mark.parametrize("cls", [dpyod.DeepSAD, dpyod.DeepSVDD, dpyod.DevNet])
def test_labels_other_than_zero_and_one_are_refused(data, cls, bad, shown):
    X_train, _, y_train, _ = data
    y = y_train.astype(float)
    y[0] = {"minus_one": -1, "two": 2, "half": 0.5, "nan": np.nan}[bad]
    with pytest.raises(InvalidInputError, match=r"1 \(labeled anomaly\) or 0 \(unlabeled\)") as caught:
        cls().fit(X_train, y)  # refused before any training
    assert shown in str(caught.value)
    if bad == "minus_one":
        assert "deepsad.DeepSAD" in str(caught.value)  # points to the -1 convention's home


def test_non_numeric_labels_are_refused(data):
    X_train = data[0]
    with pytest.raises(InvalidInputError, match="1 \\(labeled anomaly\\)"):
        dpyod.DeepSAD(**DEEP).fit(X_train, np.array(["a"] * X_train.shape[0]))


def test_devnet_needs_labeled_anomalies_and_uses_them(data, capsys):
    X_train, X_test, y_train, y_test = data
    with pytest.raises(InvalidInputError, match="pass y with 1"):
        dpyod.DevNet(epochs=2, random_state=0).fit(X_train)
    clf = dpyod.DevNet(epochs=5, random_state=0, device="cpu").fit(X_train, y_train)
    assert _roc_from_evaluate_print(capsys, "DevNet", y_test, clf.decision_function(X_test)) > 0.8


def test_ssad(data, capsys):
    pytest.importorskip("cvxopt")
    X_train, X_test, y_train, y_test = data
    clf = dpyod.SSAD().fit(X_train, y_train)
    assert clf.detector_.n_labeled_anomaly_ == int(y_train.sum())
    assert _roc_from_evaluate_print(capsys, "SSAD", y_test, clf.decision_function(X_test)) > 0.8


def test_inside_a_pyod_model_combination_loop(data):
    # PyOD's documented recipe: fit several detectors, standardize their scores, combine
    X_train, X_test, y_train, y_test = data
    detectors = [
        (dpyod.DeepSAD(**DEEP), y_train),
        (dpyod.DeepSVDD(**DEEP), None),
        (IForest(random_state=0), None),
        (KNN(), None),
    ]
    train_scores = np.zeros((X_train.shape[0], len(detectors)))
    test_scores = np.zeros((X_test.shape[0], len(detectors)))
    for i, (clf, y) in enumerate(detectors):
        clf.fit(X_train, y)
        train_scores[:, i] = clf.decision_scores_
        test_scores[:, i] = clf.decision_function(X_test)
    _, test_norm = standardizer(train_scores, test_scores)
    assert roc_auc_score(y_test, test_norm.mean(axis=1)) > 0.8
    try:  # PyOD's combination functions need the combo package
        from pyod.models import combination
    except ImportError:
        return
    for combine in (combination.average, combination.maximization, combination.median):
        assert roc_auc_score(y_test, combine(test_norm)) > 0.8
    assert roc_auc_score(y_test, combination.aom(test_norm, n_buckets=2)) > 0.8


def test_parameters_pass_through_and_get_set_params_clone_work():
    signature = inspect.signature(dpyod.DeepSAD)
    inner = set(inspect.signature(deepsad.DeepSAD).parameters)
    assert set(signature.parameters) == inner  # contamination replaced, nothing lost or added
    assert set(inspect.signature(dpyod.DeepSVDD).parameters) == set(inspect.signature(deepsad.DeepSVDD).parameters)
    clf = dpyod.DeepSAD(epochs=3, eta=2.0, contamination=0.2)
    params = clf.get_params()
    assert params["epochs"] == 3 and params["eta"] == 2.0 and params["contamination"] == 0.2
    assert params["lr"] == deepsad.DeepSAD().lr  # defaults are the wrapped estimator's
    clf.set_params(epochs=4, contamination=0.05)
    assert clf.epochs == 4 and clf.contamination == 0.05
    copy = clone(clf)
    assert copy is not clf and copy.get_params() == clf.get_params()
    assert "epochs=4" in repr(clf)
    with pytest.raises(TypeError, match="no_such"):
        dpyod.DeepSAD(no_such=1)
    with pytest.raises(ValueError, match="no_such"):
        clf.set_params(no_such=1)


def test_the_wrapped_estimator_gets_the_parameters(data):
    X_train, _, y_train, _ = data
    clf = dpyod.DeepSAD(**DEEP).fit(X_train, y_train)
    for name, value in DEEP.items():
        assert getattr(clf.detector_, name) == value
    assert clf.n_features_in_ == X_train.shape[1]


def test_scoring_before_fit_is_refused(data):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        dpyod.DeepSAD().decision_function(data[1])


@pytest.mark.slow
def test_importing_deepsad_does_not_import_pyod():
    code = (
        "import sys, deepsad, deepsad.detectors, deepsad.baselines\n"
        "assert not any(m == 'pyod' or m.startswith('pyod.') for m in sys.modules), 'pyod imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_without_pyod_the_import_error_says_how_to_install(monkeypatch):
    for name in list(sys.modules):
        if name == "pyod" or name.startswith("pyod."):
            monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: import fails
    monkeypatch.setitem(sys.modules, "pyod", None)
    monkeypatch.delitem(sys.modules, "deepsad.pyod")
    monkeypatch.delattr(deepsad, "pyod", raising=False)
    with pytest.raises(ImportError, match="pip install pyod"):
        importlib.import_module("deepsad.pyod")
