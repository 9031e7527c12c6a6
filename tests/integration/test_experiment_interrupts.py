"""Stopping and losing experiment runs: Ray addresses, SIGTERM, killed drivers.

* ``--executor ray --address`` where no cluster answers: one line, exit 2, within seconds
  (a closed port, a port that speaks something else, a malformed address);
* SIGTERM stops a run the way Ctrl-C does, for every executor: exit 143, one closing line,
  finished tasks kept, the run recorded as interrupted, a rerun does the rest (Ray: once,
  as its start-up is slow);
* a run whose driver died without recording its end (SIGKILL) is marked ``killed``
  instead of staying ``running`` forever.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deepsad.experiments.store import ResultStore, process_alive, process_start_token, read_results

from helpers import require_file

CONFIG = """
experiment = "interrupts"
datasets = ["thyroid"]
seeds = [{seeds}]
[scenario]
gamma_l = 0.02
max_samples = 300
[training]
epochs = 3
lr_milestones = []
device = "cpu"
[autoencoder]
epochs = 3
lr_milestones = []
[methods.deepsad]
"""
N_TASKS = 24


@pytest.fixture()
def experiment(tmp_path: Path, data_root: Path) -> tuple[Path, Path]:
    """A small config of :data:`N_TASKS` tasks, and the data root holding its data."""
    require_file(data_root / "odds" / "thyroid.mat")
    config = tmp_path / "interrupts.toml"
    config.write_text(CONFIG.format(seeds=", ".join(str(seed) for seed in range(N_TASKS))))
    return config, data_root


def _deepsad(*argv: str) -> list[str]:
    return [sys.executable, "-m", "deepsad", *argv]


def _run_in_process(capsys, *argv: str) -> tuple[int, str, str]:
    from deepsad.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_error_line(code: int, err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("deepsad: error: ") and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]


# --------------------------------------------------------------------------- (a) Ray addresses


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _tcp_server(reply: bytes | None) -> Iterator[int]:
    """A local TCP server that answers every connection with ``reply`` (None: says nothing)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            held.append(connection)
            if reply is not None:
                connection.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        server.close()


@pytest.fixture()
def ray_installed() -> None:
    pytest.importorskip("ray")


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_closed_ray_port_is_one_line_and_no_run_is_recorded(ray_installed, tmp_path, capsys, scheme):
    results = tmp_path / "r.sqlite"
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    code, _, err = _run_in_process(capsys, "experiment", "run", "table6", "--profile", "quick", "--executor", "ray",
                                   "--address", address, "--results", str(results), "--no-progress")
    _assert_one_error_line(code, err, f"cannot reach the Ray cluster at {address}: nothing listens on port")
    assert not results.exists()  # refused before anything was recorded


def test_ray_address_that_is_not_a_grpc_service_is_refused(ray_installed, capsys, tmp_path):
    # e.g. the dashboard's port (HTTP/1.1) instead of the GCS's
    with _tcp_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as port:
        code, _, err = _run_in_process(capsys, "experiment", "run", "table6", "--profile", "quick", "--executor",
                                       "ray", "--address", f"127.0.0.1:{port}", "--results", str(tmp_path / "r.sqlite"))
    _assert_one_error_line(code, err, f"127.0.0.1:{port} answers but is not a Ray cluster")


def test_silent_ray_address_times_out(ray_installed):
    from deepsad.experiments.executors import RayConnectionError, check_ray_address

    with _tcp_server(None) as port:
        with pytest.raises(RayConnectionError, match="answers but is not a Ray cluster"):
            check_ray_address(f"127.0.0.1:{port}", timeout=0.2)


def test_http2_server_passes_the_address_check():
    from deepsad.experiments.executors import check_ray_address

    settings_frame = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # what a gRPC server sends first
    with _tcp_server(settings_frame) as port:
        check_ray_address(f"127.0.0.1:{port}", timeout=5)
        check_ray_address(f"ray://127.0.0.1:{port}", timeout=5)


@pytest.mark.parametrize("address", ["localhost", "head:port", "ray://head", "head:70000", ":6379"])
def test_malformed_ray_address_is_one_line(ray_installed, capsys, address):
    code, _, err = _run_in_process(capsys, "experiment", "run", "table6", "--profile", "quick", "--executor", "ray",
                                   "--address", address)
    _assert_one_error_line(code, err, f"invalid Ray address {address!r}: expected HOST:PORT")


def test_addresses_ray_resolves_itself_are_not_checked():
    from deepsad.experiments.executors import parse_ray_address

    assert parse_ray_address("auto") is None and parse_ray_address("local") is None
    assert parse_ray_address("anyscale://cluster") is None
    assert parse_ray_address("ray://head:10001") == ("head", 10001)
    assert parse_ray_address("[::1]:6379") == ("::1", 6379)


# --------------------------------------------------------------------------- (b) SIGTERM


class _FakeRay:
    """Just enough of Ray for :class:`RayExecutor` to start, run nothing and stop."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        class RayError(Exception):
            pass

    def __init__(self, on_init) -> None:
        self.on_init = on_init
        self.initialized = False
        self.sigterm_after_init = None

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **kwargs) -> None:
        # as ray.init does: its own handler, which exits the process
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        self.on_init(self)
        self.initialized = True

    def shutdown(self) -> None:
        self.initialized = False

    def remote(self, **options):
        self.sigterm_after_init = signal.getsignal(signal.SIGTERM)
        return lambda function: function


def _application_handler(signum, frame) -> None:
    raise KeyboardInterrupt


def test_ray_init_does_not_keep_its_sigterm_handler(monkeypatch):
    from deepsad.experiments.executors import RayExecutor

    fake = _FakeRay(on_init=lambda ray: None)
    monkeypatch.setitem(sys.modules, "ray", fake)
    previous = signal.signal(signal.SIGTERM, _application_handler)
    try:
        RayExecutor(workers=1).run([], context=None, on_rows=lambda rows: None)
        assert fake.sigterm_after_init is _application_handler  # back right after ray.init
        assert signal.getsignal(signal.SIGTERM) is _application_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    # without a handler of the application's, Ray's stays for the run and the default comes back after
    fake = _FakeRay(on_init=lambda ray: None)
    monkeypatch.setitem(sys.modules, "ray", fake)
    RayExecutor(workers=1).run([], context=None, on_rows=lambda rows: None)
    assert fake.sigterm_after_init not in (signal.SIG_DFL, _application_handler)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_sigterm_during_ray_init_reaches_the_application_handler(monkeypatch):
    from deepsad.experiments.executors import RayExecutor

    def sigterm_while_starting(ray) -> None:
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # Ray's handler: SystemExit

    monkeypatch.setitem(sys.modules, "ray", _FakeRay(on_init=sigterm_while_starting))
    previous = signal.signal(signal.SIGTERM, _application_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            RayExecutor(workers=1).run([], context=None, on_rows=lambda rows: None)
        assert signal.getsignal(signal.SIGTERM) is _application_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_stop_on_signal_raises_once_and_restores_the_handler():
    from deepsad.cli.experiment import StopOnSignal

    before = signal.getsignal(signal.SIGTERM)
    stop = StopOnSignal()
    with pytest.raises(KeyboardInterrupt):
        with stop:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes of the main thread
                time.sleep(0.01)
            pytest.fail("SIGTERM did not interrupt")
    assert stop.received == signal.SIGTERM and stop.exit_status() == 143 and stop.describe() == "stopped by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before

    with StopOnSignal() as again:  # a second SIGTERM while stopping is ignored
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    assert again.received == signal.SIGTERM


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _wait_for_rows(process: subprocess.Popen, results: Path, at_least: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _rows(results) >= at_least:
            return
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be stopped: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {at_least} rows after {timeout} s: {process.communicate()}")


def _start_run(config: Path, results: Path, data_root: Path, *executor: str) -> subprocess.Popen:
    env = {**os.environ, "DEEPSAD_DATA": str(data_root)}
    return subprocess.Popen(
        _deepsad("experiment", "run", str(config), *executor, "--results", str(results), "--no-progress"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,  # its own process group, so that killpg reaches it and its workers only
    )


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _all_gone(pids: list[int], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while any(process_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _assert_stopped_by_sigterm(process: subprocess.Popen, results: Path) -> int:
    """Exit 143, one closing line, saved rows all done, the run recorded as interrupted; returns rows saved."""
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM received" not in err, err  # no Python or C++ stack dump
    last = err.strip().splitlines()[-1]
    assert last.startswith("deepsad: stopped by SIGTERM; ") and "run the same command again to continue" in last, err
    saved = read_results(results)
    assert 1 <= len(saved) < N_TASKS and saved["task_key"].is_unique and (saved["status"] == "done").all()
    with ResultStore(results, create=False) as store:
        runs = store.runs()
    assert [run["status"] for run in runs] == ["interrupted"] and runs[0]["n_done"] == len(saved)
    return len(saved)


def _assert_rerun_resumes(capsys, config: Path, results: Path, data_root: Path, saved: int) -> None:
    code, out, err = _run_in_process(capsys, "experiment", "run", str(config), "--executor", "serial",
                                     "--results", str(results), "--data-root", str(data_root), "--no-progress")
    assert code == 0, err
    assert f"{saved} already done, {N_TASKS - saved} run now" in out
    final = read_results(results)
    assert len(final) == N_TASKS and final["task_key"].is_unique and (final["status"] == "done").all()


@pytest.mark.slow
def test_sigterm_stops_a_serial_run_cleanly_and_a_rerun_resumes(experiment, tmp_path, capsys):
    config, data_root = experiment
    results = tmp_path / "serial.sqlite"
    process = _start_run(config, results, data_root, "--executor", "serial")
    _wait_for_rows(process, results, 1)
    process.send_signal(signal.SIGTERM)
    saved = _assert_stopped_by_sigterm(process, results)
    _assert_rerun_resumes(capsys, config, results, data_root, saved)


@pytest.mark.slow
def test_sigterm_to_the_process_group_stops_a_local_pool_cleanly(experiment, tmp_path, capsys):
    """As a batch scheduler does: every process of the job gets SIGTERM, workers too."""
    config, data_root = experiment
    results = tmp_path / "local.sqlite"
    process = _start_run(config, results, data_root, "--executor", "local", "--workers", "2",
                         "--threads-per-worker", "1")
    _wait_for_rows(process, results, 1)
    workers = _children(process.pid)
    os.killpg(process.pid, signal.SIGTERM)
    saved = _assert_stopped_by_sigterm(process, results)
    assert workers and _all_gone(workers), "workers outlived the stopped run"
    _assert_rerun_resumes(capsys, config, results, data_root, saved)


@pytest.mark.slow
def test_sigterm_stops_a_ray_run_without_a_stack_dump(ray_installed, experiment, tmp_path, capsys):
    config, data_root = experiment
    results = tmp_path / "ray.sqlite"
    process = _start_run(config, results, data_root, "--executor", "ray", "--workers", "1")
    _wait_for_rows(process, results, 1)
    process.send_signal(signal.SIGTERM)
    saved = _assert_stopped_by_sigterm(process, results)
    _assert_rerun_resumes(capsys, config, results, data_root, saved)


# --------------------------------------------------------------------------- (c) killed runs


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=60)
    return process.pid


def _running_run(store: ResultStore, **where) -> int:
    return store.begin_run({"experiment": "interrupts", "profile": "full", "executor": "serial", "workers": 1,
                            "n_tasks": 3, "n_skipped": 0, **where})


def _task_row(key: str, run_status: str = "done") -> dict:
    return {"task_key": key, "experiment": "interrupts", "dataset": "thyroid", "parameter": "", "method": "deepsad",
            "setup_key": "s", "seed": 0, "status": run_status, "config_hash": "h"}


def test_runs_whose_process_is_gone_are_marked_killed(tmp_path):
    path = tmp_path / "r.sqlite"
    host = socket.gethostname()
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with ResultStore(path) as store:
            dead = _running_run(store, pid=driver.pid, pid_start=process_start_token(driver.pid))
            store.write([_task_row("a"), _task_row("b", "failed")], run_id=dead)
            # the pid lives on in another process (pid reuse): told apart by its start time
            reused = _running_run(store, pid=os.getpid(), pid_start="another-boot/1")
            alive = _running_run(store)  # this process, still running
            elsewhere = _running_run(store, pid=_dead_pid(), host=f"not-{host}")  # cannot be checked from here
            legacy = _running_run(store, pid=None)  # written before pids were recorded
            assert store.runs()[dead - 1]["status"] == "running"
            driver.kill()
            driver.wait(timeout=60)
            assert store.mark_dead_runs() == [dead]
            assert store.mark_dead_runs() == []
            runs = {run["run_id"]: run for run in store.runs()}
    finally:
        driver.kill()
        driver.wait(timeout=60)
    assert runs[dead]["status"] == "killed" and (runs[dead]["n_done"], runs[dead]["n_failed"]) == (1, 1)
    assert runs[dead]["finished_at"] is None  # when it died is unknown
    assert runs[reused]["status"] == "killed"  # by the next begin_run
    assert [runs[r]["status"] for r in (alive, elsewhere, legacy)] == ["running"] * 3
    assert runs[alive]["pid"] == os.getpid() and runs[alive]["host"] == host
    assert runs[alive]["pid_start"] == process_start_token(os.getpid())


def test_a_new_run_marks_the_killed_one(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        first = _running_run(store, pid=_dead_pid())
        second = _running_run(store)
        statuses = [run["status"] for run in store.runs()]
    assert (first, second) == (1, 2) and statuses == ["killed", "running"]


def test_process_alive_tells_zombies_and_the_living_apart():
    assert process_alive(os.getpid(), process_start_token(os.getpid()))
    assert not process_alive(_dead_pid()) and not process_alive(0)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while process_alive(zombie.pid) and time.monotonic() < deadline:  # exited but not yet reaped
        time.sleep(0.05)
    assert not process_alive(zombie.pid)
    zombie.wait(timeout=60)


def test_old_results_file_gets_the_run_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    with ResultStore(path) as store:
        _running_run(store, pid=_dead_pid())
    with sqlite3.connect(path) as conn:  # as written before runs had a pid
        conn.execute("ALTER TABLE runs DROP COLUMN pid_start")
        conn.execute("ALTER TABLE runs DROP COLUMN pid")
    with ResultStore(path, create=False) as store:
        assert store.runs()[0]["pid"] is None and store.mark_dead_runs() == []
        _running_run(store)
        assert [run["status"] for run in store.runs()] == ["running", "running"]


@pytest.mark.slow
def test_status_marks_a_sigkilled_run(experiment, tmp_path, capsys):
    config, data_root = experiment
    results = tmp_path / "killed.sqlite"
    process = _start_run(config, results, data_root, "--executor", "serial")
    _wait_for_rows(process, results, 1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    code, out, err = _run_in_process(capsys, "experiment", "status", str(results))
    assert code == 0, err
    assert "run 1: interrupts (full) killed; serial" in out, out
    saved = _rows(results)
    assert f"{saved} task(s) done, 0 failed, 1 run(s)" in out and f"{saved} done, 0 failed" in out
