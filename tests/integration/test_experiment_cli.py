"""``deepsad experiment``: end to end through the command line.

* kill -9 in the middle of a ``local`` run, then Ctrl-C in the middle of the next, then
  a final run: every task is in the store exactly once, none lost, none duplicated;
* the quick profile of Table 6 runs, and its report renders;
* user mistakes end in one line and exit status 2.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from deepsad.experiments.config import load_config
from deepsad.experiments.grid import expand
from deepsad.experiments.store import ResultStore, read_results

from helpers import require_file


def cli_main(argv: list[str]) -> int:
    """Run ``deepsad`` in this process (the experiment commands live in :mod:`deepsad.cli`)."""
    from deepsad.cli import main

    return main(argv)


def cli_command() -> list[str]:
    """The ``deepsad`` command for a subprocess, without relying on an installed entry point."""
    return [sys.executable, "-m", "deepsad"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("deepsad: error: ") and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]


@pytest.fixture
def odds(data_root):
    for name in ("arrhythmia", "cardio", "satellite", "satimage-2", "shuttle", "thyroid"):
        require_file(data_root / "odds" / f"{name}.mat")
    return data_root


# --------------------------------------------------------------------------- kill -9


CRASH_CONFIG = """
experiment = "crash"
datasets = ["thyroid", "cardio"]
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
[scenario]
gamma_l = 0.02
max_samples = 500
[training]
epochs = 12
lr_milestones = []
device = "cpu"
[autoencoder]
epochs = 12
lr_milestones = []
[methods.deepsad]
[methods.deepsvdd]
"""


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _start(config: Path, results: Path, data_root: Path) -> subprocess.Popen:
    env = {**os.environ, "DEEPSAD_DATA": str(data_root)}
    return subprocess.Popen(
        [*cli_command(), "experiment", "run", str(config), "--executor", "local", "--workers", "2",
         "--threads-per-worker", "1", "--results", str(results), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # SIG_DFL for SIGINT: a test run started in the background (`cmd &`) ignores it, and the child
        # would inherit that and never see the test's Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_rows(process: subprocess.Popen, results: Path, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _rows(results)
        if n >= at_least:
            return n
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {at_least} rows after {timeout} s")


@pytest.mark.slow
def test_kill_9_then_ctrl_c_then_rerun_loses_and_duplicates_nothing(tmp_path, odds, capsys):
    config = tmp_path / "crash.toml"
    config.write_text(CRASH_CONFIG)
    results = tmp_path / "results.sqlite"
    expected = {t.task_key for t in expand(load_config(config))}
    assert len(expected) == 48

    # 1. SIGKILL the driver once some rows are committed
    first = _start(config, results, odds)
    _wait_for_rows(first, results, 4)
    workers = _children(first.pid)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while not all(_gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers and all(_gone(w) for w in workers), "orphaned workers outlived the killed driver"
    saved = read_results(results)
    assert 4 <= len(saved) < 48 and saved["task_key"].is_unique and (saved["status"] == "done").all()
    before = dict(zip(saved["task_key"], saved["auc"]))

    # 2. Ctrl-C (SIGINT) the next run: it stops cleanly and says so
    second = _start(config, results, odds)
    _wait_for_rows(second, results, len(before) + 4)
    second.send_signal(signal.SIGINT)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    after_interrupt = read_results(results)
    assert after_interrupt["task_key"].is_unique

    # 3. run to the end (in this process, serially: starting a pool a third time adds nothing)
    code, out, err = run(capsys, "experiment", "run", str(config), "--executor", "serial", "--threads-per-worker", "1",
                         "--results", str(results), "--data-root", str(odds), "--no-progress")
    assert code == 0, err
    final = read_results(results)
    assert len(final) == 48 and set(final["task_key"]) == expected and final["task_key"].is_unique
    assert (final["status"] == "done").all()
    # none lost: rows committed before the kill are still there, unchanged, never rerun
    kept = final.set_index("task_key").loc[list(before)]
    assert kept["auc"].tolist() == list(before.values()) and set(kept["run_id"]) == {1}
    with ResultStore(results, create=False) as store:
        runs = store.runs()
    # the killed run never recorded its end: the next run found its process gone
    assert [r["status"] for r in runs] == ["killed", "interrupted", "finished"]
    assert runs[2]["n_skipped"] == len(after_interrupt)
    assert f"{48 - len(after_interrupt)} run now" in out


# --------------------------------------------------------------------------- Table 6 quick


@pytest.mark.slow
def test_table6_quick_profile_runs_and_reports(tmp_path, odds, capsys):
    results = tmp_path / "table6.sqlite"
    code, out, err = run(capsys, "experiment", "run", "table6", "--profile", "quick", "--executor", "serial",
                         "--threads-per-worker", "1", "--results", str(results), "--data-root", str(odds),
                         "--no-progress")
    assert code == 0, err
    assert "48 tasks; 0 already done, 48 run now (48 done, 0 failed)" in out
    frame = read_results(results)
    assert len(frame) == 48 and (frame["status"] == "done").all()
    assert set(frame["dataset"]) == set(load_config("table6").datasets)
    assert set(frame["method"]) == {"deepsad", "deepsvdd", "ocsvm", "ssad"}
    assert set(frame["parameter"]) == {""} and set(frame["seed"]) == {0, 1}
    means = frame.groupby("method")["auc"].mean()
    assert (means > 0.75).all(), means  # the benchmarks are easy; catches a broken pipeline
    assert set(frame.loc[frame["method"] == "deepsad", "ae_cache"]) == {"hit-memory"}  # Deep SVDD pretrained it

    report = tmp_path / "table6.md"
    code, out, err = run(capsys, "experiment", "report", str(results), "--out", str(report))
    assert code == 0, err
    text = report.read_text()
    assert "Table 6" in text and "paper" in text
    for name in ("Deep SAD", "Deep SVDD", "OC-SVM Raw", "SSAD Raw", "arrhythmia", "thyroid"):
        assert name in text, name

    code, out, _ = run(capsys, "experiment", "export", str(results), "--out", str(tmp_path / "t6.parquet"))
    assert code == 0 and "wrote 48 rows" in out
    assert pd.read_parquet(tmp_path / "t6.parquet")["auc"].tolist() == frame["auc"].tolist()

    # a second run finds everything done
    code, out, _ = run(capsys, "experiment", "run", "table6", "--profile", "quick", "--executor", "serial",
                       "--results", str(results), "--data-root", str(odds), "--no-progress")
    assert code == 0 and "48 already done, 0 run now" in out


# --------------------------------------------------------------------------- mistakes


def test_corrupt_results_file_is_refused_and_kept(tmp_path, capsys):
    results = tmp_path / "r.sqlite"
    results.write_bytes(b"\x00garbage" * 512)
    code, _, err = run(capsys, "experiment", "run", "table6", "--profile", "quick", "--executor", "serial",
                       "--results", str(results), "--no-progress")
    assert_user_error(code, err, "is not a readable results database")
    assert results.read_bytes() == b"\x00garbage" * 512
    code, _, err = run(capsys, "experiment", "export", str(results), "--out", str(tmp_path / "x.csv"))
    assert_user_error(code, err, "left untouched")


def test_config_mistakes_name_themselves(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('experiment = "bad"\ndatasets = ["cardio"]\n[methods.deepsadd]\n')
    code, _, err = run(capsys, "experiment", "run", str(path), "--executor", "serial")
    assert_user_error(code, err, "unknown method 'deepsadd'; known methods: ocsvm, hybrid-ocsvm")
    path.write_text('experiment = "bad"\ndatasets = ["mnist2"]\n[methods.deepsad]\n')
    code, _, err = run(capsys, "experiment", "run", str(path), "--executor", "serial")
    assert_user_error(code, err, "unknown dataset 'mnist2'; known datasets: mnist")
    code, _, err = run(capsys, "experiment", "run", "table6", "--profile", "fast")
    assert_user_error(code, err, "unknown profile 'fast'; this config offers: full, quick")
    code, _, err = run(capsys, "experiment", "run", "table9")
    assert_user_error(code, err, "config file not found: table9 (shipped configs: eta, rep_dim, table3")


def test_ray_without_ray_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    code, _, err = run(capsys, "experiment", "run", "table6", "--profile", "quick", "--executor", "ray")
    assert_user_error(code, err, "pip install 'deepsad[ray]'")


def test_dry_run_and_list(capsys):
    code, out, _ = run(capsys, "experiment", "run", "table3", "--profile", "quick", "--dry-run")
    assert code == 0 and out.startswith("table3 (quick): 96 tasks in 12 groups")
    assert "gamma_l=0.0" in out and "supervised" in out
    code, out, _ = run(capsys, "experiment", "run", "table6", "--profile", "quick", "--dry-run", "--stack", "2")
    # quick Table 6: 6 datasets x 2 seeds; Deep SAD and Deep SVDD stack per dataset
    assert code == 0 and "--stack 2: 24 tasks in 6 stacked units, 12 plain groups" in out
    code, out, _ = run(capsys, "experiment", "list")
    assert code == 0 and "table6" in out and "full, quick" in out
