"""The driver of an experiment run, and the group a worker runs.

:func:`run_group` is what a worker executes: tasks sharing a ``group_key`` (same training
data, same autoencoder settings) in order, with the data drawn once. :func:`run_experiment`
is the driver: it expands a config, skips what the results file already holds
(:func:`plan`), hands groups to an executor and writes each returned row -- the driver is
the only writer.

The pieces a group is made of live in modules of their own: the run's settings and a
worker's caches (:mod:`~deepsad.experiments.context`), the data
(:mod:`~deepsad.experiments.preparation`), the autoencoder cache
(:mod:`~deepsad.experiments.autoencoder_cache`), one task
(:mod:`~deepsad.experiments.task`), result rows (:mod:`~deepsad.experiments.rows`) and
stacked units (:mod:`~deepsad.experiments.stacking`). The names of them that were
first published here (:class:`RunContext`, :class:`PreparedData`, :func:`prepare_data`,
:func:`cap_training_set`, :func:`configure_threads`, :func:`autoencoder_settings`)
stay importable from this module.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepsad.errors import InvalidInputError
from deepsad.experiments.autoencoder_cache import autoencoder_settings
from deepsad.experiments.config import ExperimentConfig
from deepsad.experiments.context import RunContext, WorkerCaches
from deepsad.experiments.grid import Task, expand
from deepsad.experiments.preparation import PreparedData, cap_training_set, prepare_data
from deepsad.experiments.provenance import package_versions
from deepsad.experiments.rows import failed_row
from deepsad.experiments.stacking import execution_units, iter_stack_unit
from deepsad.experiments.store import ResultStore
from deepsad.experiments.task import run_task
from deepsad.experiments.threads import configure_threads

__all__ = [
    "PreparedData",
    "RunContext",
    "RunSummary",
    "autoencoder_settings",
    "cap_training_set",
    "configure_threads",
    "iter_group",
    "plan",
    "prepare_data",
    "run_experiment",
    "run_group",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- a group


def iter_group(tasks: Sequence[Task], context: RunContext, caches: WorkerCaches | None = None) -> Iterator[dict[str, Any]]:
    """Run a group's tasks in order, yielding one row per task as it finishes.

    The data are drawn once for the group (its tasks share ``group_key``); if that
    fails, every task of the group is returned as failed with that error. The fits run
    under :func:`deepsad.training.tuned_threads` (the runner opts in to the per-network
    thread rule), entered while a row is computed and left before it is yielded.

    Parameters
    ----------
    tasks : sequence of Task
        A group, or a stacked unit (:func:`deepsad.experiments.stacking.execution_units`).
    context : RunContext
    caches : WorkerCaches, optional
        The worker's caches, kept between its groups; without them the group gets
        caches of its own.

    Yields
    ------
    dict
        One result row per task.
    """
    from deepsad.training import tuned_threads

    if caches is None:
        caches = WorkerCaches.for_context(context)
    rows = _iter_group(tasks, context, caches)
    while True:
        with tuned_threads():
            row = next(rows, None)
        if row is None:
            return
        yield row


def _iter_group(tasks: Sequence[Task], context: RunContext, caches: WorkerCaches) -> Iterator[dict[str, Any]]:
    if not tasks:
        return
    if len({task.group_key for task in tasks}) > 1:  # a unit of stacked fits (see stacking.py)
        yield from iter_stack_unit(tasks, context, caches)
        return
    try:
        data = prepare_data(tasks[0], context.data_root, caches.datasets)
    except Exception as error:
        for task in tasks:
            yield failed_row(task, error)
        return
    for task in tasks:
        if task.data_spec() != tasks[0].data_spec():  # pragma: no cover - grouping bug
            raise AssertionError("tasks of a group must share their data")
        yield run_task(task, data, context, caches)


def run_group(tasks: Sequence[Task], context: RunContext, caches: WorkerCaches | None = None) -> list[dict[str, Any]]:
    """Run a group and return all its rows (what local and Ray workers execute).

    A worker process is the runner's own, so it takes the CPU training settings for good:
    ``context.threads`` and :func:`deepsad.training.keep_freed_memory`.

    Parameters
    ----------
    tasks : sequence of Task
    context : RunContext
    caches : WorkerCaches, optional
        As in :func:`iter_group`.

    Returns
    -------
    list of dict
        One result row per task.
    """
    from deepsad.training import keep_freed_memory

    configure_threads(context.threads)
    keep_freed_memory()
    return list(iter_group(tasks, context, caches))


# --------------------------------------------------------------------------- the driver


@dataclass
class RunSummary:
    """What :func:`run_experiment` did.

    Attributes
    ----------
    n_tasks : int
        Tasks of the config.
    n_skipped : int
        Already in the results file and finished with the same settings.
    n_done, n_failed : int
        Run now, with that outcome.
    n_pending : int
        Neither skipped nor run (only after an interruption).
    interrupted : bool
        The run was stopped with Ctrl-C (or SIGTERM); finished tasks are saved.
    results : pathlib.Path
    run_id : int or None
    seconds : float
    failed_examples : list of str
        ``task_key: error`` of up to five failed tasks.
    """

    n_tasks: int
    n_skipped: int
    n_done: int = 0
    n_failed: int = 0
    n_pending: int = 0
    interrupted: bool = False
    results: Path = Path()
    run_id: int | None = None
    seconds: float = 0.0
    failed_examples: list[str] = field(default_factory=list)


def plan(tasks: Sequence[Task], existing: Mapping[str, tuple[str, str]], *, rerun_changed: bool = False,
         retry_failed: bool = True) -> tuple[list[Task], int, list[Task]]:
    """Split tasks into (to run, number skipped, finished with other settings).

    Parameters
    ----------
    tasks : sequence of Task
    existing : mapping
        ``task_key -> (status, config_hash)`` of the rows the results file holds.
    rerun_changed : bool, default False
        Run finished tasks whose ``config_hash`` changed (otherwise they are returned as changed).
    retry_failed : bool, default True
        Run tasks stored as failed.

    Returns
    -------
    tuple
        ``(to run, number skipped, finished with other settings)``.
    """
    todo: list[Task] = []
    changed: list[Task] = []
    skipped = 0
    for task in tasks:
        previous = existing.get(task.task_key)
        if previous is None:
            todo.append(task)
            continue
        status, config_hash = previous
        if config_hash != task.config_hash:
            if status == "done" and not rerun_changed:
                changed.append(task)
            else:
                todo.append(task)
        elif status == "done" or not retry_failed:
            skipped += 1
        else:
            todo.append(task)
    return todo, skipped, changed


def run_experiment(
    config: ExperimentConfig,
    results: str | os.PathLike,
    executor: Any,
    *,
    data_root: str | os.PathLike | None = None,
    use_ae_cache: bool = True,
    ae_cache_dir: str | os.PathLike | None = None,
    ae_cache_disk: bool = True,
    rerun_changed: bool = False,
    retry_failed: bool = True,
    progress: bool = True,
    argv: Sequence[str] | None = None,
    stack: int = 1,
) -> RunSummary:
    """Run every task of ``config`` that ``results`` does not hold yet.

    Parameters
    ----------
    config : ExperimentConfig
    results : str or os.PathLike
        The SQLite results file (created if missing).
    executor : SerialExecutor, LocalExecutor or RayExecutor
        See :mod:`deepsad.experiments.executors`.
    data_root : str or os.PathLike, optional
        Default: ``$DEEPSAD_DATA``, else the user cache folder.
    use_ae_cache : bool, default True
        Share pretrained autoencoders between tasks (``--no-ae-cache`` turns it off).
    ae_cache_dir : str or os.PathLike, optional
        Default ``<results folder>/ae-cache``. An entry is one autoencoder's weights
        (kilobytes for the ODDS MLPs, about 4 MB for the CIFAR-10 LeNet); delete the
        folder at will.
    ae_cache_disk : bool, default True
        False keeps the cache in each worker's memory only.
    rerun_changed : bool, default False
        Rerun finished tasks whose settings changed (otherwise that is an error).
    retry_failed : bool, default True
        Rerun tasks stored as failed.
    progress : bool, default True
        A progress bar with ETA on stderr.
    argv : sequence of str, optional
        The command line, recorded with the run.
    stack : int, default 1
        Train up to this many Deep SAD / one-class Deep SVDD fits of a cell together
        (:mod:`deepsad.experiments.stacking`); 1 runs every fit on its own.

    Returns
    -------
    RunSummary
        Ctrl-C (KeyboardInterrupt) stops the run cleanly: finished tasks stay saved, the
        run is recorded as interrupted and the summary says so.

    Raises
    ------
    InvalidInputError
        Finished tasks whose settings differ from the config (without ``rerun_changed``).
    ResultsFileError
        A results file that is not a deepsad results database (it is not modified).
    """
    from deepsad.data.registry import resolve_data_root

    started = time.perf_counter()
    results = Path(results)
    # absolute: Ray workers do not share the driver's working directory
    root = str(Path(resolve_data_root(data_root)).expanduser().resolve())
    tasks = expand(config, data_root=root)
    with ResultStore(results) as store:
        todo, skipped, changed = plan(tasks, store.existing(), rerun_changed=rerun_changed, retry_failed=retry_failed)
        if changed:
            raise InvalidInputError(
                f"{len(changed)} finished task(s) in {results} were run with other settings "
                f"(e.g. {changed[0].task_key}); write to another --results file, or pass --rerun-changed to replace them"
            )
        summary = RunSummary(n_tasks=len(tasks), n_skipped=skipped, results=results)
        if not todo:
            summary.seconds = time.perf_counter() - started
            return summary
        cache_dir = None
        if use_ae_cache and ae_cache_disk:
            cache_dir = str((Path(ae_cache_dir) if ae_cache_dir is not None else results.parent / "ae-cache").resolve())
            logger.info("autoencoder cache: %s", cache_dir)
        context = RunContext(data_root=root, use_ae_cache=use_ae_cache, ae_cache_dir=cache_dir,
                             threads=getattr(executor, "threads_per_worker", None))
        run_id = store.begin_run({
            "experiment": config.experiment, "profile": config.profile, "config_path": config.source,
            "config_hash": config.config_hash, "config": config.resolved, "executor": executor.name,
            "workers": executor.workers, "threads_per_worker": getattr(executor, "threads_per_worker", None),
            "host": socket.gethostname(), "versions": package_versions(), "argv": list(argv or []),
            "n_tasks": len(tasks), "n_skipped": skipped,
        })
        summary.run_id = run_id
        groups = execution_units(todo, stack)
        logger.info("%s (%s): %d tasks, %d already done, %d to run in %d units (stack %d)",
                    config.experiment, config.profile, len(tasks), skipped, len(todo), len(groups), stack)
        bar = _progress_bar(len(todo), f"{config.experiment} ({config.profile})", progress)

        def on_rows(rows: list[dict[str, Any]]) -> None:
            store.write(rows, run_id=run_id)
            for row in rows:
                if row["status"] == "done":
                    summary.n_done += 1
                else:
                    summary.n_failed += 1
                    if len(summary.failed_examples) < 5:
                        summary.failed_examples.append(f"{row['task_key']}: {row['error']}")
            bar.update(len(rows))
            bar.set_postfix(failed=summary.n_failed, refresh=False)

        status = "error"
        try:
            executor.run(groups, context, on_rows)
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            summary.interrupted = True
            logger.warning("interrupted: %d of %d tasks of this run saved", summary.n_done + summary.n_failed, len(todo))
        finally:
            bar.close()
            summary.n_pending = len(todo) - summary.n_done - summary.n_failed
            summary.seconds = time.perf_counter() - started
            store.end_run(run_id, status, n_done=summary.n_done, n_failed=summary.n_failed)
    return summary


def _progress_bar(total: int, description: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="task", disable=not enabled, dynamic_ncols=True,
                smoothing=0.1, file=sys.stderr)
