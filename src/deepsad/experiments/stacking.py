"""Stacked execution: grid cells that differ only in data or seed, trained as one model.

``deepsad experiment run --stack K`` bundles Deep SAD and one-class Deep SVDD tasks of
one cell (same experiment, dataset, cell value, method settings and autoencoder
settings; different seeds or known classes, hence different training data) into
*units* of up to K setups. A worker runs a unit by drawing each setup's data (and a
method's ``max_train_samples`` subset of it, as a plain run draws it), then, per method
and per training-set shape:

1. the autoencoders: taken from the cache where present; the missing ones pretrained
   together (:func:`deepsad.detectors.stacked.pretrain_stacked` of Deep SVDDs with the
   pretraining settings, exactly as the sequential path pretrains one) and put into the
   cache, so the setup's other methods reuse them;
2. phi: all K fitted at once with :func:`deepsad.fit_stacked` on those autoencoders;
3. each task scored and recorded as a normal row. ``fit_seconds`` and
   ``pretrain_seconds`` are the stacked times divided by the number of models (the
   cost per experiment), and the row's ``selection`` says ``{"protocol": "fixed",
   "stacked": K}``.

The rows equal the sequential ones up to float rounding (tested). If a stacked fit
fails, its tasks are rerun one by one, so a failure is attributed to its own task.
Everything else (other methods, selection protocols, soft-boundary Deep SVDD, bfloat16) runs in
normal groups.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from deepsad.experiments.config import canonical_json, stable_hash
from deepsad.experiments.grid import Task, group_tasks
from deepsad.experiments.autoencoder_cache import (
    AutoencoderLedger,
    autoencoder_key,
    autoencoder_settings,
    cache_put,
    pretrainer_params,
)
from deepsad.experiments.context import RunContext, WorkerCaches
from deepsad.experiments.preparation import PreparedData, cap_training_set, prepare_data
from deepsad.experiments.rows import evaluate_into, failed_row, finish_row, mark_failed, start_row
from deepsad.experiments.task import detector_params, run_task

logger = logging.getLogger(__name__)

#: Methods whose fit can be stacked (Deep SVDD only with the one-class objective).
STACKABLE_METHODS = ("deepsad", "deepsvdd")


def stack_key(task: Task) -> str | None:
    """What tasks must share to be stacked together; ``None`` if the task cannot be stacked."""
    if task.detector not in STACKABLE_METHODS or task.selection.get("protocol") != "fixed" or not task.available:
        return None
    if task.detector == "deepsvdd" and task.params.get("objective", "one-class") != "one-class":
        return None
    if task.params.get("precision", "float32") != "float32":  # fit_stacked trains in float32 only
        return None
    return stable_hash({
        "experiment": task.experiment, "profile": task.profile, "dataset": task.dataset,
        "parameter": task.parameter, "value": task.value, "autoencoder": task.autoencoder,
    })


def execution_units(tasks: Sequence[Task], stack: int) -> list[list[Task]]:
    """Tasks in the lists workers run: stacked units of up to ``stack`` setups first, then groups.

    A stacked unit holds every stackable task (all methods) of up to ``stack`` setups of
    one cell with the same normal class (image setups of different normal classes have
    training sets of different sizes, which cannot stack); the remaining tasks form the
    usual groups (same data and autoencoder).
    With ``stack <= 1`` this is :func:`deepsad.experiments.grid.group_tasks`.
    """
    if stack <= 1:
        return group_tasks(tasks)
    # cell -> training-set size class -> setup -> tasks. Within a cell an image setup's
    # training set size depends on its normal class (MNIST has 5421-6742 images per
    # class); only same-sized sets stack, so setups are bundled per normal class (e.g.
    # the 9 known classes of one normal class: 4 pairs and a single, not pairs across
    # two normal classes that would each run alone)
    cells: dict[str, dict[int | None, dict[str, list[Task]]]] = {}
    rest: list[Task] = []
    for task in tasks:
        key = stack_key(task)
        if key is None:
            rest.append(task)
        else:
            by_size = cells.setdefault(key, {}).setdefault(task.normal_class, {})
            by_size.setdefault(task.group_key, []).append(task)
    units: list[list[Task]] = []
    for size_classes in cells.values():
        for setups in size_classes.values():
            ordered = list(setups.values())
            for start in range(0, len(ordered), stack):
                units.append([task for setup in ordered[start : start + stack] for task in setup])
    # stacked units go first: they pretrain and cache the autoencoders the groups reuse
    return units + group_tasks(rest)


def iter_stack_unit(tasks: Sequence[Task], context: RunContext,
                    caches: WorkerCaches | None = None) -> Iterator[dict[str, Any]]:
    """Run a stacked unit, yielding one row per task (see the module docstring).

    ``tasks`` is a unit of :func:`execution_units`; ``context``, ``caches`` and the rows
    yielded are as for :func:`deepsad.experiments.runner.iter_group`, which runs units
    through this function.
    """
    if caches is None:
        caches = WorkerCaches.for_context(context)
    data: dict[str, PreparedData] = {}
    failures: dict[str, Exception] = {}
    runnable: list[Task] = []
    for task in tasks:
        if task.group_key not in data and task.group_key not in failures:
            try:
                data[task.group_key] = prepare_data(task, context.data_root, caches.datasets)
            except Exception as error:
                failures[task.group_key] = error
        if task.group_key in failures:
            yield failed_row(task, failures[task.group_key])
        else:
            runnable.append(task)
    # a method's training cap draws its subset from the seed alone (as run_task does), so
    # capped setups of one cell have equal shapes and stack like whole ones
    training: dict[tuple[str, int | None], PreparedData] = {}
    for task in runnable:
        key = (task.group_key, task.max_train_samples)
        if key not in training:
            prepared = data[task.group_key]
            if task.max_train_samples is not None:
                prepared = cap_training_set(prepared, task.max_train_samples, task.seed)
            training[key] = prepared
    bundles: dict[tuple[str, str, tuple[int, ...]], list[Task]] = {}
    for task in runnable:
        shape = tuple(training[(task.group_key, task.max_train_samples)].X_train.shape)
        bundles.setdefault((task.detector, canonical_json(task.params), shape), []).append(task)
    # the unit's autoencoders by cache key: Deep SVDD's stack reuses Deep SAD's even when
    # the process's memory cache is too small to hold a whole stack
    pretrained: dict[str, Any] = {}
    for bundle in bundles.values():
        if len(bundle) == 1:  # run_task draws the cap itself, from the setup's data
            yield run_task(bundle[0], data[bundle[0].group_key], context, caches)
            continue
        try:
            rows = _run_stacked(bundle, [training[(task.group_key, task.max_train_samples)] for task in bundle],
                                caches, pretrained)
        except Exception as error:  # rerun one by one so the failure lands on its own task
            logger.info("stacked fit of %d %s tasks failed (%s); running them one by one",
                        len(bundle), bundle[0].method, str(error).splitlines()[0] if str(error) else type(error).__name__)
            rows = [run_task(task, data[task.group_key], context, caches) for task in bundle]
        yield from rows


def _run_stacked(tasks: Sequence[Task], data: Sequence[PreparedData], caches: WorkerCaches,
                 pretrained: dict[str, Any]) -> list[dict[str, Any]]:
    from deepsad.detectors import fit_stacked
    from deepsad.detectors.stacked import pretrain_stacked
    from deepsad.methods import make_detector

    n_models = len(tasks)
    rows = [start_row(task, prepared) for task, prepared in zip(tasks, data)]
    cache = caches.autoencoders
    states = [AutoencoderLedger(cache=cache) for _ in tasks]
    estimators = [make_detector(task.detector, detector_params(task.detector, task.params, task.seed)) for task in tasks]
    # one draw's labels stand for all: a cell's draws hold the same numbers of labeled samples
    settings = autoencoder_settings(estimators[0], data[0].X_train.shape[1:], data[0].y_train)
    autoencoders = None
    if settings is not None:
        autoencoders = [None] * n_models
        keys = [autoencoder_key(prepared.X_train, settings, task.seed) for task, prepared in zip(tasks, data)]
        for i, key in enumerate(keys):
            if cache is None:  # --no-ae-cache: every task pretrains its own, as in a plain run
                continue
            if key in pretrained:
                autoencoders[i] = pretrained[key]
                states[i].note("hit-memory")
            else:
                autoencoders[i], where = cache.get(key)
                if autoencoders[i] is not None:
                    states[i].note(f"hit-{where}")
        missing = [i for i in range(n_models) if autoencoders[i] is None]
        if missing:
            # Deep SVDDs with these pretraining settings pretrain exactly the autoencoders
            # the tasks' own fits would (the runner's sequential path does the same, one at a time)
            pretrainers = [make_detector("deepsvdd", pretrainer_params(settings, tasks[i].seed)) for i in missing]
            started = time.perf_counter()
            trained = pretrain_stacked(pretrainers, [data[i].X_train for i in missing])
            per_model = (time.perf_counter() - started) / len(missing)
            for i, pretrainer, autoencoder in zip(missing, pretrainers, trained):
                autoencoders[i] = pretrained[keys[i]] = autoencoder
                states[i].pretrain_seconds = per_model
                states[i].note("miss" if cache is not None else "off")
                if cache is not None:
                    cache_put(cache, keys[i], pretrainer)
    started = time.perf_counter()
    fit_stacked(estimators, [prepared.X_train for prepared in data], [prepared.y_train for prepared in data],
                autoencoders=autoencoders)
    per_model = (time.perf_counter() - started) / n_models
    for row, estimator, prepared, state in zip(rows, estimators, data, states):
        row["fit_seconds"] = per_model
        row["selection"] = {"protocol": "fixed", "stacked": n_models}
        try:
            evaluate_into(row, estimator, prepared, np.arange(prepared.y_test.size))
        except Exception as error:  # e.g. a one-class test set: this task's result only
            mark_failed(row, error)
        finish_row(row, state)
    return rows

