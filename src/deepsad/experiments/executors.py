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

Caches
------
A worker keeps the datasets it loaded and the autoencoders it pretrained for the groups
it runs (:class:`~deepsad.experiments.context.WorkerCaches`): the serial executor one set
for the run, each process of the local pool its own, a Ray worker process its own for
as long as it serves runs with the same settings.

Stopping
--------
Ctrl-C (or SIGTERM, which the CLI turns into the same thing) raises
``KeyboardInterrupt`` in the driver: the local pool's workers ignore SIGINT and SIGTERM
(so a signal sent to the whole process group, as a terminal or a batch scheduler does,
cannot kill them half-way through returning a result) and are killed by the driver; Ray
tasks still pending are cancelled. Rows already returned are saved. If the driver is
killed outright (``kill -9``), local workers notice that their parent is gone within a
second and exit; the results file holds exactly the groups whose rows were committed,
and a rerun does the rest.

Ray
---
``ray.init`` replaces the process's SIGTERM handler with its own (which dumps a C++
stack and exits); the Ray executor puts back the handler the application had chosen
(e.g. the CLI's), so SIGTERM keeps meaning "stop cleanly". A cluster ``--address`` is
checked before ``ray.init`` (:func:`check_ray_address`), because Ray retries an address
that does not answer for many minutes.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.experiments.grid import Task
from deepsad.experiments.context import RunContext, WorkerCaches
from deepsad.experiments.rows import failed_row
from deepsad.experiments.runner import iter_group, run_group
from deepsad.experiments.threads import available_cores, configure_threads

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
        threads spinning on a busy machine slow them down badly (docs/performance.md).
    """

    name = "serial"

    def __init__(self, threads: int | None = None) -> None:
        self.threads_per_worker = _check_count("threads", threads) or 1
        self.workers = 1

    def run(self, groups: Sequence[Sequence[Task]], context: RunContext, on_rows: RowsCallback) -> None:
        """Run every group, handing back each row as its task finishes."""
        restore = configure_threads(self.threads_per_worker)
        caches = WorkerCaches.for_context(context)  # this process is the run's only worker
        try:
            for group in groups:
                for row in iter_group(group, context, caches):
                    on_rows([row])
        finally:
            restore()


# --------------------------------------------------------------------------- local


# The caches of this worker process and the settings of the run they belong to. Worker
# processes are the executors' own: a process of the local pool serves one run and ends
# with it; a Ray worker may serve several runs one after another and starts afresh when
# the settings change. The driver's process never sets it.
_worker_caches: tuple[RunContext, WorkerCaches] | None = None


def _run_in_worker(tasks: list[Task], context: RunContext) -> list[dict[str, Any]]:
    """Run a group in a worker process, with the caches the process keeps for its run."""
    global _worker_caches
    if _worker_caches is None or _worker_caches[0] != context:
        _worker_caches = (context, WorkerCaches.for_context(context))
    return run_group(tasks, context, _worker_caches[1])


def _watch_parent(parent_pid: int) -> None:
    """Exit when the driver is gone (e.g. killed with SIGKILL), instead of running on."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


def _init_worker(threads: int, parent_pid: int) -> None:
    # the driver decides when to stop; a worker killed by Ctrl-C (or by a SIGTERM sent to
    # the process group) mid-result would break the pool
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
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
        futures = {pool.submit(_run_in_worker, list(group), context): group for group in groups}
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
            process.kill()  # SIGKILL: the workers ignore SIGTERM (see _init_worker)
    for process in processes:
        process.join(timeout=5)


def _failed_rows(group: Sequence[Task], error: BaseException) -> list[dict[str, Any]]:
    return [failed_row(task, error) for task in group]


# --------------------------------------------------------------------------- ray


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DeepSADError("--executor ray needs Ray, an optional dependency: pip install 'deepsad[ray]'") from None
    return ray


def _ray_run_group(tasks: list[Task], context: RunContext) -> list[dict[str, Any]]:
    return _run_in_worker(tasks, context)


class RayConnectionError(DeepSADError, ConnectionError):
    """A Ray cluster address where no cluster answers, or a Ray that does not start."""


#: Seconds :func:`check_ray_address` waits for a connection, and again for the reply.
RAY_CONNECT_TIMEOUT_S = 5.0
#: The environment variable Ray reads a cluster address from (``ray.init`` honours it too).
RAY_ADDRESS_ENV = "RAY_ADDRESS"
# What an HTTP/2 client sends first (RFC 9113, section 3.4): the preface, then an empty
# SETTINGS frame. Ray's GCS and Ray Client servers speak gRPC, i.e. HTTP/2, and answer
# with a SETTINGS frame of their own (byte 3 of a frame header is its type, 4).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_HTTP2_SETTINGS = 4
_ADDRESS_FORMS = "HOST:PORT (the head node's GCS port, 6379 by default), ray://HOST:PORT (Ray Client, 10001) or auto"


def parse_ray_address(address: str) -> tuple[str, int] | None:
    """The ``(host, port)`` a Ray address connects to.

    Parameters
    ----------
    address : str
        ``HOST:PORT`` (``[IPv6]:PORT`` too), ``ray://HOST:PORT``, ``auto`` or ``local``.

    Returns
    -------
    tuple of (str, int) or None
        None for ``auto``, ``local`` and schemes other than ``ray://``, which Ray
        resolves itself.

    Raises
    ------
    InvalidInputError
        An address without a valid port.
    """
    text = address.strip()
    if text in ("auto", "local"):
        return None
    scheme, separator, rest = text.partition("://")
    if separator:
        if scheme != "ray":
            return None
        text = rest.split("/", 1)[0]
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInputError(f"invalid Ray address {address!r}: expected {_ADDRESS_FORMS}")
    return host, int(port_text)


def _answers_http2(connection: socket.socket, timeout: float) -> bool:
    connection.settimeout(timeout)
    try:
        connection.sendall(_HTTP2_PREFACE)
        header = b""
        while len(header) < 4:
            chunk = connection.recv(9 - len(header))
            if not chunk:
                return False
            header += chunk
    except OSError:  # a timeout, or the peer closing on us
        return False
    return header[3] == _HTTP2_SETTINGS


def _tls_enabled() -> bool:
    return os.environ.get("RAY_USE_TLS", "0").strip().lower() in ("1", "true", "yes")


def check_ray_address(address: str, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Refuse, within about ``2 * timeout`` seconds, a Ray address where no cluster answers.

    Ray itself keeps retrying such an address for many minutes. This connects to it
    (TCP) and checks that a gRPC (HTTP/2) server answers there, as Ray's GCS and Ray
    Client servers do; with ``RAY_USE_TLS`` set only the TCP connection is checked. It
    cannot tell a Ray cluster from another gRPC service on the same port.

    Parameters
    ----------
    address : str
        See :func:`parse_ray_address`; ``auto`` and ``local`` are not checked (Ray
        looks them up itself and fails fast when there is nothing).
    timeout : float
        Seconds to wait for the connection, and again for the answer.

    Raises
    ------
    InvalidInputError
        A malformed address.
    RayConnectionError
        Unknown host, nothing listening, no answer in time, or not a gRPC service.
    """
    target = parse_ray_address(address)
    if target is None:
        return
    host, port = target
    where = f"the Ray cluster at {address}"
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror:
        raise RayConnectionError(f"cannot reach {where}: unknown host {host!r}") from None
    except ConnectionRefusedError:
        raise RayConnectionError(f"cannot reach {where}: nothing listens on port {port} of {host} "
                                 "(is the cluster up, and is it its head node's address?)") from None
    except TimeoutError:
        raise RayConnectionError(f"cannot reach {where}: no answer within {timeout:g} s") from None
    except OSError as error:
        raise RayConnectionError(f"cannot reach {where}: {error.strerror or error}") from None
    with connection:
        if not _tls_enabled() and not _answers_http2(connection, timeout):
            raise RayConnectionError(
                f"{host}:{port} answers but is not a Ray cluster (no gRPC service there); "
                f"expected {_ADDRESS_FORMS}"
            )


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class RayExecutor:
    """Run groups as Ray tasks, on an existing cluster or a local Ray instance.

    Parameters
    ----------
    address : str, optional
        A running cluster (``ray://host:10001``, ``host:6379`` or ``auto``); default
        ``$RAY_ADDRESS`` if set, else a local instance is started for the run and shut
        down after. A cluster address is checked (:func:`check_ray_address`) before Ray
        connects, so one where no cluster answers fails within seconds.
    workers : int, optional
        Local instance only: CPUs it may use (default: all available cores).
    threads_per_worker : int, default 1
        CPUs each task reserves, and its torch threads.
    connect_timeout : float, default :data:`RAY_CONNECT_TIMEOUT_S`
        Seconds the address check waits for a connection, and again for the answer.

    Notes
    -----
    Workers need deepsad installed and the data under the same ``--data-root`` path;
    the autoencoder disk cache is used where that path is writable on a node.

    ``ray.init`` installs Ray's own SIGTERM handler. When the application had chosen
    one (a callable or ``SIG_IGN``, as the CLI does while a run lasts), it is put back
    right after ``ray.init``; a SIGTERM that Ray's handler caught during ``ray.init`` is
    passed on to it. Whatever handler was there before is restored when the run ends.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, threads_per_worker: int | None = None,
                 *, connect_timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
        if address is not None:
            parse_ray_address(address)  # a malformed address is refused now, not at run time
        self.address = address
        self.workers = _check_count("workers", workers) or available_cores()
        self.threads_per_worker = _check_count("threads_per_worker", threads_per_worker) or 1
        self.connect_timeout = connect_timeout
        self._ray = _import_ray()

    def cluster_address(self) -> str | None:
        """The cluster this executor connects to, None for a local instance.

        ``$RAY_ADDRESS`` stands in for a missing address or ``auto``, as in ``ray.init``.
        """
        if self.address not in (None, "auto"):
            return self.address
        return os.environ.get(RAY_ADDRESS_ENV) or self.address

    def check_address(self) -> None:
        """Raise :class:`RayConnectionError` now when the cluster address does not answer."""
        address = self.cluster_address()
        if address is not None:
            check_ray_address(address, self.connect_timeout)

    def run(self, groups: Sequence[Sequence[Task]], context: RunContext, on_rows: RowsCallback) -> None:
        """Submit every group and hand back rows as Ray tasks complete."""
        ray = self._ray
        started_here = False
        previous_sigterm = signal.getsignal(signal.SIGTERM)
        try:
            if not ray.is_initialized():
                started_here = True
                self._start_ray(previous_sigterm)
            self._run_on_ray(groups, context, on_rows)
        finally:
            if started_here:
                if ray.is_initialized():
                    ray.shutdown()
                _restore_sigterm(previous_sigterm)

    def _start_ray(self, previous_sigterm: Any) -> None:
        ray = self._ray
        address = self.cluster_address()
        if address is not None:
            check_ray_address(address, self.connect_timeout)
        try:
            if address is not None:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
        except SystemExit:
            # ray.init exits only from the SIGTERM handler it installed at its start: hand
            # that SIGTERM to the handler the application had chosen (the CLI's turns it
            # into KeyboardInterrupt); without one, exit as Ray meant to
            if _application_handler(previous_sigterm):
                _restore_sigterm(previous_sigterm)
                if callable(previous_sigterm):
                    previous_sigterm(signal.SIGTERM, None)
            raise
        except Exception as error:  # Ray's errors (ConnectionError, RuntimeError, ValueError, ...) vary by version
            if address is None:
                raise RayConnectionError(f"cannot start a local Ray instance: {_first_line(error)}") from None
            # the address answered the check, so it is some gRPC service: often Ray Client's
            # port given without ray://
            raise RayConnectionError(
                f"cannot connect to the Ray cluster at {address}: {_first_line(error)} "
                f"(expected {_ADDRESS_FORMS})"
            ) from None
        if _application_handler(previous_sigterm):
            _restore_sigterm(previous_sigterm)

    def _run_on_ray(self, groups: Sequence[Sequence[Task]], context: RunContext, on_rows: RowsCallback) -> None:
        ray = self._ray
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


def _application_handler(handler: Any) -> bool:
    """Whether a SIGTERM handler is one the application chose (not the default, not foreign)."""
    return handler is not None and handler is not signal.SIG_DFL


def _restore_sigterm(handler: Any) -> None:
    """Put back a SIGTERM handler that ``ray.init`` replaced (main thread only, as Python requires)."""
    if handler is None or not _in_main_thread():  # None: installed outside Python, cannot be restored
        return
    # unconditionally: even where Python still reports this handler, Ray's C++ core may
    # have replaced the OS-level one (it dumps a stack on SIGTERM); this puts Python's back
    signal.signal(signal.SIGTERM, handler)


def make_executor(name: str, *, workers: int | None = None, threads_per_worker: int | None = None,
                  address: str | None = None) -> Any:
    """The executor called ``name`` (one of :data:`EXECUTORS`).

    A Ray cluster address (``address`` or ``$RAY_ADDRESS``) is checked now, within
    seconds (:func:`check_ray_address`), so that one where no cluster answers is
    refused before a run is recorded.

    Raises
    ------
    InvalidInputError
        Unknown name, or options that do not apply (``address`` without ``ray``), or a
        malformed Ray address.
    DeepSADError
        ``ray`` without Ray installed (the message says how to install it).
    RayConnectionError
        A Ray cluster address where no cluster answers.
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
    executor = RayExecutor(address=address, workers=workers, threads_per_worker=threads_per_worker)
    executor.check_address()
    return executor
