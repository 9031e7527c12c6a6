"""Choosing the torch device and thread count, and deriving seeds from ``random_state``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch

from deepsad.errors import InvalidInputError


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"`` / ``"cpu"`` / ``"cuda"`` / ``"cuda:1"`` / ``"mps"`` into a device.

    ``"auto"`` picks CUDA when available, else the CPU. Asking for a device that is not
    available is an error rather than a silent fallback, so a user who wanted a GPU
    learns that they did not get one.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError):
            raise InvalidInputError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {str(resolved)!r} requested but CUDA is not available; use device='auto' or 'cpu'")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInputError("device 'mps' requested but MPS is not available; use device='auto' or 'cpu'")
    return resolved


def seed_from_random_state(random_state: Any) -> int:
    """Derive one integer seed from an sklearn-style ``random_state``.

    ``None`` draws a fresh seed (non-deterministic), an int is used as is, and a
    ``numpy.random.RandomState`` / ``Generator`` is advanced by one draw.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InvalidInputError(f"random_state must be a non-negative integer, got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise InvalidInputError(
        f"random_state must be None, an int, a numpy RandomState or Generator, got {random_state!r}"
    )


def make_generator(seed: int) -> torch.Generator:
    """A CPU torch generator seeded with ``seed`` (never torch's global generator)."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    return generator


@contextmanager
def limited_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with at most ``n_threads`` intra-op threads, then restore the setting.

    ``None`` changes nothing. The setting is process-wide (``torch.set_num_threads``), so
    this is not meant for code that trains from several Python threads at once.
    """
    previous = torch.get_num_threads()
    if n_threads is None or n_threads >= previous:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


#: Training precisions: ``"float32"`` (exact, the default) or ``"bfloat16"`` autocast.
PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: Any) -> str:
    """Validate a ``precision`` parameter (see :data:`PRECISIONS`)."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InvalidInputError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    return precision


def training_autocast(precision: str, device: torch.device) -> Any:
    """The context a training step's forward pass and loss run in.

    ``"bfloat16"``: :func:`torch.autocast` to bfloat16 — matrix products and
    convolutions in bfloat16 (on CPUs with AMX / AVX-512 BF16 and on recent GPUs several
    times faster), weights, gradients and the optimizer state stay float32. Raises
    :class:`InvalidInputError` on a CUDA device without bfloat16 support.
    """
    if check_precision(precision) == "float32":
        return nullcontext()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InvalidInputError(f"precision='bfloat16' needs a GPU with bfloat16 support; {device} has none")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
