"""Executors: serial, a local process pool and Ray give the same rows; options are checked."""

from __future__ import annotations

import multiprocessing
import sys

import pytest

from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.experiments.config import config_from_dict
from deepsad.experiments.executors import LocalExecutor, SerialExecutor, default_threads, make_executor
from deepsad.experiments.runner import run_experiment
from deepsad.experiments.store import ResultStore, read_results

from helpers import require_file


def small_config():
    return config_from_dict({
        "experiment": "executors", "datasets": ["thyroid", "cardio"], "seeds": [0, 1],
        "scenario": {"gamma_l": 0.02, "max_samples": 300},
        "training": {"epochs": 2, "lr_milestones": [], "device": "cpu"},
        "autoencoder": {"epochs": 2, "lr_milestones": []},
        "methods": {"deepsad": {}, "ocsvm": {"selection": "paper-test-subset", "grid": {"gamma": [0.25, 1.0], "nu": [0.1]}}},
    })


def outcome(path):
    frame = read_results(path)
    assert (frame["status"] == "done").all(), frame["error"].dropna().tolist()
    return dict(zip(frame["task_key"], frame["auc"]))


@pytest.fixture(scope="module")
def odds(data_root):
    for name in ("thyroid", "cardio"):
        require_file(data_root / "odds" / f"{name}.mat")
    return data_root


@pytest.fixture(scope="module")
def serial(odds, tmp_path_factory):
    """Task key -> AUC of the serial run, the reference for the other executors."""
    path = tmp_path_factory.mktemp("serial") / "serial.sqlite"
    summary = run_experiment(small_config(), path, SerialExecutor(threads=1), data_root=odds, progress=False)
    assert summary.n_done == 8 and not summary.interrupted
    return path


@pytest.mark.slow
def test_interrupt_stops_a_local_pool_cleanly(odds, serial, tmp_path):
    """Ctrl-C arrives as KeyboardInterrupt in the driver: the pool is stopped, saved rows stay."""
    executor = LocalExecutor(workers=2, threads_per_worker=1)
    real_run = executor.run
    calls = []

    def run_then_interrupt(groups, context, on_rows):
        def on_rows_then_interrupt(rows):
            on_rows(rows)
            calls.append(len(rows))
            if len(calls) == 2:
                raise KeyboardInterrupt
        real_run(groups, context, on_rows_then_interrupt)

    executor.run = run_then_interrupt
    path = tmp_path / "local.sqlite"
    summary = run_experiment(small_config(), path, executor, data_root=odds, progress=False)
    assert summary.interrupted and summary.n_done == 4 and summary.n_pending == 4
    assert ResultStore(path, create=False).runs()[0]["status"] == "interrupted"
    # the local pool's workers are gone
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]
    rest = run_experiment(small_config(), path, SerialExecutor(threads=1), data_root=odds, progress=False)
    assert rest.n_skipped == 4 and rest.n_done == 4
    assert outcome(path) == outcome(serial)  # the pool's rows equal a serial run's


@pytest.mark.slow
def test_ray_gives_the_same_rows_as_serial(odds, serial, tmp_path):
    pytest.importorskip("ray")
    from deepsad.experiments.executors import RayExecutor

    summary = run_experiment(small_config(), tmp_path / "ray.sqlite", RayExecutor(workers=2, threads_per_worker=1),
                             data_root=odds, progress=False)
    assert summary.n_done == 8
    assert outcome(serial) == outcome(tmp_path / "ray.sqlite")
    assert set(read_results(tmp_path / "ray.sqlite")["threads"]) == {1}


def test_executor_options_are_checked(monkeypatch):
    with pytest.raises(InvalidInputError, match="unknown executor 'dask'; valid: serial, local, ray"):
        make_executor("dask")
    with pytest.raises(InvalidInputError, match="--address applies to --executor ray only"):
        make_executor("local", address="auto")
    with pytest.raises(InvalidInputError, match="workers must be a positive integer"):
        make_executor("local", workers=0)
    local = make_executor("local", workers=2)
    assert local.threads_per_worker == default_threads(2) and local.workers * local.threads_per_worker >= 2
    assert default_threads(3, cores=16) == 5 and default_threads(32, cores=16) == 1
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(DeepSADError, match=r"pip install 'deepsad\[ray\]'"):
        make_executor("ray")
