"""The method registry: names, parameter checks, hybrids."""

from __future__ import annotations

import pytest

from deepsad.baselines import Hybrid, OCSVM
from deepsad.errors import InvalidInputError
from deepsad.methods import make_detector, method_names, parameter_names, uses_labels


def test_every_method_of_the_paper_has_a_name():
    assert set(method_names()) == {
        "deepsad", "deepsvdd", "ocsvm", "iforest", "kde", "ssad", "cae", "supervised", "ssdgm",
        "hybrid-ocsvm", "hybrid-iforest", "hybrid-kde", "hybrid-ssad",
        "devnet",  # not in the paper: Pang et al., KDD 2019
    }


def test_make_detector_passes_parameters_and_turns_lists_into_tuples():
    est = make_detector("deepsad", {"eta": 2.0, "lr_milestones": [10, 20]})
    assert est.eta == 2.0 and est.lr_milestones == (10, 20)
    assert isinstance(make_detector("ocsvm", {"nu": 0.2}), OCSVM)


def test_hybrid_names_fix_the_shallow_method():
    est = make_detector("hybrid-kde", {"shallow_params": {"bandwidth": 1.0}})
    assert isinstance(est, Hybrid) and est.shallow == "kde"
    assert "shallow" not in parameter_names("hybrid-kde")
    with pytest.raises(InvalidInputError, match="unknown parameter"):
        make_detector("hybrid-kde", {"shallow": "ocsvm"})


def test_unknown_method_and_parameter_are_named_with_the_valid_ones():
    with pytest.raises(InvalidInputError, match="unknown method 'deep-sad'; known methods: .*deepsad"):
        make_detector("deep-sad")
    with pytest.raises(InvalidInputError, match=r"unknown parameter\(s\) etta for method 'deepsad'; valid: .*eta"):
        make_detector("deepsad", {"etta": 1.0})


def test_which_methods_use_labels():
    assert uses_labels("deepsad") and uses_labels("ssad") and uses_labels("hybrid-ssad") and uses_labels("devnet")
    assert not uses_labels("deepsvdd") and not uses_labels("ocsvm") and not uses_labels("cae")


def test_label_use_is_a_class_attribute_of_each_detector():
    from deepsad.baselines import SHALLOW_METHODS
    from deepsad.methods import detector_class

    using = {name for name in method_names() if uses_labels(name)}
    assert using == {"deepsad", "ssad", "supervised", "ssdgm", "hybrid-ssad", "devnet"}
    for name in method_names():
        if name.startswith("hybrid-"):  # a hybrid uses labels where its shallow method does
            assert uses_labels(name) is SHALLOW_METHODS[name.removeprefix("hybrid-")].uses_semi_labels
        else:
            assert uses_labels(name) is detector_class(name).uses_semi_labels


def test_importing_the_method_table_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, deepsad.methods; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
