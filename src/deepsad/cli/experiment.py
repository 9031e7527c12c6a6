"""``deepsad experiment``: run the paper's experiments, export and report their results.

Sub-commands: ``list`` (the shipped configs), ``run`` (expand a config into tasks and run
them serially, in a local process pool or on Ray, into an SQLite results file; a rerun
skips finished tasks; Ctrl-C or SIGTERM stops it cleanly), ``status`` (a results file's
runs and task counts), ``export`` (results to CSV or Parquet), ``report`` (the
paper's tables, optionally figures) and ``rank`` (average ranks, Friedman / Nemenyi tests and
critical-difference diagrams over many datasets, per scenario).

``add_experiment_commands`` registers them on the ``deepsad`` parser (:mod:`deepsad.cli`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepsad.cli.arguments import add_command, add_command_group, add_shared_argument
from deepsad.errors import DeepSADError, InvalidInputError

#: Exit status when some tasks failed (their errors are in the results file).
EXIT_TASKS_FAILED = 1
#: Exit status after Ctrl-C (128 + SIGINT); after SIGTERM it is 128 + SIGTERM (143), as in the shell.
EXIT_INTERRUPTED = 130


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_experiment_commands(subparsers: Any) -> None:
    """Add the ``experiment`` command and its sub-commands to the ``deepsad`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``deepsad`` parser's sub-commands.
    """
    commands = add_command_group(
        subparsers, "experiment", dest="experiment_command",
        help="run the paper's experiments and report their results",
        description="Run the paper's experiments (configs/*.toml) and turn their results into its tables.",
    )
    add_command(commands, "list", cmd_list, help="the shipped experiment configs and their profiles")
    _add_run(commands)
    _add_status(commands)
    _add_export(commands)
    _add_report(commands)
    _add_rank(commands)


_RUN_DESCRIPTION = (
    "Expand CONFIG into tasks (dataset, normal class, known classes, ratio, seed, method) and run "
    "those not yet finished in the results file. Ctrl-C stops cleanly; run again to continue."
)


def _add_run(commands: Any) -> None:
    p = add_command(commands, "run", cmd_run, help="run an experiment config (a rerun skips finished tasks)",
                    description=_RUN_DESCRIPTION)
    p.add_argument("config", metavar="CONFIG", help="a TOML config file, or a shipped config name (table3 ... table6, eta, rep_dim)")
    p.add_argument("--profile", default="full", help="'full' (the paper) or a profile of the config such as 'quick' (default: full)")
    p.add_argument("--executor", choices=("serial", "local", "ray"), default="local",
                   help="serial: this process; local: a process pool (default); ray: a Ray cluster")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="worker processes (local; default: one per core) or CPUs of a local Ray instance")
    p.add_argument("--threads-per-worker", type=_positive_int, metavar="T",
                   help="torch/BLAS threads per worker (default: cores // workers for local, 1 for serial and ray)")
    p.add_argument("--address", metavar="RAY_ADDRESS", help="connect to this Ray cluster (default: start a local one)")
    p.add_argument("--results", metavar="PATH",
                   help="SQLite results file (default: results/<experiment>_<profile>.sqlite)")
    add_shared_argument(p, "data_root")
    p.add_argument("--ae-cache", choices=("disk", "memory", "off"), default="disk",
                   help="share one pretrained autoencoder per training set and settings: in each worker's memory "
                        "and on disk (default), in memory only, or not at all")
    p.add_argument("--no-ae-cache", dest="ae_cache", action="store_const", const="off",
                   help="the same as --ae-cache off: every task pretrains its own autoencoder")
    p.add_argument("--ae-cache-dir", metavar="DIR", help="on-disk autoencoder cache (default: <results folder>/ae-cache)")
    p.add_argument("--rerun-changed", action="store_true",
                   help="rerun finished tasks whose settings differ from the config (default: refuse)")
    p.add_argument("--no-retry-failed", action="store_true", help="do not rerun tasks stored as failed")
    p.add_argument("--stack", type=_positive_int, default=1, metavar="K",
                   help="train up to K Deep SAD / Deep SVDD fits of a cell (other seeds or draws) at once as one "
                        "stacked model (default 1: off); pays off for the ODDS MLPs, the MNIST LeNet (K = 2 on CPU) "
                        "and on GPUs")
    p.add_argument("--dry-run", action="store_true", help="list the tasks per cell and exit")
    add_shared_argument(p, "no_progress")


_STATUS_DESCRIPTION = (
    "List the runs recorded in RESULTS with their status, and count the tasks done and failed. "
    "A run whose process is gone without recording its end (kill -9, out of memory, a crash) is "
    "marked 'killed' here, if it ran on this host."
)


def _add_status(commands: Any) -> None:
    p = add_command(commands, "status", cmd_status, description=_STATUS_DESCRIPTION,
                    help="a results file's runs (running, finished, interrupted, killed) and task counts")
    p.add_argument("results", metavar="RESULTS", help="SQLite results file")


def _add_export(commands: Any) -> None:
    p = add_command(commands, "export", cmd_export, help="write a results file's rows to CSV or Parquet")
    p.add_argument("results", metavar="RESULTS", help="SQLite results file")
    p.add_argument("--out", required=True, metavar="FILE.csv|FILE.parquet", help="output file (format by suffix)")
    p.add_argument("--experiment", metavar="NAME", help="only this experiment's rows")


def _add_report(commands: Any) -> None:
    p = add_command(commands, "report", cmd_report, help="the paper's tables (and figures) from a results file")
    p.add_argument("results", metavar="RESULTS", nargs="+", help="SQLite results file(s)")
    p.add_argument("--format", choices=("md", "latex", "csv"), default="md", help="output format (default: md)")
    p.add_argument("--figures", metavar="DIR", help="also draw the figures (PNG, PDF, SVG) into DIR (needs matplotlib)")
    p.add_argument("--out", metavar="FILE", help="write the report here (default: standard output)")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper's numbers")


_RANK_DESCRIPTION = (
    "Compare methods over many datasets, per scenario: mean AUC per dataset, average ranks, wins "
    "against a reference, the Friedman test (with Iman-Davenport's F) and the Nemenyi critical "
    "difference (Demsar 2006), as Markdown, plus critical-difference diagrams. Scenarios are what "
    "differs between the rows' experiment, profile and setting (or the file, with --scenario-from file)."
)


def _add_rank(commands: Any) -> None:
    p = add_command(commands, "rank", cmd_rank, description=_RANK_DESCRIPTION,
                    help="average ranks, Friedman / Nemenyi tests and CD diagrams over many datasets")
    p.add_argument("results", metavar="RESULTS", nargs="*", help="SQLite results file(s)")
    p.add_argument("--extra", metavar="CSV", action="append", default=[],
                   help="rows from outside the store, e.g. a peer library's benchmark: columns dataset, method, seed, "
                        "auc (and scenario when there are several); repeatable")
    p.add_argument("--out", metavar="FILE", help="write the Markdown report here (default: standard output)")
    p.add_argument("--figures", metavar="DIR", help="also draw the CD diagrams (PNG, PDF, SVG) into DIR (needs matplotlib)")
    p.add_argument("--reference", default="iforest", metavar="METHOD",
                   help="count wins / ties / losses against this method (default: iforest; 'none' to leave out)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the tests (default: 0.05)")
    p.add_argument("--missing", choices=("drop-datasets", "drop-methods", "raise"), default="drop-datasets",
                   help="datasets where some method has no result: leave the datasets out of the ranking (default), "
                        "leave the incomplete methods out, or refuse")
    p.add_argument("--scenario-from", choices=("rows", "file"), default="rows",
                   help="rows: scenarios from the rows' experiment / profile / setting (default); file: one scenario "
                        "per results file, named by its stem")
    p.add_argument("--tie-correction", action="store_true",
                   help="correct the Friedman statistic for ties as scipy does (default: Demsar's formula)")
    p.add_argument("--label", metavar="METHOD=NAME", action="append", default=[], type=method_label,
                   help="show METHOD as NAME in the tables and diagrams (default: the paper's names); repeatable")


# --- list ----------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    """Run ``deepsad experiment list``: the shipped configs and their profiles; returns the exit status."""
    from deepsad.experiments.config import CONFIG_DIR, find_config, profiles_of, read_toml, shipped_configs

    names = shipped_configs()
    if not names:
        print(f"no shipped configs found (looked in {CONFIG_DIR}); pass a config file's path to 'run'")
        return 0
    for name in names:
        path = find_config(name)
        data = read_toml(path)
        print(f"{name:<8} profiles: {', '.join(profiles_of(data)):<12} {data.get('description', '')}")
    print("run one with: deepsad experiment run NAME [--profile quick]")
    return 0


# --- run -----------------------------------------------------------------------------

def _default_results(experiment: str, profile: str) -> Path:
    return Path("results") / f"{experiment}_{profile}.sqlite"


class StopOnSignal:
    """While active, SIGTERM stops the run the way Ctrl-C does.

    Batch schedulers and ``kill`` send SIGTERM; Python's default for it ends the process
    on the spot (and Ray's handler dumps a C++ stack), losing the clean stop that Ctrl-C
    gets. Inside the ``with`` block the first SIGTERM raises ``KeyboardInterrupt`` in the
    main thread; later ones are ignored, so they cannot cut the cleanup short (a second
    Ctrl-C still can). The previous handler is restored on exit. Only the CLI uses this:
    library code leaves process-wide signal handlers alone.

    Attributes
    ----------
    received : int or None
        The signal that arrived, if any.
    """

    def __init__(self, signals: Sequence[int] = (signal.SIGTERM,)) -> None:
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            return  # already stopping
        self.received = signum
        raise KeyboardInterrupt

    def __enter__(self) -> StopOnSignal:
        for signum in self.signals:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                break
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            if previous is not None:  # None: a handler installed outside Python, which cannot be restored
                signal.signal(signum, previous)
        self._previous.clear()

    def exit_status(self) -> int:
        """128 + the signal that arrived (Ctrl-C's 130 when none did)."""
        return 128 + self.received if self.received is not None else EXIT_INTERRUPTED

    def describe(self) -> str:
        """How the run was stopped, for the last line."""
        return f"stopped by {signal.Signals(self.received).name}" if self.received is not None else "interrupted"


def cmd_run(args: argparse.Namespace) -> int:
    """Run ``deepsad experiment run``; returns 0, 1 when tasks failed, 128 + the signal when stopped."""
    from deepsad.experiments.config import load_config

    config = load_config(args.config, args.profile, data_root=args.data_root)
    if args.dry_run:
        return _dry_run(config, args)
    from deepsad.experiments.executors import make_executor
    from deepsad.experiments.runner import run_experiment

    executor = make_executor(args.executor, workers=args.workers, threads_per_worker=args.threads_per_worker,
                             address=args.address)
    results = Path(args.results) if args.results else _default_results(config.experiment, config.profile)
    # SIGTERM (a scheduler stopping the job, `kill`) takes the same clean path as Ctrl-C:
    # finished tasks stay saved and the run is recorded as interrupted
    stop = StopOnSignal()
    try:
        with stop:
            summary = run_experiment(
                config, results, executor, data_root=args.data_root, use_ae_cache=args.ae_cache != "off",
                ae_cache_dir=args.ae_cache_dir, ae_cache_disk=args.ae_cache == "disk",
                rerun_changed=args.rerun_changed, retry_failed=not args.no_retry_failed,
                progress=not args.no_progress, argv=sys.argv, stack=args.stack,
            )
    except KeyboardInterrupt:  # before the run was recorded, or after it ended
        print(f"deepsad: {stop.describe()}", file=sys.stderr)
        return stop.exit_status()
    ran = summary.n_done + summary.n_failed
    print(f"{config.experiment} ({config.profile}): {summary.n_tasks} tasks; {summary.n_skipped} already done, "
          f"{ran} run now ({summary.n_done} done, {summary.n_failed} failed) in {summary.seconds:.1f} s")
    print(f"results: {summary.results}")
    if summary.interrupted:
        print(f"deepsad: {stop.describe()}; {summary.n_done + summary.n_failed} task(s) saved, {summary.n_pending} "
              "not run yet; run the same command again to continue", file=sys.stderr)
        return stop.exit_status()
    if summary.n_failed:
        print(f"deepsad: {summary.n_failed} task(s) failed (errors are stored with them), e.g.", file=sys.stderr)
        for example in summary.failed_examples:
            print(f"  {example.splitlines()[0]}", file=sys.stderr)
        return EXIT_TASKS_FAILED
    print(f"report: deepsad experiment report {summary.results}")
    return 0


def _dry_run(config: Any, args: argparse.Namespace) -> int:
    from deepsad.data.registry import resolve_data_root
    from deepsad.experiments.grid import count_by_cell, expand, format_value, group_tasks

    tasks = expand(config, data_root=resolve_data_root(args.data_root))
    counts = count_by_cell(tasks)
    print(f"{config.experiment} ({config.profile}): {len(tasks)} tasks in {len(group_tasks(tasks))} groups "
          f"(tasks sharing data and autoencoder)")
    if args.stack > 1:
        from deepsad.experiments.stacking import execution_units

        units = execution_units(tasks, args.stack)
        stacked = [unit for unit in units if len({task.group_key for task in unit}) > 1]
        print(f"--stack {args.stack}: {sum(len(u) for u in stacked)} tasks in {len(stacked)} stacked units, "
              f"{len(units) - len(stacked)} plain groups")
    for (dataset, parameter, value, method), n in counts.items():
        cell = f"{parameter}={format_value(parameter, value)}" if parameter else "-"
        print(f"  {dataset:<12} {cell:<16} {method:<16} {n}")
    return 0


# --- status ------------------------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    """Run ``deepsad experiment status``: a results file's runs and task counts; returns the exit status."""
    from deepsad.experiments.store import ResultsFileError, ResultStore

    with ResultStore(args.results, create=False) as store:
        try:
            store.mark_dead_runs()
        except ResultsFileError as error:  # e.g. a read-only copy: show the runs as recorded
            logging.getLogger(__name__).warning("runs whose process is gone were not marked: %s", error)
        runs = store.runs()
        counts = {status: store.count(status) for status in ("done", "failed")}
        for run in runs:
            if run.get("status") == "running":  # its counts are written when it ends: count what it saved so far
                run["n_done"] = store.count("done", run_id=run["run_id"])
                run["n_failed"] = store.count("failed", run_id=run["run_id"])
    print(f"{args.results}: {counts['done']} task(s) done, {counts['failed']} failed, {len(runs)} run(s)")
    for run in runs:
        print("  " + _describe_run(run))
    return 0


def _describe_run(run: dict[str, Any]) -> str:
    status = run.get("status") or "?"
    if status == "running":
        status = f"running (pid {run.get('pid')} on {run.get('host')})" if run.get("pid") else "running"
    ended = f" to {run['finished_at']}" if run.get("finished_at") else ""
    counts = f"{run.get('n_done') or 0} done, {run.get('n_failed') or 0} failed, {run.get('n_skipped') or 0} skipped"
    return (f"run {run['run_id']}: {run.get('experiment')} ({run.get('profile')}) {status}; "
            f"{run.get('executor')}, {run.get('started_at')}{ended}; {counts}")


# --- export / report -------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    """Run ``deepsad experiment export``: the results as CSV or Parquet; returns the exit status."""
    from deepsad.experiments.store import export_results

    n = export_results(args.results, args.out, experiment=args.experiment)
    print(f"wrote {n} rows to {args.out}")
    return 0


def _refuse_overwriting_inputs(out: str | None, inputs: list[str]) -> None:
    """Refuse an ``--out`` that is one of the files the report reads (it would be replaced)."""
    if not out or not Path(out).exists():
        return
    for path in inputs:
        if Path(path).exists() and Path(out).samefile(path):
            raise InvalidInputError(f"--out {out} is the input {path}; write the report to another file")


def cmd_report(args: argparse.Namespace) -> int:
    """Run ``deepsad experiment report``: the paper's tables (and figures); returns the exit status."""
    import pandas as pd

    from deepsad.experiments.store import read_results

    try:
        from deepsad.experiments.report import write_report
    except ImportError as error:  # pragma: no cover - a build without the report module
        raise DeepSADError(f"reports are not available in this build: {error}") from None
    _refuse_overwriting_inputs(args.out, args.results)
    frames = [read_results(path) for path in args.results]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    output = write_report(frame, args.format, args.out, args.figures, with_paper=not args.no_paper)
    if args.out:
        print(f"wrote {args.out}" + (f" and {len(output.figures)} figure file(s) to {args.figures}" if output.figures else ""))
    elif output.figures:
        print(f"wrote {len(output.figures)} figure file(s) to {args.figures}", file=sys.stderr)
    return 0


def method_label(text: str) -> tuple[str, str]:
    """``--label``'s ``METHOD=NAME``, split; argparse reports the ``ValueError`` as a usage error."""
    method, sep, name = text.partition("=")
    if not sep or not method.strip() or not name.strip():
        raise ValueError(f"expected METHOD=NAME, got {text!r}")
    return method.strip(), name.strip()


method_label.__name__ = "METHOD=NAME label"  # what argparse names in its error message


def cmd_rank(args: argparse.Namespace) -> int:
    """Run ``deepsad experiment rank``: ranks and tests over many datasets; returns the exit status."""
    import pandas as pd

    from deepsad.experiments.rank_report import combine_rows, read_extra_rows, write_rank_report
    from deepsad.experiments.store import read_results

    if not args.results and not args.extra:
        raise DeepSADError("nothing to rank: give results file(s) and/or --extra CSV files")
    _refuse_overwriting_inputs(args.out, [*args.results, *args.extra])
    frames = []
    for path in args.results:
        frame = read_results(path)
        if args.scenario_from == "file":
            frame["scenario"] = Path(path).stem
        frames.append(frame)
    results = pd.concat(frames, ignore_index=True) if frames else None
    rows = combine_rows(results, [read_extra_rows(path) for path in args.extra])
    reference = None if args.reference.lower() == "none" else args.reference
    output = write_rank_report(rows, args.out, args.figures, reference=reference, alpha=args.alpha,
                               missing=args.missing, tie_correction=args.tie_correction, labels=dict(args.label))
    figures = f" and {len(output.figures)} figure file(s) to {args.figures}" if output.figures else ""
    if args.out:
        print(f"wrote {args.out}{figures}")
    elif figures:
        print(f"wrote{figures}", file=sys.stderr)
    return 0
