"""benchmarks/quality.py: the one-command tabular benchmark runs its deep methods stacked.

The benchmark's 3-hour budget on 2 cores relies on ``--stack`` (two seeds of one dataset
and method trained as one stacked model): these tests check that the option reaches the
runner, that the rows say so, and that the report records it.
"""

from __future__ import annotations

import json

import pytest

from deepsad.experiments.config import config_from_dict
from deepsad.experiments.store import read_results

from helpers import benchmark_script, require_file


@pytest.fixture(scope="module")
def quality():
    with benchmark_script("quality") as module:
        yield module


def tiny_benchmark(profile, *, only=None, data_root=None):
    """Two seeds of thyroid, the library's default Deep SAD (a 5-network ensemble) and IF."""
    return config_from_dict({
        "experiment": "tabular", "datasets": ["thyroid"], "seeds": [0, 1],
        "scenario": {"gamma_l": 0.01, "max_samples": 400},
        "preprocessing": {"standardize": True},
        "methods": {"deepsad": {"epochs": 2, "device": "cpu", "max_train_samples": 150},
                    "iforest": {"n_estimators": 10, "max_train_samples": 150}},
    })


def run(quality, tmp_path, data_root, *extra):
    args = ["--profiles", "full", "--no-peer", "--no-progress", "--workers", "1", "--data-root", str(data_root),
            "--results", str(tmp_path / "results"), "--out", str(tmp_path / "quality.md"),
            "--figures", str(tmp_path / "figures"), *extra]
    return quality.main(args)


@pytest.mark.parametrize("stack_args, stacked", [((), 2), (("--stack", "1"), None)])
def test_the_deep_methods_run_stacked_by_default(quality, tmp_path, data_root, monkeypatch, stack_args, stacked):
    require_file(data_root / "odds" / "thyroid.mat")
    monkeypatch.setattr(quality.quality_peers, "load_benchmark", tiny_benchmark)
    assert run(quality, tmp_path, data_root, *stack_args) == 0
    rows = read_results(tmp_path / "results" / "tabular_full.sqlite")
    assert (rows["status"] == "done").all(), rows["error"].dropna().tolist()
    deep = rows[rows["method"] == "deepsad"]
    assert len(deep) == 2
    selections = [json.loads(text) if isinstance(text, str) else {} for text in deep["selection"]]
    assert [s.get("stacked") for s in selections] == [stacked, stacked]
    report = (tmp_path / "quality.md").read_text(encoding="utf-8")
    assert f"--stack {stacked or 1})" in report


def test_a_stack_below_one_is_refused(quality, tmp_path, data_root):
    with pytest.raises(SystemExit, match="--stack must be at least 1"):
        run(quality, tmp_path, data_root, "--stack", "0")
