"""Ground truth in PyOD's convention (1 = anomaly) passed to DeepSAD.fit is flagged, not read silently.

deepsad reads +1 as a labeled *normal*; labels of only 0 and 1 with 1 the minority are
almost always PyOD-style ground truth, which would train an inverted model.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from deepsad import DeepSAD
from deepsad.validation import SemiLabelConventionWarning, warn_if_anomaly_labels_look_like_normals


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    X[:6] += 4.0
    return X


def _fast() -> DeepSAD:
    return DeepSAD(epochs=1, n_networks=1, batch_size=60, random_state=0)


@pytest.mark.parametrize(
    "labels",
    [
        [0] * 9 + [1],  # PyOD ground truth: one anomaly in ten
        [0] * 6 + [1] * 4,
        [0.0] * 9 + [1.0],  # floats read the same way
        [False] * 9 + [True],
    ],
)
def test_zero_one_labels_with_one_the_minority_warn(labels):
    semi = np.asarray(labels).astype(np.int8)
    with pytest.warns(SemiLabelConventionWarning) as record:
        warn_if_anomaly_labels_look_like_normals(semi, estimator="DeepSAD")
    message = str(record[0].message)
    assert "deepsad.pyod" in message and "-1" in message and "labeled NORMAL" in message
    assert issubclass(record[0].category, UserWarning)


@pytest.mark.parametrize(
    "labels",
    [
        [0] * 8 + [-1, 1],  # deepsad's convention: a -1 is there
        [0] * 9 + [-1],
        [1] * 9 + [0],  # labeled normals in the majority: a legitimate semi-label
        [1] * 5 + [0] * 5,  # as many labeled normals as unlabeled: not "1 the minority"
        [1] * 10,
        [0] * 10,  # all unlabeled
    ],
)
def test_deepsad_conventions_do_not_warn(labels):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_anomaly_labels_look_like_normals(np.asarray(labels, dtype=np.int8), estimator="DeepSAD")


def test_fit_with_pyod_ground_truth_warns_at_the_users_call(data):
    y = np.zeros(len(data), dtype=np.int64)
    y[:6] = 1  # the anomalies, PyOD style
    with pytest.warns(SemiLabelConventionWarning, match=r"deepsad\.pyod") as record:
        model = _fast().fit(data, y)
    # the warning points at this line's file, not at deepsad's internals
    assert record[0].filename == __file__
    # the labels were still read deepsad's way (the warning changes nothing else)
    assert model.n_labeled_normal_ == 6 and model.n_labeled_anomaly_ == 0


@pytest.mark.parametrize("kind", ["anomalies", "normals_majority", "none"])
def test_fit_with_deepsad_labels_is_silent(data, kind):
    if kind == "none":
        y = None
    elif kind == "anomalies":
        y = np.zeros(len(data), dtype=np.int64)
        y[:3] = -1
        y[20:30] = 1
    else:
        y = np.ones(len(data), dtype=np.int64)
        y[:6] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", SemiLabelConventionWarning)
        _fast().fit(data, y)


def test_the_warning_can_be_silenced_by_category(data):
    y = np.zeros(len(data), dtype=np.int64)
    y[10:14] = 1  # really four labeled normals
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=SemiLabelConventionWarning)
        model = _fast().fit(data, y)
    assert model.n_labeled_normal_ == 4
