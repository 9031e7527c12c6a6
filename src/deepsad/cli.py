"""The ``deepsad`` command line.

This is the only module that configures logging or prints. Every user mistake ends
in one line on stderr and a non-zero exit status; a traceback means a bug.
"""

from __future__ import annotations

import argparse
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
    from deepsad import __version__
    from deepsad.data_cli import add_data_commands

    parser = argparse.ArgumentParser(
        prog="deepsad",
        description="Deep semi-supervised anomaly detection (Deep SAD, Deep SVDD and baselines).",
    )
    parser.add_argument("--version", action="version", version=f"deepsad {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _add_fit_command(commands)
    _add_score_command(commands)
    _add_demo_command(commands)
    add_data_commands(commands)
    return parser


def _milestones(text: str) -> tuple[int, ...]:
    """Parse ``50`` or ``50,100`` (or an empty string for none) into epochs."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs like 50 or 50,100, got {text!r}") from None


def _contamination(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a fraction in (0, 0.5], got {text!r}") from None


def _add_fit_command(commands: Any) -> None:
    fit = commands.add_parser(
        "fit",
        help="train a detector on a data file and save it",
        description="Train Deep SAD or Deep SVDD on DATA (CSV, NPY/NPZ, Parquet or ODDS .mat) and save it "
        "to MODEL_DIR. The label column holds +1 (labeled normal), -1 (labeled anomaly) or 0 (unlabeled); "
        "without it every sample is unlabeled. Defaults follow the paper (150 + 150 epochs, batch 200).",
    )
    fit.add_argument("data", metavar="DATA", help="training data file")
    fit.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to save the model to")
    fit.add_argument("--label-column", default="label", metavar="NAME", help="semi-label column (default: label)")
    fit.add_argument("--method", choices=("deepsad", "deepsvdd"), default="deepsad")
    net = fit.add_argument_group("network")
    net.add_argument(
        "--network",
        choices=("auto", "mlp", "mnist", "fmnist", "cifar10"),
        default="auto",
        help="auto: chosen from the input shape; mlp: --hidden-sizes/--rep-dim; others: the paper's LeNets",
    )
    net.add_argument("--hidden-sizes", type=int, nargs="+", metavar="N", help="MLP hidden layer sizes (default 32 16)")
    net.add_argument("--rep-dim", type=int, metavar="N", help="representation size")
    opt = fit.add_argument_group("training")
    opt.add_argument("--eta", type=float, default=1.0, help="weight of labeled terms (Deep SAD)")
    opt.add_argument("--eps", type=float, default=1e-6, help="Deep SAD epsilon")
    opt.add_argument("--objective", choices=("one-class", "soft-boundary"), default="one-class", help="Deep SVDD objective")
    opt.add_argument("--nu", type=float, default=0.1, help="soft-boundary Deep SVDD nu")
    opt.add_argument("--epochs", type=int, default=150)
    opt.add_argument("--lr", type=float, default=1e-4)
    opt.add_argument("--lr-milestones", type=_milestones, default=(50,), metavar="E[,E]")
    opt.add_argument("--weight-decay", type=float, default=1e-6)
    opt.add_argument("--batch-size", type=int, default=200)
    opt.add_argument("--no-pretrain", action="store_true", help="skip autoencoder pretraining")
    opt.add_argument("--pretrain-epochs", type=int, default=150)
    opt.add_argument("--pretrain-lr", type=float, default=1e-4)
    opt.add_argument("--pretrain-lr-milestones", type=_milestones, default=(50,), metavar="E[,E]")
    opt.add_argument("--pretrain-weight-decay", type=float, default=5e-4)
    opt.add_argument(
        "--no-standardize",
        action="store_true",
        help="do not standardize tabular features with the training statistics (default: standardize)",
    )
    opt.add_argument("--contamination", type=_contamination, default="auto", help="fraction for the threshold, or auto")
    opt.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    opt.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    opt.add_argument("--no-progress", action="store_true", help="hide progress bars")
    fit.set_defaults(func=_run_fit)


def _network_param(args: argparse.Namespace) -> Any:
    from deepsad.models import LeNetSpec, MLPSpec

    if args.network == "auto":
        if args.hidden_sizes or args.rep_dim:
            raise InvalidInputError("--hidden-sizes/--rep-dim need --network mlp (or a LeNet name for --rep-dim)")
        return "auto"
    if args.network == "mlp":
        kwargs: dict[str, Any] = {}
        if args.hidden_sizes:
            kwargs["hidden_sizes"] = tuple(args.hidden_sizes)
        if args.rep_dim:
            kwargs["rep_dim"] = args.rep_dim
        return MLPSpec(**kwargs)
    if args.hidden_sizes:
        raise InvalidInputError("--hidden-sizes applies to --network mlp only")
    return LeNetSpec(variant=args.network, rep_dim=args.rep_dim)


def _read_samples(path: str, label_column: str | None) -> tuple[Any, Any]:
    from deepsad.data.tabular import read_table

    table = read_table(path, label_column=label_column)
    return table.X, table.labels


def _run_fit(args: argparse.Namespace) -> int:
    from deepsad import DeepSAD, DeepSVDD

    X, labels = _read_samples(args.data, args.label_column)
    common = dict(
        network=_network_param(args),
        epochs=args.epochs,
        lr=args.lr,
        lr_milestones=args.lr_milestones,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        pretrain=not args.no_pretrain,
        pretrain_epochs=args.pretrain_epochs,
        pretrain_lr=args.pretrain_lr,
        pretrain_lr_milestones=args.pretrain_lr_milestones,
        pretrain_weight_decay=args.pretrain_weight_decay,
        standardize=not args.no_standardize and X.ndim == 2,
        contamination=args.contamination,
        device=args.device,
        random_state=args.seed,
        verbose=not args.no_progress,
    )
    if args.method == "deepsad":
        estimator: Any = DeepSAD(eta=args.eta, eps=args.eps, **common)
    else:
        if labels is not None and (labels != 0).any():
            logging.getLogger("deepsad").warning("Deep SVDD is unsupervised: the labels in %s are ignored", args.data)
        estimator = DeepSVDD(objective=args.objective, nu=args.nu, **common)
    started = time.perf_counter()
    estimator.fit(X, labels)
    elapsed = time.perf_counter() - started
    estimator.save(args.out)
    scores = estimator.anomaly_score(X)
    n_flagged = int((scores > estimator.threshold_).sum())
    print(
        f"trained {type(estimator).__name__} on {X.shape[0]} samples in {elapsed:.1f} s; "
        f"{n_flagged} training samples above the threshold {estimator.threshold_:.4g}; saved to {args.out}"
    )
    return 0


def _add_score_command(commands: Any) -> None:
    score = commands.add_parser(
        "score",
        help="score a data file with a saved model",
        description="Write one row per row of DATA with its anomaly_score (higher = more anomalous) and "
        "is_anomaly (1 above the model's threshold). A label column in DATA is ignored.",
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

    model = load(args.model, device=args.device)
    X, _ = _read_samples(args.data, args.label_column)
    scores = model.anomaly_score(X)
    flags = (scores > model.threshold_).astype(int)
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        raise InvalidInputError(f"output folder does not exist: {out.parent}")
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["anomaly_score", "is_anomaly"])
        writer.writerows(zip((f"{value:.9g}" for value in scores), flags.tolist()))
    tmp.replace(out)
    print(f"scored {len(scores)} rows; {int(np.sum(flags))} above the threshold; wrote {out}")
    return 0


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
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
