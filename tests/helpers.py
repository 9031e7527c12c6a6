"""Helpers shared by the test modules: ``from helpers import ...``.

Importable because pyproject's ``[tool.pytest.ini_options]`` puts ``tests/`` on
``sys.path`` (``pythonpath``). A module rather than ``conftest.py``: with several
``conftest.py`` files in the tree, ``from conftest import ...`` picks whichever one
pytest imported last.

* real data: :func:`data_root` and :func:`require_file` (skip, naming the path, when a
  file is absent);
* the scripts of ``benchmarks/`` and ``scripts/``, which are not packages:
  :func:`load_script`, :func:`benchmark_script`;
* scikit-learn's estimator checks: the checks that Deep SAD's semi-label ``y`` refuses
  by design, and why (used by every module that runs those checks).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"


# ----------------------------------------------------------------------------- real data
def data_root() -> Path:
    """The data root: ``$DEEPSAD_DATA`` if set, else ``shared/data`` beside the checkout (as in CI)."""
    env = os.environ.get("DEEPSAD_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def require_file(path: Path) -> Path:
    """Skip the calling test, naming the path, when a real data file is absent.

    Parameters
    ----------
    path : Path
        A file or folder under the data root.

    Returns
    -------
    Path
        ``path``, when it exists.
    """
    if not path.exists():
        pytest.skip(f"real data file not found: {path} (set DEEPSAD_DATA to the data root)")
    return path


# ----------------------------------------------------------------------------- scripts
def load_script(path: Path, name: str) -> ModuleType:
    """Import the script at ``path`` (``benchmarks/`` and ``scripts/`` are not packages) as ``name``.

    The module is registered in ``sys.modules`` under ``name`` before it runs: dataclasses
    resolve their annotations, and pickle finds functions, through it.

    Parameters
    ----------
    path : Path
        The script's file.
    name : str
        The module name to give it.

    Returns
    -------
    ModuleType
        The executed script.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


@contextmanager
def benchmark_script(name: str) -> Iterator[ModuleType]:
    """``benchmarks/<name>.py`` imported as the module ``name``, for the duration of the block.

    While the block runs, the benchmarks folder is on ``sys.path`` too, so that the script
    can import its sibling scripts and spawned worker processes can import it again by
    name. Both are undone afterwards.

    Parameters
    ----------
    name : str
        The script's file name without ``.py``, e.g. ``"quality_peers"``.

    Yields
    ------
    ModuleType
        The executed script.
    """
    folder = str(BENCHMARKS)
    sys.path.insert(0, folder)
    try:
        yield load_script(BENCHMARKS / f"{name}.py", name)
    finally:
        sys.modules.pop(name, None)
        sys.path.remove(folder)


# ----------------------------------------------------------------------------- scikit-learn's checks
#: why a check that fits with scikit-learn's class labels fails: ``y`` is the semi-label vector
SEMI_LABEL_REASON = "y holds semi-labels -1/0/+1; scikit-learn passes other class labels"
#: why ``check_methods_subset_invariance`` may fail for a float32 network
FLOAT32_REASON = "float32 GEMM rounding depends on batch size (differences ~2e-7, the check allows 1e-7)"

#: scikit-learn's checks that fit with ``y`` drawn from class labels (0..2, strings), which
#: an estimator taking semi-labels refuses
CHECKS_FEEDING_CLASS_LABELS = (
    "check_classifier_data_not_an_array",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_predict1d",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
)


def semi_label_expected_failures() -> dict[str, str]:
    """Check name -> reason, for ``parametrize_with_checks(expected_failed_checks=...)`` of a
    float32 network that takes semi-labels.

    The checks feeding class labels fail by design; subset invariance would fail for float32
    rounding even with valid labels, so it names that reason.
    """
    expected = dict.fromkeys(CHECKS_FEEDING_CLASS_LABELS, SEMI_LABEL_REASON)
    expected["check_methods_subset_invariance"] = FLOAT32_REASON
    return expected
