"""keep_freed_memory: glibc keeps freed activation-sized blocks instead of returning them."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from deepsad.training import allocator, keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget whether this process already applied the settings."""
    monkeypatch.setattr(allocator, "_applied", None)


def _minor_faults_of_repeated_allocations() -> int:
    """Ten "steps", each with six live 5 MiB activations (the MNIST first feature map's size).

    With glibc's default (dynamic) thresholds the 30 MiB freed at the top of the heap
    after each step exceed the trim threshold and go back to the kernel: measured
    12,640 faults here. A single block at a time would not show it (glibc adapts).
    """
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        blocks = [torch.empty(5 * 1024 * 1024 // 4) for _ in range(6)]
        for block in blocks:
            block.fill_(1.0)  # touch every page
        del blocks, block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not GLIBC, reason="the settings exist only in glibc's malloc")
def test_freed_blocks_are_reused_without_page_faults(fresh_state: None) -> None:
    assert keep_freed_memory() is True
    _minor_faults_of_repeated_allocations()  # the first block may still need fresh pages
    # 10 x 30 MiB of fresh pages would be up to ~77,000 faults; reused blocks need none
    assert _minor_faults_of_repeated_allocations() < 1000


@pytest.mark.parametrize("value", ["0", "false", "OFF", " no "])
def test_environment_variable_turns_it_off(fresh_state: None, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(allocator.ENVIRONMENT_VARIABLE, value)
    calls: list[int] = []
    monkeypatch.setattr(allocator, "_set_glibc_thresholds", lambda: calls.append(1) or True)
    assert keep_freed_memory() is False
    assert calls == []


def test_applied_once_per_process(fresh_state: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(allocator.ENVIRONMENT_VARIABLE, raising=False)
    calls: list[int] = []
    monkeypatch.setattr(allocator, "_set_glibc_thresholds", lambda: calls.append(1) or True)
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True
    assert calls == [1]


def test_cpu_training_applies_it(fresh_state: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepsad.training import OptimizerConfig, train

    calls: list[int] = []
    monkeypatch.setattr("deepsad.training.trainer.keep_freed_memory", lambda: calls.append(1) or True)
    layer = torch.nn.Linear(3, 1)
    data = torch.randn(8, 3)
    train(layer, lambda idx: layer(data[idx]).pow(2).mean(), 8, OptimizerConfig(epochs=1, lr=1e-3, milestones=(), weight_decay=0.0, batch_size=4),
          generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert calls == [1]
