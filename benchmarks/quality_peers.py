"""DeepOD's DeepSAD on the tabular quality benchmark's own draws: rows for ``deepsad experiment rank``.

For every (dataset, seed) setup of ``configs/tabular.toml`` in a profile, DeepOD's DeepSAD
(Xu et al.'s DeepOD library, a benchmark-only peer: it is no dependency of deepsad) is fitted
on exactly what deepsad's methods of that setup are fitted on: the runner's own data
preparation (:func:`deepsad.experiments.preparation.prepare_data`: the scenario draw from the
task's seed, the 60:40 split, the semi-labels, standardization with training statistics)
and the training cap that the config gives deepsad's ``deepsad`` method
(:func:`deepsad.experiments.preparation.cap_training_set`, drawn from the seed alone, so the peer
sees the very subset Deep SAD sees). The test set is the task's whole test set, scored with
DeepOD's ``decision_function`` (higher = more anomalous).

DeepOD runs at its defaults (100 epochs, batch 64, lr 1e-3, MLP 100-50-128, ReLU, no bias),
as deepsad's ``deepsad`` method runs at deepsad's: this is a benchmark of what a user gets
out of the box. Only ``device`` (DeepOD defaults to ``"cuda"``, which fails on a machine
without one), ``verbose`` (silent) and ``random_state`` (the task's seed) are set. DeepOD
takes ``y`` with 1 = labeled anomaly and 0 = unlabeled, so deepsad's semi-labels map as in
``benchmarks/peerbench/runners.py``: -1 -> 1, and both 0 and +1 (labeled normal) -> 0 (the
benchmark's scenarios label no normal samples anyway).

Rows go to a CSV (one per setup, written as each fit finishes), with the columns
:data:`COLUMNS`; ``scenario`` is the profile's name, which is how ``deepsad experiment
rank`` names the scenarios of result files that differ by profile (``full``, ``polluted``),
so that the file can be passed as ``--extra`` beside the stores. A rerun skips the setups
the file holds as done (resumable) and retries failed ones; a failing fit is a row with
``status = "failed"`` and its error, never the end of the run.

    python benchmarks/quality_peers.py --profile full --data-root ../shared/data --workers 2 \\
        --out results/deepod_full.csv
    python benchmarks/quality_peers.py --profile quick --only thyroid --out /tmp/peer.csv

DeepOD is installed by ``scripts/bench.sh`` (with ``--no-deps``: its releases pin an old torch).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError
from deepsad.experiments.config import ExperimentConfig, load_config, stable_hash
from deepsad.experiments.grid import Task, expand
from deepsad.experiments.preparation import PreparedData, cap_training_set, prepare_data
from deepsad.experiments.store import utc_now
from deepsad.experiments.threads import configure_threads

logger = logging.getLogger("quality_peers")

#: The method name of the rows (a name of its own: ``rank`` refuses one shared with the store's).
METHOD = "deepod-deepsad"
#: The benchmark config (a shipped config name or a TOML path).
CONFIG = "tabular"
PROFILES = ("full", "polluted", "quick")
#: The config method whose training cap the peer gets: the deep method it is compared with.
CAP_METHOD = "deepsad"

#: DeepOD's DeepSAD parameters beside its defaults (see the module docstring).
SILENT = {"verbose": 0}

COLUMNS: tuple[str, ...] = (
    "dataset", "method", "seed", "scenario", "auc", "average_precision", "fit_seconds", "score_seconds",
    "n_train", "n_labeled_anomaly", "n_test", "max_train_samples", "train_capped_from", "status", "error",
    "profile", "setup_key", "config_hash", "device", "threads", "deepod", "torch", "finished_at",
)

#: Longest error text kept in a row.
MAX_ERROR_CHARS = 500


# --------------------------------------------------------------------------- tasks


def load_benchmark(profile: str, *, config: str = CONFIG, only: Sequence[str] | None = None,
                   data_root: str | os.PathLike | None = None) -> ExperimentConfig:
    """The benchmark config of ``profile``, restricted to the datasets ``only`` names.

    Restricting keeps every task's hash and data: a task is the same whether it runs in a
    restricted or in the whole benchmark, so results of both share one results file.

    Raises
    ------
    InvalidInputError
        For a dataset of ``only`` that the profile does not run.
    """
    loaded = load_config(config, profile, data_root=data_root)
    if not only:
        return loaded
    unknown = [name for name in only if name not in loaded.datasets]
    if unknown:
        raise InvalidInputError(f"--only: {', '.join(unknown)} not in the {profile!r} profile of {loaded.source}; "
                                f"its datasets: {', '.join(loaded.datasets)}")
    return dataclasses.replace(loaded, datasets=tuple(d for d in loaded.datasets if d in set(only)))


def peer_tasks(config: ExperimentConfig, *, data_root: str | os.PathLike | None = None,
               cap_method: str = CAP_METHOD) -> list[Task]:
    """One task per (dataset, setup) of ``config``: the ``cap_method``'s task of that setup.

    Every method of a setup draws the same data (``Task.data_spec``), so any of its tasks
    prepares the peer's data; the ``cap_method``'s also carries the training cap to apply.
    A setup that the method does not run (a seed subset) gets another method's task with
    the method's cap.

    Raises
    ------
    InvalidInputError
        When ``config`` has no method ``cap_method``.
    """
    specs = {method.name: method for method in config.methods}
    if cap_method not in specs:
        raise InvalidInputError(f"{config.source}: no method {cap_method!r} to take the training cap from; "
                                f"its methods: {', '.join(specs)}")
    cap = specs[cap_method].max_train_samples
    chosen: dict[tuple[str, str], Task] = {}
    for task in expand(config, data_root=data_root):
        key = (task.dataset, task.setup_key)
        if key not in chosen or task.method == cap_method:
            chosen[key] = task
    return [task if task.method == cap_method else dataclasses.replace(task, max_train_samples=cap)
            for task in chosen.values()]


def peer_data(task: Task, data_root: str | os.PathLike | None) -> PreparedData:
    """The task's data exactly as the runner fits a method with the task's cap on it."""
    data = prepare_data(task, None if data_root is None else str(data_root))
    if task.max_train_samples is not None:
        data = cap_training_set(data, task.max_train_samples, task.seed)
    return data


def deepod_labels(semi_labels: np.ndarray) -> np.ndarray:
    """DeepOD's ``y``: 1 for a labeled anomaly (deepsad's -1), 0 for the rest (0 and +1)."""
    return (np.asarray(semi_labels) == -1).astype(np.int64)


def peer_settings() -> dict[str, Any]:
    """The DeepOD parameters besides ``random_state``: its defaults, silent, on a device that exists."""
    import torch

    return {**SILENT, "device": "cuda" if torch.cuda.is_available() else "cpu"}


def row_hash(task: Task, settings: Mapping[str, Any]) -> str:
    """What a peer row depends on: the data, the cap and the estimator's settings."""
    return stable_hash({"data": task.data_spec(), "max_train_samples": task.max_train_samples,
                        "method": METHOD, "settings": dict(settings)})


# --------------------------------------------------------------------------- one fit


def run_one(task: Task, data_root: str | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Fit DeepOD's DeepSAD on the task's data and score its test set; never raises.

    Returns
    -------
    dict
        A row with the keys :data:`COLUMNS`: ``done`` with the test AUC and average
        precision, or ``failed`` with the error.
    """
    import torch

    row: dict[str, Any] = {column: None for column in COLUMNS}
    row.update(dataset=task.dataset, method=METHOD, seed=task.seed, scenario=task.profile, profile=task.profile,
               setup_key=task.setup_key, max_train_samples=task.max_train_samples, status="failed",
               config_hash=row_hash(task, settings), device=settings.get("device"),
               threads=torch.get_num_threads(), deepod=package_version("deepod"), torch=torch.__version__)
    started = None
    try:
        data = peer_data(task, data_root)
        cap = data.summary.get("train_cap")  # present only where the cap removed samples
        row.update(n_train=int(data.y_train.size), n_labeled_anomaly=int(np.sum(data.y_train == -1)),
                   n_test=int(data.y_test.size), train_capped_from=cap["of"] if cap else None)
        from deepod.models.tabular import DeepSAD as DeepODDeepSAD

        estimator = DeepODDeepSAD(**settings, random_state=task.seed)
        started = time.perf_counter()
        estimator.fit(data.X_train, deepod_labels(data.y_train))  # its fit also scores the training set
        row["fit_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        scores = np.asarray(estimator.decision_function(data.X_test), dtype=np.float64)
        row["score_seconds"] = time.perf_counter() - started
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{int(np.sum(~np.isfinite(scores)))} test scores are NaN or infinite")
        from sklearn.metrics import average_precision_score, roc_auc_score

        row["auc"] = float(roc_auc_score(data.y_test, scores))
        row["average_precision"] = float(average_precision_score(data.y_test, scores))
        row["status"] = "done"
    except Exception as error:  # a failing fit is a result; the run goes on
        if started is not None and row["fit_seconds"] is None:
            row["fit_seconds"] = time.perf_counter() - started
        message = " ".join(str(error).split()) or type(error).__name__
        row["error"] = f"{type(error).__name__}: {message}"[:MAX_ERROR_CHARS]
    row["finished_at"] = utc_now()
    return row


def package_version(name: str) -> str | None:
    """The installed version of a distribution, ``None`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- the results file


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a peer CSV (empty when the file does not exist)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _key(dataset: Any, seed: Any, scenario: Any) -> tuple[str, str, str]:
    return str(dataset), str(int(float(seed))), str(scenario)


def plan(tasks: Sequence[Task], existing: Iterable[Mapping[str, str]], settings: Mapping[str, Any], *,
         retry_failed: bool = True, rerun_changed: bool = False) -> tuple[list[Task], list[Mapping[str, str]]]:
    """Split the work: the tasks to run, and the existing rows to keep.

    A task whose row is done with the same :func:`row_hash` is skipped; a failed row is
    run again (unless ``retry_failed`` is off) and its row dropped, so that the file never
    holds two rows of one setup. Rows of setups outside ``tasks`` (other profiles or
    datasets) are kept as they are.

    Raises
    ------
    InvalidInputError
        A done row whose data or settings differ from the task's, without ``rerun_changed``.
    """
    by_key = {_key(t.dataset, t.seed, t.profile): t for t in tasks}
    keep: list[Mapping[str, str]] = []
    settled: set[tuple[str, str, str]] = set()
    changed: list[str] = []
    for row in existing:
        key = _key(row["dataset"], row["seed"], row["scenario"])
        task = by_key.get(key)
        if task is None or row.get("method") != METHOD:
            keep.append(row)
            continue
        same = row.get("config_hash") == row_hash(task, settings)
        if row.get("status") == "done" and not same and not rerun_changed:
            changed.append("/".join(key))
        if (row.get("status") == "done" and same) or (row.get("status") != "done" and same and not retry_failed):
            keep.append(row)
            settled.add(key)
    if changed:
        raise InvalidInputError(f"{len(changed)} done row(s) were run on other data or settings (e.g. {changed[0]}); "
                                "write to another --out file, or pass --rerun-changed to replace them")
    return [t for key, t in by_key.items() if key not in settled], keep


class _Writer:
    """Appends rows to the CSV and flushes each, so an interrupted run keeps what finished."""

    def __init__(self, path: Path, keep: Sequence[Mapping[str, str]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # rewrite the kept rows first (dropping the failed ones to be retried), atomically
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(keep)
        os.replace(tmp, path)
        self._handle = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=COLUMNS, extrasaction="ignore")

    def write(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow(row)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


# --------------------------------------------------------------------------- the driver


@dataclasses.dataclass
class PeerSummary:
    """What :func:`run_peers` did: tasks of the profile, skipped, run now (done / failed), seconds."""

    n_tasks: int
    n_skipped: int
    n_done: int = 0
    n_failed: int = 0
    seconds: float = 0.0
    failed_examples: list[str] = dataclasses.field(default_factory=list)


def _init_worker(threads: int) -> None:
    configure_threads(threads)


def run_peers(profile: str, out: str | os.PathLike, *, data_root: str | os.PathLike | None = None,
              only: Sequence[str] | None = None, workers: int = 1, config: str = CONFIG,
              retry_failed: bool = True, rerun_changed: bool = False,
              on_row: Callable[[Mapping[str, Any]], None] | None = None) -> PeerSummary:
    """Fit the peer on every setup of ``profile`` that ``out`` does not hold as done.

    Parameters
    ----------
    profile : str
    out : path
        The CSV (created, or extended).
    data_root : path, optional
        Default: ``$DEEPSAD_DATA``, else the user cache folder.
    only : sequence of str, optional
        Only these datasets.
    workers : int, default 1
        Processes, one torch / BLAS thread each (1: in this process).
    config : str
        The benchmark config.
    retry_failed, rerun_changed : bool
        See :func:`plan`.
    on_row : callable, optional
        Called with every new row (progress output).
    """
    from deepsad.data.registry import resolve_data_root

    started = time.perf_counter()
    root = str(Path(resolve_data_root(data_root)).expanduser().resolve())
    benchmark = load_benchmark(profile, config=config, only=only, data_root=root)
    tasks = peer_tasks(benchmark, data_root=root)
    settings = peer_settings()
    out = Path(out)
    todo, keep = plan(tasks, read_rows(out), settings, retry_failed=retry_failed, rerun_changed=rerun_changed)
    summary = PeerSummary(n_tasks=len(tasks), n_skipped=len(tasks) - len(todo))
    writer = _Writer(out, keep)

    def record(row: Mapping[str, Any]) -> None:
        writer.write(row)
        if row["status"] == "done":
            summary.n_done += 1
        else:
            summary.n_failed += 1
            if len(summary.failed_examples) < 5:
                summary.failed_examples.append(f"{row['dataset']} seed {row['seed']}: {row['error']}")
        if on_row is not None:
            on_row(row)

    try:
        if workers <= 1 or len(todo) <= 1:
            restore = configure_threads(1)
            try:
                for task in todo:
                    record(run_one(task, root, settings))
            finally:
                restore()
        else:
            _run_pool(todo, root, settings, workers, record)
    finally:
        writer.close()
        summary.seconds = time.perf_counter() - started
    return summary


def _run_pool(tasks: Sequence[Task], root: str, settings: Mapping[str, Any], workers: int,
              record: Callable[[Mapping[str, Any]], None]) -> None:
    # spawn: forking after torch started its thread pools can deadlock
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(1,))
    pending = {pool.submit(run_one, task, root, dict(settings)) for task in tasks}
    try:
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                record(future.result())  # run_one never raises; a dead worker does, and ends the run
    except BaseException:
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        raise
    pool.shutdown(wait=True)


def print_progress(row: Mapping[str, Any]) -> None:
    """One line per finished fit (the scripts' progress output)."""
    if row["status"] == "done":
        print(f"  {row['scenario']:<9} {row['dataset']:<26} seed {row['seed']}  AUC {row['auc']:.3f}  "
              f"fit {row['fit_seconds']:.1f} s  n_train {row['n_train']}", flush=True)
    else:
        print(f"  {row['scenario']:<9} {row['dataset']:<26} seed {row['seed']}  FAILED: {row['error']}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=PROFILES, default="full",
                        help="full (clean: gamma_l = .01), polluted (keep-all, 10%% of training anomalies labeled) "
                             "or quick (CI smoke run); default full")
    parser.add_argument("--out", default=None, metavar="CSV",
                        help="the rows (default: results/deepod_<profile>.csv); a rerun skips what it holds as done")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="folder holding the datasets (default: $DEEPSAD_DATA, else the user cache folder)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="worker processes, 1 thread each (default 1)")
    parser.add_argument("--only", nargs="+", metavar="DATASET", help="only these datasets of the profile")
    parser.add_argument("--config", default=CONFIG, help="the benchmark config (default: tabular)")
    parser.add_argument("--no-retry-failed", action="store_true", help="keep failed rows instead of rerunning them")
    parser.add_argument("--rerun-changed", action="store_true",
                        help="rerun done rows whose data or settings differ (default: refuse)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        raise SystemExit("--workers must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out or f"results/deepod_{args.profile}.csv")
    try:
        summary = run_peers(args.profile, out, data_root=args.data_root, only=args.only, workers=args.workers,
                            config=args.config, retry_failed=not args.no_retry_failed,
                            rerun_changed=args.rerun_changed, on_row=print_progress)
    except InvalidInputError as error:
        print(f"quality_peers: {error}", file=sys.stderr)
        return 2
    print(f"{METHOD} ({args.profile}): {summary.n_tasks} setups; {summary.n_skipped} already done, "
          f"{summary.n_done + summary.n_failed} run now ({summary.n_done} done, {summary.n_failed} failed) "
          f"in {summary.seconds:.1f} s -> {out}")
    for example in summary.failed_examples:
        print(f"  failed: {example}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
