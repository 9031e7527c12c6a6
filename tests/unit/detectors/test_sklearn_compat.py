"""scikit-learn's own estimator checks for both deep detectors (tiny schedules)."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from deepsad import DeepSAD, DeepSVDD

from helpers import FLOAT32_REASON, semi_label_expected_failures

TINY = dict(epochs=1, pretrain_epochs=1, batch_size=32, random_state=0)


def _expected_failures(estimator) -> dict[str, str]:
    """Deep SAD's y is the semi-label vector (+1 / -1 / 0), not a class vector: the checks
    that feed arbitrary class labels (e.g. 0..2 or strings) are refused by design. Scores
    of both come from float32 matrix products, whose rounding depends on how many rows are
    multiplied together (the subset-invariance check)."""
    if isinstance(estimator, DeepSAD):
        return semi_label_expected_failures()
    return {"check_methods_subset_invariance": FLOAT32_REASON}


def test_deep_sad_passes_the_label_feeding_checks_with_semi_labels():
    """The checks above that only fail on y: the same calls with valid semi-labels work."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = rng.choice([-1, 0, 1], size=30)
    est = DeepSAD(**TINY)
    assert est.fit(X, y) is est
    assert est.fit_predict(X, y).shape == (30,)
    assert est.get_params()["epochs"] == 1


# scikit-learn feeds 0/1 class labels: exactly the PyOD-style pattern DeepSAD warns about
@pytest.mark.filterwarnings("ignore::deepsad.validation.SemiLabelConventionWarning")
@parametrize_with_checks(
    [DeepSAD(**TINY), DeepSVDD(**TINY), DeepSVDD(objective="soft-boundary", **TINY)],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
