"""keep_freed_memory: glibc keeps freed activation-sized blocks instead of returning them,
only when asked."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch

from deepsad.training import allocator, keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget whether this process already applied the settings."""
    monkeypatch.setattr(allocator, "_applied", None)


#: Run in a child process: the settings cannot be undone, so applying them here would
#: leave malloc changed for every later test of the session.
_PAGE_FAULT_CHECK = """
import resource, sys
import torch
from deepsad.training import keep_freed_memory

def minor_faults_of_repeated_allocations():
    # ten "steps", each with six live 5 MiB activations (the MNIST first feature map's
    # size): with glibc's default thresholds the 30 MiB freed at the top of the heap
    # after each step go back to the kernel, and every step faults its pages in again
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        blocks = [torch.empty(5 * 1024 * 1024 // 4) for _ in range(6)]
        for block in blocks:
            block.fill_(1.0)  # touch every page
        del blocks, block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

assert keep_freed_memory() is True
minor_faults_of_repeated_allocations()  # the first blocks may still need fresh pages
print(minor_faults_of_repeated_allocations())
"""


@pytest.mark.skipif(not GLIBC, reason="the settings exist only in glibc's malloc")
def test_freed_blocks_are_reused_without_page_faults() -> None:
    env = {k: v for k, v in os.environ.items() if k != allocator.ENVIRONMENT_VARIABLE}
    child = subprocess.run([sys.executable, "-c", _PAGE_FAULT_CHECK], env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert child.returncode == 0, child.stderr
    # 10 x 30 MiB of fresh pages would be up to ~77,000 faults; reused blocks need none
    assert int(child.stdout.split()[-1]) < 1000


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


def test_training_leaves_malloc_alone(fresh_state: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepsad.training import OptimizerConfig, train
    from deepsad.training.stacked import train_stacked

    monkeypatch.delenv(allocator.ENVIRONMENT_VARIABLE, raising=False)
    calls: list[int] = []
    monkeypatch.setattr(allocator, "_set_glibc_thresholds", lambda: calls.append(1) or True)
    config = OptimizerConfig(epochs=1, lr=1e-3, milestones=(), weight_decay=0.0, batch_size=4)
    layer = torch.nn.Linear(3, 1, bias=False)
    data = torch.randn(8, 3)
    train(layer, lambda idx: layer(data[idx]).pow(2).mean(), 8, config,
          generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    layers = [torch.nn.Linear(3, 1, bias=False) for _ in range(2)]
    train_stacked(layers, lambda out, tensors, idx: out.pow(2).mean(), [(data,), (data,)], 8, config,
                  generators=[torch.Generator().manual_seed(k) for k in range(2)], device=torch.device("cpu"),
                  strategy="vmap")
    assert calls == []
