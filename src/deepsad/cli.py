"""The ``deepsad`` command line.

This is the only module that configures logging or prints. Every user mistake ends
in one line on stderr and a non-zero exit status; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepsad.errors import DeepSADError, InvalidInputError

#: Exit status for a user error (bad input, missing file, ...).
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command registered."""
    from deepsad._version import __version__
    from deepsad.data_cli import add_data_commands
    from deepsad.experiments_cli import add_experiment_commands
    from deepsad.export_cli import add_export_command
    from deepsad.fit_cli import add_fit_command
    from deepsad.model_cli import add_model_commands

    parser = argparse.ArgumentParser(
        prog="deepsad",
        description="Deep semi-supervised anomaly detection (Deep SAD, Deep SVDD and baselines).",
    )
    parser.add_argument("--version", action="version", version=f"deepsad {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    add_fit_command(commands)
    _add_score_command(commands)
    add_model_commands(commands)
    add_export_command(commands)
    _add_demo_command(commands)
    add_data_commands(commands)
    add_experiment_commands(commands)
    return parser


def _add_score_command(commands: Any) -> None:
    score = commands.add_parser(
        "score",
        help="score a data file with a saved model",
        description="Write one row per row of DATA with its anomaly_score (higher = more anomalous) and "
        "is_anomaly (1 above the model's threshold). A label column in DATA is ignored. Columns are matched "
        "to the model's by name (any order) when both have names, by position for headerless data.",
    )
    score.add_argument("model", metavar="MODEL_DIR", help="directory written by 'deepsad fit'")
    score.add_argument("data", metavar="DATA", help="data file (same columns as for training)")
    score.add_argument("--out", required=True, metavar="SCORES.csv", help="CSV file to write")
    score.add_argument("--label-column", default="label", metavar="NAME", help="column to ignore (default: label)")
    score.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    score.set_defaults(func=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    import numpy as np

    from deepsad import load
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
    from deepsad.fit_cli import check_writable_directory

    if out.is_dir():
        raise InvalidInputError(f"--out {out} is a directory; give the path of a CSV file to write")
    if out.exists():
        # samefile, not string equality: ./x.csv, a symlink or a hard link are the same input
        if data.exists() and out.samefile(data):
            raise InvalidInputError(f"--out {out} is the input data file; write the scores to another file")
        model_files = [path for path in model_dir.iterdir() if path.is_file()] if model_dir.is_dir() else []
        if any(out.samefile(path) for path in model_files):
            raise InvalidInputError(f"--out {out} is a file of the model {model_dir}; write the scores elsewhere")
    folder = out.parent
    if not folder.exists():
        raise InvalidInputError(f"output folder does not exist: {folder}")
    if not folder.is_dir():
        raise InvalidInputError(f"cannot write {out}: {folder} is a file, not a folder")
    check_writable_directory(folder, f"the scores to {out}")


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


def _add_demo_command(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="Deep SAD vs Deep SVDD on scikit-learn's digits (no download)",
        description="One-vs-rest on the 8x8 digits that ship with scikit-learn: each digit in turn is "
        "normal, a few labeled anomalies come from one other digit, and the test set holds all digits. "
        "Prints the test AUC of Deep SVDD and Deep SAD per normal digit.",
    )
    demo.add_argument("--epochs", type=int, default=150, help="pretraining and training epochs each (default 150)")
    demo.add_argument("--gamma-l", type=float, default=0.05, help="ratio of labeled anomalies (default 0.05)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--classes", type=int, nargs="+", default=list(range(10)), metavar="DIGIT")
    demo.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from deepsad.demo import run_digits_demo

    started = time.perf_counter()
    rows = run_digits_demo(
        normal_classes=args.classes, epochs=args.epochs, gamma_l=args.gamma_l, seed=args.seed
    )
    print(f"{'normal digit':>12}  {'known anomaly':>13}  {'Deep SVDD AUC':>13}  {'Deep SAD AUC':>12}")
    for row in rows:
        print(f"{row.normal_class:>12}  {row.known_class:>13}  {row.deep_svdd_auc:>13.3f}  {row.deep_sad_auc:>12.3f}")
    mean_svdd = sum(r.deep_svdd_auc for r in rows) / len(rows)
    mean_sad = sum(r.deep_sad_auc for r in rows) / len(rows)
    print(f"{'mean':>12}  {'':>13}  {mean_svdd:>13.3f}  {mean_sad:>12.3f}")
    print(f"({len(rows)} setups, {time.perf_counter() - started:.0f} s)")
    return 0


def _trains(args: argparse.Namespace) -> bool:
    """Whether the command trains models here (fit, demo, experiments run)."""
    from deepsad.experiments_cli import cmd_run
    from deepsad.fit_cli import run_fit

    return args.func in (run_fit, _run_demo, cmd_run)


def _with_cpu_training_settings(command: Any, args: argparse.Namespace) -> Any:
    """Run a training command with the CPU speed settings that a library ``fit`` leaves
    to its caller: this process is the command's own (docs/performance.md)."""
    from deepsad.training import keep_freed_memory, tuned_threads

    keep_freed_memory()
    with tuned_threads():
        return command(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if _trains(args):
            return int(_with_cpu_training_settings(args.func, args) or 0)
        return int(args.func(args) or 0)
    except DeepSADError as error:
        # one line: multi-line messages (e.g. scikit-learn's NaN advice) keep their first line
        message = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print(f"deepsad: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("deepsad: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
