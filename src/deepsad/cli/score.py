"""``deepsad score``: score a data file with a saved model, into a CSV of scores and flags."""

from __future__ import annotations

import argparse
import contextlib
import csv
from pathlib import Path
from typing import Any

from deepsad.cli.arguments import add_command, add_shared_argument
from deepsad.errors import InvalidInputError


def add_score_command(commands: Any) -> None:
    """Add the ``score`` command to the ``deepsad`` parser."""
    score = add_command(
        commands, "score", run_score, help="score a data file with a saved model",
        description="Write one row per row of DATA with its anomaly_score (higher = more anomalous) and "
        "is_anomaly (1 above the model's threshold). A label column in DATA is ignored. Columns are matched "
        "to the model's by name (any order) when both have names, by position for headerless data.",
    )
    add_shared_argument(score, "model")
    add_shared_argument(score, "data", help="data file (same columns as for training)")
    score.add_argument("--out", required=True, metavar="SCORES.csv", help="CSV file to write")
    add_shared_argument(score, "label_column", help="column to ignore (default: label)")
    add_shared_argument(score, "device")


def run_score(args: argparse.Namespace) -> int:
    """Run ``deepsad score``; returns the exit status."""
    import numpy as np

    from deepsad.persistence import load
    from deepsad.data.tabular import features_for_model, read_table

    out = Path(args.out)
    _check_scores_destination(out, data=Path(args.data), model_dir=Path(args.model))
    model = load(args.model, device=args.device)
    table = read_table(args.data, label_column=args.label_column)
    # by name when the model and the file both name their columns; by position otherwise
    X = features_for_model(table, getattr(model, "feature_names_in_", None), args.data)
    scores = model.anomaly_score(X)
    flags = (scores > model.threshold_).astype(int)
    _write_scores(out, scores, flags)
    print(f"scored {len(scores)} rows; {int(np.sum(flags))} above the threshold; wrote {out}")
    return 0


def _check_scores_destination(out: Path, *, data: Path, model_dir: Path) -> None:
    """Refuse, before scoring, a ``--out`` that would destroy an input or cannot be written."""
    from deepsad.validation import check_output_file

    if out.exists() and not out.is_dir():  # a directory is refused as such below
        # samefile, not string equality: ./x.csv, a symlink or a hard link are the same input
        if data.exists() and out.samefile(data):
            raise InvalidInputError(f"--out {out} is the input data file; write the scores to another file")
        model_files = [path for path in model_dir.iterdir() if path.is_file()] if model_dir.is_dir() else []
        if any(out.samefile(path) for path in model_files):
            raise InvalidInputError(f"--out {out} is a file of the model {model_dir}; write the scores elsewhere")
    check_output_file(out, what="a CSV file", option="--out")


def _write_scores(out: Path, scores: Any, flags: Any) -> None:
    """Write the scores CSV via a temporary file: ``out`` is never half-written, and a failure leaves nothing behind."""
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["anomaly_score", "is_anomaly"])
            writer.writerows(zip((f"{value:.9g}" for value in scores), flags.tolist()))
        tmp.replace(out)
    except OSError as error:
        with contextlib.suppress(OSError):  # the original error is the one to report
            tmp.unlink()
        raise InvalidInputError(f"cannot write {out}: {error.strerror or error}") from None
