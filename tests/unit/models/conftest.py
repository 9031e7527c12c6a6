"""Fixtures for the network tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run these tiny networks on one thread.

    Their ops are far too small to gain from intra-op threads, and on a busy 2-core
    machine OpenMP's spinning threads made this suite ~3x slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
