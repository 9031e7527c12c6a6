"""Where tasks run: in this process, in a local process pool, or on a Ray cluster.

Every executor takes groups of tasks (see :func:`deepsad.experiments.grid.group_tasks`)
and hands each group's result rows back to the driver through ``on_rows``; only the
driver writes the results file. The unit of work is a group: its tasks share their
data and autoencoder, so one worker runs them back to back.

Threads
-------
Networks here are small, so parallel processes beat threads (DESIGN §6). ``local``
defaults to one worker per core with one thread each; in general each worker gets
``threads_per_worker = max(1, cores // workers)`` torch and BLAS threads, so that
workers x threads <= cores. Ray tasks reserve ``threads_per_worker`` CPUs each (default
1), and the serial executor uses one thread unless told otherwise.

Stopping
--------
Ctrl-C (or SIGTERM, see the CLI) raises ``KeyboardInterrupt`` in the driver: the local
pool's workers ignore SIGINT (so they cannot die half-way through returning a result)
and are terminated by the driver; Ray tasks still pending are cancelled. Rows already
returned are saved. If the driver is killed outright (``kill -9``), local workers notice
that their parent is gone within a second and exit; the results file holds exactly the
groups whose rows were committed, and a rerun does the rest.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.experiments.grid import Task
from deepsad.experiments.runner import RunContext, available_cores, configure_threads, iter_group, run_group

logger = logging.getLogger(__name__)

#: The executor names of ``--executor``.
EXECUTORS: tuple[str, ...] = ("serial", "local", "ray")

RowsCallback = Callable[[list[dict[str, Any]]], None]


def _check_count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return value


def default_threads(workers: int, cores: int | None = None) -> int:
    """Threads per worker so that ``workers * threads <= cores`` (at least one)."""
    cores = cores or available_cores()
    return max(1, cores // max(1, workers))


class SerialExecutor:
    """Run groups one after another in this process.

    Parameters
    ----------
    threads : int, default 1
        torch/BLAS threads while the run lasts (restored after). One, because the
        paper's networks gain nothing from intra-op threads (DESIGN §6), while OpenMP
        threads spinning on a busy machine slow them down badly (measured: a small
        Deep SAD fit 13x slower with 2 threads than with 1 on 2 loaded cores).
    """

    name = "serial"

    def __init__(self, threads: int | None = None) -> None:
        self.threads_per_worker = _check_count("threads", threads) or 1
        self.workers = 1

    def run(self, groups: Sequence[Sequence[Task]], context: RunContext, on_rows: RowsCallback) -> None:
        """Run every group, handing back each row as its task finishes."""
        restore = configure_threads(self.threads_per_worker)
        try:
            for group in groups:
                for row in iter_group(group, context):
                    on_rows([row])
        finally:
            restore()


# --------------------------------------------------------------------------- local


def _watch_parent(parent_pid: int) -> None:
    """Exit when the driver is gone (e.g. killed with SIGKILL), instead of running on."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


def _init_worker(threads: int, parent_pid: int) -> None:
    # the driver decides when to stop; a worker killed by Ctrl-C mid-result would
    # break the pool
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_threads(threads)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="deepsad-parent-watch").start()


class LocalExecutor:
    """A pool of worker processes on this machine.

    Parameters
    ----------
    workers : int, optional
        Processes; default one per available core.
    threads_per_worker : int, optional
        Default ``max(1, cores // workers)``. More than that oversubscribes the CPU
        (allowed, with a warning).
    start_method : {"spawn", "forkserver", "fork"}, default "spawn"
        ``spawn`` is safe with torch's thread pools (``fork`` after torch started
        threads can deadlock).
    """

    name = "local"

    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None, *,
                 start_method: str = "spawn") -> None:
        cores = available_cores()
        self.workers = _check_count("workers", workers) or cores
        self.threads_per_worker = _check_count("threads_per_worker", threads_per_worker) or default_threads(self.workers, cores)
        if self.workers * self.threads_per_worker > cores:
            logger.warning("%d workers x %d threads exceed the %d available cores", self.workers,
                           self.threads_per_worker, cores)
        self.start_method = start_method

    def run(self, groups: Sequence[Sequence[Task]], context: RunContext, on_rows: RowsCallback) -> None:
        """Run the groups in the pool; ``on_rows`` receives each group's rows in the driver."""
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        if not groups:
            return
        workers = min(self.workers, len(groups))
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(self.start_method),
            initializer=_init_worker,
            initargs=(self.threads_per_worker, os.getpid()),
        )
        futures = {pool.submit(run_group, list(group), context): group for group in groups}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    group = futures.pop(future)
                    try:
                        rows = future.result()
                    except BrokenProcessPool:
                        raise DeepSADError(
                            "a worker process died unexpectedly (out of memory?); finished tasks are saved, "
                            "run the same command again to continue (perhaps with fewer --workers)"
                        ) from None
                    except Exception as error:  # e.g. a result that could not be pickled
                        rows = _failed_rows(group, error)
                    on_rows(rows)
        except BaseException:
            _terminate(pool)
            raise
        pool.shutdown(wait=True)


def _terminate(pool: Any) -> None:
    """Stop a process pool now: cancel what has not started, kill what runs."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def _failed_rows(group: Sequence[Task], error: BaseException) -> list[dict[str, Any]]:
    from deepsad.experiments.runner import _mark_failed, _row_skeleton
    from deepsad.experiments.store import utc_now

    rows = []
    for task in group:
        row = _row_skeleton(task)
        _mark_failed(row, error)
        row["finished_at"] = utc_now()
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- ray


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DeepSADError("--executor ray needs Ray, an optional dependency: pip install 'deepsad[ray]'") from None
    return ray


def _ray_run_group(tasks: list[Task], context: RunContext) -> list[dict[str, Any]]:
    return run_group(tasks, context)


class RayExecutor:
    """Run groups as Ray tasks, on an existing cluster or a local Ray instance.

    Parameters
    ----------
    address : str, optional
        A running cluster (``ray://host:10001``, ``host:6379`` or ``auto``); without it a
        local instance is started for the run and shut down after.
    workers : int, optional
        Local instance only: CPUs it may use (default: all available cores).
    threads_per_worker : int, default 1
        CPUs each task reserves, and its torch threads.

    Notes
    -----
    Workers need deepsad installed and the data under the same ``--data-root`` path;
    the autoencoder disk cache is used where that path is writable on a node.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, threads_per_worker: int | None = None) -> None:
        self.address = address
        self.workers = _check_count("workers", workers) or available_cores()
        self.threads_per_worker = _check_count("threads_per_worker", threads_per_worker) or 1
        self._ray = _import_ray()

    def run(self, groups: Sequence[Sequence[Task]], context: RunContext, on_rows: RowsCallback) -> None:
        """Submit every group and hand back rows as Ray tasks complete."""
        ray = self._ray
        started_here = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
            started_here = True
        remote = ray.remote(num_cpus=self.threads_per_worker, max_retries=0)(_ray_run_group)
        refs = {remote.remote(list(group), context): group for group in groups}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in done:
                    group = refs.pop(ref)
                    try:
                        rows = ray.get(ref)
                    except ray.exceptions.RayError as error:  # a worker that died or failed outside a task
                        rows = _failed_rows(group, error)
                    on_rows(rows)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            if started_here:
                ray.shutdown()


def make_executor(name: str, *, workers: int | None = None, threads_per_worker: int | None = None,
                  address: str | None = None) -> Any:
    """The executor called ``name`` (one of :data:`EXECUTORS`).

    Raises
    ------
    InvalidInputError
        Unknown name, or options that do not apply (``address`` without ``ray``).
    DeepSADError
        ``ray`` without Ray installed (the message says how to install it).
    """
    if name not in EXECUTORS:
        raise InvalidInputError(f"unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")
    if address is not None and name != "ray":
        raise InvalidInputError("--address applies to --executor ray only")
    if name == "serial":
        if workers not in (None, 1):
            raise InvalidInputError("--workers applies to --executor local or ray (serial runs one task at a time)")
        return SerialExecutor(threads=threads_per_worker)
    if name == "local":
        return LocalExecutor(workers=workers, threads_per_worker=threads_per_worker)
    return RayExecutor(address=address, workers=workers, threads_per_worker=threads_per_worker)
