"""``deepsad info`` and ``deepsad evaluate``: what a saved model is, and how well it does.

Users should not have to write code to see a model's settings or to compute its AUC on
labeled data; both commands read the model with the same checks as ``deepsad score``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from deepsad.cli.arguments import add_command, add_shared_argument
from deepsad.errors import DataFileError, InvalidInputError


def add_model_commands(commands: Any) -> None:
    """Register ``info`` and ``evaluate`` on the ``deepsad`` sub-command parser."""
    info = add_command(
        commands, "info", run_info, help="describe a saved model",
        description="Method, parameters, input shape and feature names, label counts, training loss, "
        "threshold, package versions and file checksums of a model directory (its files are verified).",
    )
    add_shared_argument(info, "model")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    evaluate = add_command(
        commands, "evaluate", run_evaluate,
        help="ROC AUC, average precision and precision / recall / F1 of a saved model on labeled data",
        description="Score DATA with the model and compare with its ground-truth column: 1 = anomaly, "
        "0 = normal by default (--anomaly-label names another value meaning anomaly; every other value "
        "is then normal). Precision, recall and F1 are those of the model's threshold (is_anomaly).",
    )
    add_shared_argument(evaluate, "model")
    add_shared_argument(evaluate, "data", help="data file with the model's feature columns and a ground-truth column")
    add_shared_argument(evaluate, "label_column", help="ground-truth column (default: label)")
    evaluate.add_argument("--anomaly-label", type=float, metavar="VALUE",
                          help="the value that marks an anomaly (default: 1, with 0 = normal and nothing else allowed)")
    add_shared_argument(evaluate, "device")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead of text")


# ---------------------------------------------------------------------------------- info


def model_info(path: str) -> dict[str, Any]:
    """Everything ``deepsad info`` shows about the model directory ``path``, as plain JSON values."""
    from deepsad.persistence import load
    from deepsad.persistence import WEIGHTS_FILE, read_config

    model = load(path, device="cpu")  # verifies both files
    content = read_config(path)
    history = [float(v) for v in getattr(model, "loss_history_", None) or []]
    pretrain_history = [float(v) for v in getattr(model, "pretrain_loss_history_", None) or []]
    names = getattr(model, "feature_names_in_", None)
    return {
        "path": str(path),
        "class": content["class"],
        "params": content["params"],
        "input_shape": list(getattr(model, "input_shape_", None) or [model.n_features_in_]),
        "n_features": int(model.n_features_in_),
        "feature_names": None if names is None else [str(n) for n in names],
        "n_networks": getattr(model, "n_networks_", None),
        "labels": {
            "labeled_normal": _int_or_none(getattr(model, "n_labeled_normal_", None)),
            "labeled_anomaly": _int_or_none(getattr(model, "n_labeled_anomaly_", None)),
        },
        "training": {
            "fit_seconds": content.get("fit_seconds"),
            "epochs_run": len(history),
            "loss_first": history[0] if history else None,
            "loss_last": history[-1] if history else None,
            "loss_min": min(history) if history else None,
            "pretrain_epochs_run": len(pretrain_history),
            "pretrain_loss_last": pretrain_history[-1] if pretrain_history else None,
        },
        "threshold": float(model.threshold_),
        "contamination": content["params"].get("contamination"),
        "format_version": content["format_version"],
        "versions": content.get("versions", {}),
        "files": {
            "model.json sha256": content["content_sha256"],
            f"{content.get('weights_file', WEIGHTS_FILE)} sha256": content["weights_sha256"],
        },
    }


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def run_info(args: argparse.Namespace) -> int:
    """Print the model's description (text, or JSON with ``--json``)."""
    info = model_info(args.model)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    training = info["training"]
    labels = info["labels"]
    lines = [
        f"model        {info['path']}",
        f"method       {info['class']}" + (f" ({info['n_networks']} networks)" if (info["n_networks"] or 1) > 1 else ""),
        f"input        shape {tuple(info['input_shape'])}, {info['n_features']} features",
        f"features     {_short_list(info['feature_names']) if info['feature_names'] else '(no names: matched by position)'}",
        f"labels       {labels['labeled_normal']} labeled normal, {labels['labeled_anomaly']} labeled anomalies",
        f"threshold    {info['threshold']:.6g} (contamination {info['contamination']})",
    ]
    if training["epochs_run"]:
        lines.append(
            f"training     {training['epochs_run']} epochs, loss {training['loss_first']:.4g} -> "
            f"{training['loss_last']:.4g} (min {training['loss_min']:.4g})"
            + (f", {training['fit_seconds']:.1f} s" if training["fit_seconds"] is not None else "")
        )
    if training["pretrain_epochs_run"]:
        lines.append(f"pretraining  {training['pretrain_epochs_run']} epochs, final loss {training['pretrain_loss_last']:.4g}")
    lines.append("parameters   " + ", ".join(f"{k}={_compact(v)}" for k, v in sorted(info["params"].items())))
    lines.append(f"format       {info['format_version']}; saved with " + ", ".join(f"{k} {v}" for k, v in sorted(info["versions"].items())))
    lines.extend(f"checksum     {name} {value}" for name, value in info["files"].items())
    print("\n".join(lines))
    return 0


def _short_list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)


# ------------------------------------------------------------------------------ evaluate


def ground_truth_anomalies(values: np.ndarray, anomaly_label: float | None, column: str) -> np.ndarray:
    """0/1 ground truth (1 = anomaly) from a label column's values.

    Without ``anomaly_label`` the column must hold 0 (normal) and 1 (anomaly) only -- a
    column of semi-labels (-1 / 0 / +1) or of another convention is refused rather than
    read wrongly. With it, that value marks anomalies and every other value is normal.

    Raises
    ------
    InvalidInputError
        For values other than 0 / 1 (without ``anomaly_label``), NaN, or a column that
        does not hold both classes.
    """
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():
        raise InvalidInputError(f"ground-truth column {column!r} has missing values (NaN)")
    if anomaly_label is None:
        unexpected = sorted(set(np.unique(values).tolist()) - {0.0, 1.0})
        if unexpected:
            raise InvalidInputError(
                f"ground-truth column {column!r} must hold 1 (anomaly) and 0 (normal), found "
                f"{', '.join(f'{v:g}' for v in unexpected[:5])}; use --anomaly-label to name the anomaly value"
            )
        truth = (values == 1.0).astype(np.int64)
    else:
        truth = (values == float(anomaly_label)).astype(np.int64)
    if truth.min() == truth.max():
        kind = "anomalies" if truth[0] == 1 else "normal samples"
        raise InvalidInputError(f"ground-truth column {column!r} holds only {kind}; evaluation needs both")
    return truth


def evaluation_metrics(truth: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """ROC AUC and average precision of ``scores``, and precision / recall / F1 of ``scores > threshold``."""
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    flagged = (scores > threshold).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, flagged, average="binary", pos_label=1, zero_division=0
    )
    return {
        "n_samples": int(truth.size),
        "n_anomalies": int(truth.sum()),
        "roc_auc": float(roc_auc_score(truth, scores)),
        "average_precision": float(average_precision_score(truth, scores)),
        "threshold": float(threshold),
        "n_flagged": int(flagged.sum()),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def run_evaluate(args: argparse.Namespace) -> int:
    """Score the data with the model and print the metrics (text, or JSON with ``--json``)."""
    from deepsad.persistence import load
    from deepsad.data.tabular import features_for_model, read_table

    model = load(args.model, device=args.device)
    # a semi-label column named "label" is not a feature (as for score), unless it is the ground truth
    semi_label_column = None if args.label_column == "label" else "label"
    table = read_table(args.data, label_column=semi_label_column, ground_truth_column=args.label_column)
    if table.ground_truth is None:
        raise DataFileError(f"{args.data} has no ground-truth column {args.label_column!r}")
    truth = ground_truth_anomalies(table.ground_truth, args.anomaly_label, args.label_column)
    X = features_for_model(table, getattr(model, "feature_names_in_", None), args.data)
    metrics = evaluation_metrics(truth, model.anomaly_score(X), model.threshold_)
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    print(
        f"{metrics['n_samples']} samples, {metrics['n_anomalies']} anomalies\n"
        f"ROC AUC            {metrics['roc_auc']:.4f}\n"
        f"average precision  {metrics['average_precision']:.4f}\n"
        f"at the threshold {metrics['threshold']:.6g} ({metrics['n_flagged']} flagged): "
        f"precision {metrics['precision']:.4f}, recall {metrics['recall']:.4f}, F1 {metrics['f1']:.4f}"
    )
    return 0
