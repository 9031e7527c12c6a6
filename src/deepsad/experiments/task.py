"""One task on prepared data: fit the method (with its selection step), score, return the row.

Deep SAD and Deep SVDD fit on an autoencoder from the worker's cache, or pretrained now
and put there (:mod:`deepsad.experiments.autoencoder_cache`); the hybrids encode with the
same autoencoder. A failing method is a result, not an exception: :func:`run_task`
returns its row with status ``failed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError
from deepsad.experiments.autoencoder_cache import AutoencoderLedger, autoencoder_settings, pretrained
from deepsad.experiments.context import RunContext, WorkerCaches
from deepsad.experiments.grid import Task
from deepsad.experiments.preparation import PreparedData, cap_training_set, input_view
from deepsad.experiments.rows import evaluate_into, finish_row, mark_failed, start_row

#: Methods that pretrain an autoencoder themselves (``fit(..., autoencoder=...)``).
PRETRAINING_METHODS = ("deepsad", "deepsvdd")


def detector_params(name: str, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The detector's parameters with what the runner owns: the seed, no preprocessing, quiet.

    Parameters
    ----------
    name : str
        The detector (see :func:`deepsad.methods.method_names`).
    params : mapping
        The task's parameters.
    seed : int
        The task's seed (``random_state`` where the detector takes one).

    Returns
    -------
    dict
    """
    from deepsad.methods import parameter_names

    names = parameter_names(name)
    merged = dict(params)
    if "random_state" in names:
        merged["random_state"] = seed
    if "standardize" in names and "standardize" not in merged:
        # the runner owns preprocessing (a config's [preprocessing]); a detector that
        # standardizes by default would do it a second time
        merged["standardize"] = False
    if "verbose" in names:
        merged["verbose"] = False
    return merged


def fit_pretraining(task: Task, X: np.ndarray, y: np.ndarray, factory: Callable[..., Any], ledger: AutoencoderLedger,
                    **candidate: Any) -> Any:
    """Fit Deep SAD / Deep SVDD on ``X, y`` with the shared (or freshly pretrained) autoencoder.

    Parameters
    ----------
    task : Task
    X, y : numpy.ndarray
        Training samples and semi-labels.
    factory : callable
        ``factory(**candidate)`` makes the unfitted estimator.
    ledger : AutoencoderLedger
        The task's autoencoder bookkeeping.
    **candidate
        Parameters of a selection candidate.

    Returns
    -------
    object
        The fitted estimator.
    """
    estimator = factory(**candidate)
    settings = autoencoder_settings(estimator, X.shape[1:], y)
    if settings is None:  # no pretraining, or a custom network
        return estimator.fit(X, y)
    return estimator.fit(X, y, autoencoder=pretrained(X, settings, task.seed, ledger))


def hybrid_source(task: Task, data: PreparedData, ledger: AutoencoderLedger) -> Any:
    """A fitted Deep SVDD (``epochs = 0``) lending the hybrid the setup's pretrained autoencoder.

    Raises
    ------
    InvalidInputError
        A config whose ``[autoencoder]`` does not pretrain.
    """
    from deepsad.methods import make_detector
    from deepsad.models import auto_spec

    params = {
        "standardize": False,  # the runner standardized the data (its [preprocessing])
        **task.autoencoder, "epochs": 0, "pretrain": True, "n_networks": 1, "random_state": task.seed, "verbose": False,
    }
    if params.get("network", "auto") == "auto":
        # the hybrids encode with Deep SAD's autoencoder; Deep SVDD's own "auto" MLP differs
        params["network"] = auto_spec(tuple(data.X_train.shape[1:]))
    source = make_detector("deepsvdd", params)
    settings = autoencoder_settings(source, data.X_train.shape[1:])
    if settings is None:
        raise InvalidInputError("hybrid methods need a pretrained autoencoder: [autoencoder] epochs must be > 0")
    return source.fit(data.X_train, autoencoder=pretrained(data.X_train, settings, task.seed, ledger))


def run_task(task: Task, data: PreparedData, context: RunContext, caches: WorkerCaches | None = None) -> dict[str, Any]:
    """Run one task on prepared data; never raises for a failing method.

    Parameters
    ----------
    task : Task
    data : PreparedData
        The setup's data (before the method's view and training cap).
    context : RunContext
    caches : WorkerCaches, optional
        The worker's caches; without them the task gets caches of its own.

    Returns
    -------
    dict
        A result row (see :data:`deepsad.experiments.store.TASK_COLUMNS`): status
        ``done`` with AUC and average precision, or ``failed`` with the error.
    """
    if caches is None:
        caches = WorkerCaches.for_context(context)
    data = input_view(task.detector, data)
    if task.max_train_samples is not None:
        data = cap_training_set(data, task.max_train_samples, task.seed)
    row = start_row(task, data)
    ledger = AutoencoderLedger(cache=caches.autoencoders)
    started = time.perf_counter()
    try:
        estimator, selection, evaluation = _fit(task, data, ledger)
        row["fit_seconds"] = time.perf_counter() - started - ledger.pretrain_seconds
        row["selection"] = selection
        evaluate_into(row, estimator, data, evaluation)
    except Exception as error:  # a failing task is a result; the run goes on
        mark_failed(row, error)
        if row.get("fit_seconds") is None:
            row["fit_seconds"] = time.perf_counter() - started - ledger.pretrain_seconds
    return finish_row(row, ledger)


def _fit(task: Task, data: PreparedData, ledger: AutoencoderLedger) -> tuple[Any, dict[str, Any], np.ndarray]:
    """Fit the task's method (with its selection step); return the estimator, the
    selection record and the test positions to evaluate on."""
    from deepsad.methods import make_detector

    name = task.detector  # a method label ([methods.deepsad-paper]) names its detector
    base = detector_params(name, task.params, task.seed)
    source = hybrid_source(task, data, ledger) if name.startswith("hybrid-") else None

    def factory(**candidate: Any) -> Any:
        params = dict(base)
        if name.startswith("hybrid-"):
            params["shallow_params"] = {**dict(params.get("shallow_params") or {}), **candidate}
            params["autoencoder"] = source
        else:
            params.update(candidate)
        return make_detector(name, params)

    selection = task.selection
    protocol = selection["protocol"]
    everything = np.arange(data.y_test.size)
    if protocol == "fixed":
        if name in PRETRAINING_METHODS:
            estimator = fit_pretraining(task, data.X_train, data.y_train, factory, ledger)
        else:
            estimator = factory().fit(data.X_train, data.y_train)
        return estimator, {"protocol": "fixed"}, everything

    from deepsad.baselines.selection import paper_test_subset, select_hyperparameters, validation_split

    if name in PRETRAINING_METHODS:
        # candidates fitted on the same data share one autoencoder
        def make(**candidate: Any) -> Any:
            return _CachedFit(lambda X, y: fit_pretraining(task, X, y, factory, ledger, **candidate))
    else:
        make = factory
    grid = {k: list(v) for k, v in selection["grid"].items()}
    if protocol == "paper-test-subset":
        split = paper_test_subset(data.y_test, fraction=selection["fraction"],
                                  exclude_from_evaluation=selection["exclude_from_evaluation"], random_state=task.seed)
        result = select_hyperparameters(
            make, grid, data.X_train, data.y_train, data.X_test[split.select_indices], data.y_test[split.select_indices],
            protocol=protocol, fallback_params=selection["fallback"], on_error="record", keep_best=True,
        )
        estimator = result.best_estimator
        if isinstance(estimator, _CachedFit):
            estimator = estimator.fitted
        evaluation = split.evaluation_indices
    else:
        split = validation_split(data.y_train, validation_fraction=selection["validation_fraction"], random_state=task.seed)
        result = select_hyperparameters(
            make, grid, data.X_train[split.fit_indices], data.y_train[split.fit_indices],
            data.X_train[split.validation_indices], split.validation_truth,
            protocol=protocol, fallback_params=selection["fallback"], on_error="record", keep_best=False,
        )
        # refit the choice on the whole training set
        if name in PRETRAINING_METHODS:
            estimator = fit_pretraining(task, data.X_train, data.y_train, factory, ledger, **result.best_params)
        else:
            estimator = factory(**result.best_params).fit(data.X_train, data.y_train)
        evaluation = everything
    return estimator, result.to_dict(), np.asarray(evaluation)


class _CachedFit:
    """Adapter for selecting a pretraining method's parameters: ``fit`` goes through the cache."""

    def __init__(self, fit: Callable[[Any, Any], Any]) -> None:
        self._fit = fit
        self.fitted: Any = None

    def fit(self, X: Any, y: Any = None) -> _CachedFit:
        self.fitted = self._fit(X, y)
        return self

    def anomaly_score(self, X: Any) -> np.ndarray:
        return self.fitted.anomaly_score(X)
