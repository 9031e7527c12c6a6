"""``deepsad`` and ``deepsad.experiments`` load their heavy names on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import deepsad
import deepsad.experiments


def test_importing_the_packages_imports_no_torch():
    # a fresh process: this one has long imported torch
    script = "import sys, deepsad, deepsad.experiments; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(("package", "name"), [(deepsad, "load"), (deepsad.experiments, "read_results")])
def test_a_lazy_name_is_imported_once_and_then_a_plain_attribute(package, name):
    value = getattr(package, name)
    assert vars(package)[name] is value  # later reads never reach __getattr__
    assert name in dir(package)


@pytest.mark.parametrize("package", [deepsad, deepsad.experiments])
def test_an_unknown_name_is_an_attribute_error_naming_the_package(package):
    with pytest.raises(AttributeError, match=rf"module '{package.__name__}' has no attribute 'nope'"):
        package.nope  # noqa: B018


def test_dir_lists_the_public_names_before_they_are_loaded():
    assert set(deepsad.__all__) <= set(dir(deepsad))
    assert set(deepsad.experiments.__all__) <= set(dir(deepsad.experiments))
