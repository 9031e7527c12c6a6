"""The reliability table (reliability_cases.py): every user mistake and fault, one test each.

Each case must end as its table says: exit status 2 and one ``deepsad: error:`` line
naming the problem (or the stated exception or warning), and nothing lost. The same
table generates docs/reliability.md (benchmarks/reliability.py).
"""

from __future__ import annotations

import collections
import logging

import pytest

import reliability_cases as rc


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> rc.Shared:
    """One small model (and an Isolation Forest) for the whole module; cases copy it before changing it."""
    return rc.Shared(tmp_path_factory.mktemp("reliability-shared"))


def test_the_table_has_at_least_70_distinct_kinds_in_every_category():
    ids = [case.id for case in rc.CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 70
    per_category = collections.Counter(case.category for case in rc.CASES)
    assert set(per_category) == set(rc.CATEGORIES)


#: cases that interrupt a running ``deepsad fit`` in a child process: each waits for the child
#: to import torch and start training, so they stay out of the quick loop
SLOW_CASES = frozenset({"signal-sigint-fit", "signal-sigterm-fit"})


def _marks(case: rc.Case) -> list:
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return [*marks, pytest.mark.slow] if case.id in SLOW_CASES else marks


def test_the_slow_cases_are_in_the_table():
    assert SLOW_CASES <= {case.id for case in rc.CASES}


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=_marks(case)) for case in rc.CASES])
def test_case(case: rc.Case, shared: rc.Shared, tmp_path, caplog):
    with caplog.at_level(logging.ERROR):  # the library's warnings are not the outcome under test
        observed = rc.run_case(case, tmp_path, shared)
    assert observed.passed, f"{case.description}: {observed.summary}; " + "; ".join(observed.problems)
