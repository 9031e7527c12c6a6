"""keep_freed_memory: glibc keeps freed activation-sized blocks instead of returning them,
only when asked."""

from __future__ import annotations

import ctypes
import json
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
#: leave malloc changed for every later test of the session. glibc's own statistics
#: (mallinfo2) say where a block came from and where it went when freed: a 5 MiB block
#: (the MNIST first feature map's size) is above glibc's default mmap threshold, so by
#: default it is mapped for itself and unmapped when freed; kept, it comes from the heap
#: and stays there, free for the next step.
_FREED_BLOCK_CHECK = """
import ctypes, json
import torch
from deepsad.training import keep_freed_memory

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
applied = keep_freed_memory()
before = libc.mallinfo2()
block = torch.empty(5 * 1024 * 1024 // 4)
block.fill_(1.0)
during = libc.mallinfo2()
del block
after = libc.mallinfo2()
print(json.dumps({"applied": applied, "mapped": during.hblkhd - before.hblkhd,
                  "kept_free": after.fordblks - during.fordblks}))
"""


def _has_mallinfo2() -> bool:
    try:
        ctypes.CDLL(None).mallinfo2  # glibc >= 2.33
    except (OSError, AttributeError):
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not GLIBC or not _has_mallinfo2(), reason="the settings exist only in glibc's malloc")
@pytest.mark.parametrize("keep", [True, False])
def test_a_freed_activation_sized_block_stays_in_the_heap_only_when_asked(keep: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != allocator.ENVIRONMENT_VARIABLE}
    if not keep:
        env[allocator.ENVIRONMENT_VARIABLE] = "0"  # the control: glibc's defaults
    child = subprocess.run([sys.executable, "-c", _FREED_BLOCK_CHECK], env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert child.returncode == 0, child.stderr
    block = 5 * 1024 * 1024
    result = json.loads(child.stdout.splitlines()[-1])
    assert result["applied"] is keep
    if keep:  # from the heap, and back to the heap
        assert result["mapped"] < block <= result["kept_free"], result
    else:  # mapped for itself, and unmapped
        assert result["kept_free"] < block <= result["mapped"], result


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
