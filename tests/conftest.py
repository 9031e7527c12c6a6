"""Shared test fixtures: where the real datasets live.

Tests read real data from the data root: ``$DEEPSAD_DATA`` if set, else the
``shared/data`` folder that sits beside the checkout (as in CI). Tests that need a
file that is absent skip with the path they looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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


def _data_root() -> Path:
    env = os.environ.get("DEEPSAD_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data root holding odds/, mnist/, fashion_mnist/ and cifar10/."""
    return _data_root()


def require_file(path: Path) -> Path:
    """Skip the calling test, naming the path, when a real data file is absent."""
    if not path.exists():
        pytest.skip(f"real data file not found: {path} (set DEEPSAD_DATA to the data root)")
    return path


@pytest.fixture(scope="session")
def real_file():
    """:func:`require_file` as a fixture, for test modules that cannot import this conftest."""
    return require_file
