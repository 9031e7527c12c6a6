"""Shared test fixtures: where the real datasets live, and malloc left alone.

Tests read real data from the data root: ``$DEEPSAD_DATA`` if set, else the
``shared/data`` folder that sits beside the checkout (as in CI). Tests that need a
file that is absent skip with the path they looked for (``helpers.require_file``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import helpers


@pytest.fixture(scope="session", autouse=True)
def _malloc_left_alone():
    """Keep glibc's malloc settings as they are in the test process.

    ``keep_freed_memory`` cannot be undone, and in-process runs of the CLI and of the
    experiment workers (``run_group``) call it; tests that check it clear the variable
    (or run a child process).
    """
    from deepsad.training.allocator import ENVIRONMENT_VARIABLE

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENVIRONMENT_VARIABLE, "0")
        yield


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data root holding odds/, mnist/, fashion_mnist/ and cifar10/."""
    return helpers.data_root()
