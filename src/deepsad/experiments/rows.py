"""Result rows: a task's identity, settings and provenance, then its outcome.

A row is a plain dict in the columns of :data:`deepsad.experiments.store.TASK_COLUMNS`.
It starts as failed (:func:`new_row`), and only :func:`evaluate_into` marks it done; a
failure of any kind is recorded in it (:func:`mark_failed`) rather than raised, so that a
run goes on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from typing import Any

import numpy as np

from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.experiments.autoencoder_cache import AutoencoderLedger
from deepsad.experiments.config import canonical_json
from deepsad.experiments.grid import Task
from deepsad.experiments.preparation import PreparedData
from deepsad.experiments.provenance import package_versions, torch_threads
from deepsad.experiments.store import utc_now

logger = logging.getLogger(__name__)

#: Longest error text stored for a failed task, and the traceback's tail.
MAX_ERROR_CHARS = 2000
MAX_TRACEBACK_CHARS = 8000


def new_row(task: Task) -> dict[str, Any]:
    """The row of a task before it ran: identity, settings and provenance (status ``failed``).

    Parameters
    ----------
    task : Task

    Returns
    -------
    dict
    """
    return {
        "task_key": task.task_key,
        "experiment": task.experiment,
        "profile": task.profile,
        "dataset": task.dataset,
        "parameter": task.parameter,
        "value": task.value,
        "method": task.method,
        "detector": task.detector,
        "max_train_samples": task.max_train_samples,
        "setup_key": task.setup_key,
        "seed": task.seed,
        "normal_class": task.normal_class,
        "known_classes": ",".join(str(k) for k in task.known_classes),
        "gamma_l": task.gamma_l,
        "gamma_p": task.gamma_p,
        "k_l": task.k_l,
        "eta": task.params.get("eta"),
        "rep_dim": task.rep_dim,
        "status": "failed",
        "config_hash": task.config_hash,
        "selection_protocol": task.selection["protocol"],
        "params": json.loads(canonical_json(task.params)),
        "versions": package_versions(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "threads": torch_threads(),
        "started_at": utc_now(),
    }


def start_row(task: Task, data: PreparedData) -> dict[str, Any]:
    """A task's row before fitting: identity, settings, provenance and data sizes.

    Parameters
    ----------
    task : Task
    data : PreparedData
        The data the task fits on (after its training cap).

    Returns
    -------
    dict
    """
    row = new_row(task)
    row["sampler_summary"] = data.summary
    row["n_train"] = int(data.X_train.shape[0])
    row["n_test"] = int(data.X_test.shape[0])
    return row


def finish_row(row: dict[str, Any], ledger: AutoencoderLedger) -> dict[str, Any]:
    """Record the autoencoder's provenance and the finishing time.

    Parameters
    ----------
    row : dict
        Changed in place.
    ledger : AutoencoderLedger
        What the task's autoencoder cost and where it came from.

    Returns
    -------
    dict
        ``row``.
    """
    row["ae_cache"] = ledger.ae_status
    row["pretrain_seconds"] = ledger.pretrain_seconds if ledger.ae_status in ("miss", "off") else None
    row["finished_at"] = utc_now()
    return row


def evaluate_into(row: dict[str, Any], estimator: Any, data: PreparedData, evaluation: np.ndarray) -> None:
    """Score the test set and record the metrics; raises if they are undefined.

    Parameters
    ----------
    row : dict
        Gains ``score_seconds``, ``auc``, ``average_precision``, ``n_eval`` and status ``done``.
    estimator : object
        A fitted detector (``anomaly_score``).
    data : PreparedData
    evaluation : numpy.ndarray
        Positions of the test samples the metrics are computed on.

    Raises
    ------
    DeepSADError
        Scores that are NaN or infinite.
    InvalidInputError
        A test set of one class (AUC undefined).
    """
    t0 = time.perf_counter()
    scores = np.asarray(estimator.anomaly_score(data.X_test), dtype=np.float64)
    row["score_seconds"] = time.perf_counter() - t0
    if not np.all(np.isfinite(scores)):
        raise DeepSADError(f"{int(np.sum(~np.isfinite(scores)))} test scores are NaN or infinite")
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = data.y_test[evaluation]
    if truth.min() == truth.max():
        raise InvalidInputError("the test set holds only one class, so AUC is undefined")
    row["auc"] = float(roc_auc_score(truth, scores[evaluation]))
    row["average_precision"] = float(average_precision_score(truth, scores[evaluation]))
    row["n_eval"] = int(evaluation.size)
    row["status"] = "done"


def mark_failed(row: dict[str, Any], error: BaseException) -> None:
    """Record ``error`` in ``row``: status ``failed``, the error text and its traceback, no metrics.

    Parameters
    ----------
    row : dict
        Changed in place.
    error : BaseException
    """
    message = str(error).strip() or type(error).__name__
    row["status"] = "failed"
    row["error"] = f"{type(error).__name__}: {message}"[:MAX_ERROR_CHARS]
    row["traceback"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))[-MAX_TRACEBACK_CHARS:]
    row["auc"] = row["average_precision"] = None
    # INFO, not WARNING: the driver reports failed tasks, and the store keeps the details
    logger.info("task %s failed: %s", row["task_key"], row["error"].splitlines()[0])


def failed_row(task: Task, error: BaseException) -> dict[str, Any]:
    """The row of a task that failed before it could be fitted (e.g. its data could not be drawn).

    Parameters
    ----------
    task : Task
    error : BaseException

    Returns
    -------
    dict
    """
    row = new_row(task)
    mark_failed(row, error)
    row["finished_at"] = utc_now()
    return row
