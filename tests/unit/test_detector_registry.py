"""The detector registry: every savable class by the name model files store."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deepsad.baselines import DEEP_BASELINES, SHALLOW_METHODS
from deepsad.detector_registry import DETECTOR_CLASSES, detector_class_by_name, detector_class_names
from deepsad.detectors import DeepSAD, DeepSVDD
from deepsad.methods import detector_class, method_names


def test_every_detector_of_the_package_is_registered_under_its_class_name():
    # the classes persistence knew before the registry: Deep SAD, Deep SVDD and every baseline
    expected = {cls.__name__: cls for cls in (DeepSAD, DeepSVDD, *SHALLOW_METHODS.values(), *DEEP_BASELINES.values())}
    assert set(detector_class_names()) == set(expected)
    for name, cls in expected.items():
        assert detector_class_by_name(name) is cls
        assert DETECTOR_CLASSES[name] == cls.__module__


def test_every_method_resolves_through_the_registry():
    for name in method_names():
        assert detector_class(name).__name__ in DETECTOR_CLASSES


def test_an_unknown_class_name_is_a_key_error():
    with pytest.raises(KeyError):
        detector_class_by_name("Pickle")


def test_load_in_a_fresh_process_finds_the_class(tmp_path):
    # nothing but deepsad.load is imported before loading: the registry imports the class
    model = tmp_path / "model"
    SHALLOW_METHODS["iforest"](n_estimators=5, random_state=0).fit([[0.0], [1.0], [2.0], [3.0]]).save(model)
    code = (
        "import sys, deepsad\n"
        f"est = deepsad.load({str(model)!r})\n"
        "print(type(est).__name__, 'deepsad.baselines' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["IsolationForestDetector", "True"]
