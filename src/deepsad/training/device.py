"""Choosing the torch device and thread count, and deriving seeds from ``random_state``.

A fit trains with the thread count the caller set (``torch.set_num_threads``); a caller
who wants the per-network heuristic opts in with :func:`tuned_threads`
(docs/performance.md, "CPU training settings").
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch

from deepsad.errors import InvalidInputError
from deepsad.models.specs import MLPSpec


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


#: MLPs with at most this many multiply-adds per sample in phi train on one CPU thread
#: under :func:`tuned_threads`: a batch through them is too small to split across threads.
SINGLE_THREAD_MAX_MACS = 65536


def training_threads(spec: Any, input_shape: tuple[int, ...], device: torch.device) -> int | None:
    """Intra-op threads that suit training a network of ``spec`` on ``input_shape`` samples.

    1 for MLPs of at most :data:`SINGLE_THREAD_MAX_MACS` multiply-adds per sample on
    the CPU, else ``None`` (leave torch's setting). A pure function: it sets nothing.
    """
    if not isinstance(spec, MLPSpec) or device.type != "cpu":
        return None
    widths = [input_shape[0], *spec.hidden_sizes, spec.rep_dim]
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    return 1 if macs <= SINGLE_THREAD_MAX_MACS else None


_TUNED_THREADS: ContextVar[bool] = ContextVar("deepsad_tuned_threads", default=False)


@contextmanager
def tuned_threads() -> Iterator[None]:
    """Let the fits inside the block pick their thread count per network.

    Each training phase runs with :func:`training_threads` of its network (one thread
    for small MLPs) and restores torch's setting when it ends. Opt-in, because
    ``torch.set_num_threads`` is process-wide and a library must not change it behind
    its caller's back; outside the block a fit uses whatever the caller set.

    Examples
    --------
    >>> from deepsad.training import tuned_threads
    >>> with tuned_threads():  # doctest: +SKIP
    ...     detector.fit(X, y)
    """
    token = _TUNED_THREADS.set(True)
    try:
        yield
    finally:
        _TUNED_THREADS.reset(token)


def threads_for_fit(spec: Any, input_shape: tuple[int, ...], device: torch.device) -> AbstractContextManager[None]:
    """The thread setting a training phase runs under: :func:`training_threads` inside
    :func:`tuned_threads`, else torch's setting untouched."""
    return limited_threads(training_threads(spec, input_shape, device) if _TUNED_THREADS.get() else None)


#: Training precisions: ``"float32"`` (exact, the default) or ``"bfloat16"`` autocast.
PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: Any) -> str:
    """Validate a ``precision`` parameter (see :data:`PRECISIONS`)."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InvalidInputError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    return precision


class SlowBFloat16Warning(UserWarning):
    """``precision="bfloat16"`` on a CPU without AVX-512: PyTorch's bfloat16 kernels fall
    back to slow generic code there, several times slower than float32."""


def cpu_runs_bfloat16_natively() -> bool:
    """Whether this CPU runs bfloat16 products in oneDNN's vector kernels.

    Those kernels need AVX-512 (fastest with its BF16 extension or AMX); PyTorch reports
    the CPU's vector capability in :func:`torch.backends.cpu.get_cpu_capability`. On an
    AVX2 CPU bfloat16 convolutions take a generic fallback instead.
    """
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def training_autocast(precision: str, device: torch.device) -> Any:
    """The context a training step's forward pass and loss run in.

    ``"bfloat16"``: :func:`torch.autocast` to bfloat16 — matrix products and
    convolutions in bfloat16 (on CPUs with AMX / AVX-512 BF16 and on recent GPUs several
    times faster), weights, gradients and the optimizer state stay float32. Raises
    :class:`InvalidInputError` on a CUDA device without bfloat16 support, and warns
    (:class:`SlowBFloat16Warning`) on a CPU without AVX-512, where bfloat16 is slower
    than float32 (see :func:`cpu_runs_bfloat16_natively`).
    """
    if check_precision(precision) == "float32":
        return nullcontext()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InvalidInputError(f"precision='bfloat16' needs a GPU with bfloat16 support; {device} has none")
    if device.type == "cpu" and not cpu_runs_bfloat16_natively():
        warnings.warn(
            f"precision='bfloat16' on a CPU without AVX-512 (PyTorch reports "
            f"{torch.backends.cpu.get_cpu_capability()}): bfloat16 runs in slow fallback kernels here, "
            "usually several times slower than precision='float32'",
            SlowBFloat16Warning,
            stacklevel=2,
        )
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
