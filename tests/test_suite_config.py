"""The test suite's own configuration: the quick loop ``pytest -m "not slow"`` selects what it should.

A ``slow`` marker that pytest does not know would be silently ignored by ``-m "not slow"``
(without strict markers), putting every long test back into the quick loop.
"""

from __future__ import annotations

import pytest


def _strict_markers(config: pytest.Config) -> bool:
    try:
        value = config.getini("strict_markers")  # pytest >= 9: an ini option (None: follow `strict`)
    except ValueError:  # pytest 8: only the command-line flag
        return bool(config.option.strict_markers)
    return bool(config.getini("strict") if value is None else value)


def test_slow_is_a_registered_marker(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":", 1)[0].strip() for line in pytestconfig.getini("markers")}
    assert "slow" in registered


def test_unknown_markers_are_errors(pytestconfig: pytest.Config) -> None:
    assert _strict_markers(pytestconfig), "keep --strict-markers in pyproject's pytest addopts"

