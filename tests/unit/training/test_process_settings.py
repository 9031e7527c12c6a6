"""No process-wide state as a side effect of ``fit``: torch's thread count and glibc's
malloc settings change only where the caller asks (``tuned_threads``, ``keep_freed_memory``,
the ``deepsad`` command, the experiment runner)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepsad import DeepSAD, DeepSVDD, fit_stacked
from deepsad.baselines import CAE, DevNet, SupervisedClassifier
from deepsad.models import LeNetSpec, MLPSpec
from deepsad.training import SINGLE_THREAD_MAX_MACS, allocator, training_threads, tuned_threads

#: An unusual count, so that any change of it shows.
CALLER_THREADS = 3

DEEP = dict(pretrain=True, n_networks=1, epochs=2, pretrain_epochs=2, batch_size=64, device="cpu")
BASELINE = dict(epochs=2, batch_size=64, device="cpu")


def _data(n: int = 160, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:8] += 4.0
    y = np.zeros(n, dtype=np.int64)
    y[:3] = -1
    y[20:30] = 1
    return X, y


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch):
    """The caller's thread count set to 3 (restored after), every ``torch.set_num_threads``
    call recorded, and malloc's settings replaced by a recorder (never applied here)."""
    outer = torch.get_num_threads()
    torch.set_num_threads(CALLER_THREADS)
    thread_calls: list[int] = []
    real_set = torch.set_num_threads

    def recording_set(n: int) -> None:
        thread_calls.append(n)
        real_set(n)

    malloc_calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", recording_set)
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.delenv(allocator.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(allocator, "_set_glibc_thresholds", lambda: malloc_calls.append(1) or True)
    yield thread_calls, malloc_calls
    monkeypatch.undo()
    torch.set_num_threads(outer)


def _fit_deepsad() -> None:
    DeepSAD(**DEEP, random_state=0).fit(*_data())


def _fit_ensemble() -> None:
    DeepSAD(**{**DEEP, "n_networks": 2}, random_state=0).fit(*_data())


def _fit_lenet() -> None:
    X = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    DeepSVDD(**{**DEEP, "epochs": 1, "pretrain_epochs": 1}, network=LeNetSpec("mnist"), random_state=0).fit(X)


def _fit_stacked() -> None:
    draws = [_data(seed=s) for s in (0, 1)]
    fit_stacked([DeepSAD(**DEEP, random_state=s) for s in (0, 1)], [X for X, _ in draws], [y for _, y in draws])


def _fit_cae() -> None:
    CAE(**BASELINE, random_state=0).fit(*_data())


def _fit_supervised() -> None:
    SupervisedClassifier(**BASELINE, random_state=0).fit(*_data())


def _fit_devnet() -> None:
    DevNet(epochs=2, batches_per_epoch=3, batch_size=32, device="cpu", random_state=0).fit(*_data())


FITS = {
    "DeepSAD": _fit_deepsad,
    "DeepSAD ensemble": _fit_ensemble,
    "DeepSVDD LeNet": _fit_lenet,
    "fit_stacked": _fit_stacked,
    "CAE": _fit_cae,
    "SupervisedClassifier": _fit_supervised,
    "DevNet": _fit_devnet,
}


@pytest.mark.parametrize("name", list(FITS))
def test_fit_leaves_threads_and_malloc_as_the_caller_set_them(watched, name):
    thread_calls, malloc_calls = watched
    FITS[name]()
    assert thread_calls == []  # not even set and restored
    assert torch.get_num_threads() == CALLER_THREADS
    assert malloc_calls == []


@pytest.mark.parametrize("name", ["DeepSAD", "DeepSAD ensemble", "fit_stacked", "CAE", "SupervisedClassifier", "DevNet"])
def test_tuned_threads_trains_small_mlps_on_one_thread_and_restores(watched, name):
    thread_calls, malloc_calls = watched
    with tuned_threads():
        FITS[name]()
    assert 1 in thread_calls
    assert torch.get_num_threads() == CALLER_THREADS
    assert malloc_calls == []  # malloc is a separate, explicit call


def test_tuned_threads_is_scoped_and_nests():
    from deepsad.training.device import threads_for_fit

    spec, cpu = MLPSpec(hidden_sizes=(8,), rep_dim=4), torch.device("cpu")
    before = torch.get_num_threads()
    with threads_for_fit(spec, (6,), cpu):
        assert torch.get_num_threads() == before  # not opted in
    with tuned_threads():
        with tuned_threads():
            pass
        with threads_for_fit(spec, (6,), cpu):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), tuned_threads():
        raise RuntimeError("boom")
    with threads_for_fit(spec, (6,), cpu):
        assert torch.get_num_threads() == before


def test_training_threads_is_a_pure_rule():
    cpu = torch.device("cpu")
    assert training_threads(MLPSpec(hidden_sizes=(32, 16), rep_dim=8), (21,), cpu) == 1
    wide = MLPSpec(hidden_sizes=(512, 256), rep_dim=32)
    assert 6 * 512 + 512 * 256 + 256 * 32 > SINGLE_THREAD_MAX_MACS
    assert training_threads(wide, (6,), cpu) is None
    assert training_threads(LeNetSpec("mnist"), (1, 28, 28), cpu) is None
    assert training_threads(MLPSpec(hidden_sizes=(32, 16), rep_dim=8), (21,), torch.device("meta")) is None


def test_the_cli_opts_in_for_training_commands(watched, tmp_path):
    from deepsad.cli import main

    thread_calls, malloc_calls = watched
    X, y = _data()
    path = tmp_path / "train.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,d,e,f,label", comments="")
    fast = ["--epochs", "1", "--pretrain-epochs", "1", "--batch-size", "64", "--n-networks", "1", "--no-progress"]
    assert main(["fit", str(path), "--out", str(tmp_path / "model"), "--device", "cpu", *fast]) == 0
    assert malloc_calls == [1]
    assert 1 in thread_calls  # the small MLP trained on one thread
    assert torch.get_num_threads() == CALLER_THREADS


def test_the_experiment_runner_fits_under_tuned_threads(monkeypatch):
    from deepsad.experiments import runner
    from deepsad.training.device import threads_for_fit

    seen: list[int] = []

    def rows(tasks, context, caches):
        for task in tasks:
            with threads_for_fit(MLPSpec(hidden_sizes=(8,), rep_dim=4), (6,), torch.device("cpu")):
                seen.append(torch.get_num_threads())
            yield {"task": task, "threads_between_rows": None}

    monkeypatch.setattr(runner, "_iter_group", rows)
    before = torch.get_num_threads()
    for row in runner.iter_group(["a", "b"], runner.RunContext()):
        # between rows the consumer's code runs outside the opt-in
        with threads_for_fit(MLPSpec(hidden_sizes=(8,), rep_dim=4), (6,), torch.device("cpu")):
            row["threads_between_rows"] = torch.get_num_threads()
        assert row["threads_between_rows"] == before
    assert seen == [1, 1]
    assert torch.get_num_threads() == before
