"""``deepsad demo``: Deep SAD vs Deep SVDD on scikit-learn's digits, as a table (see :mod:`deepsad.demo`)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from deepsad.cli.arguments import add_command


def add_demo_command(commands: Any) -> None:
    """Add the ``demo`` command to the ``deepsad`` parser."""
    demo = add_command(
        commands, "demo", run_demo, help="Deep SAD vs Deep SVDD on scikit-learn's digits (no download)",
        description="One-vs-rest on the 8x8 digits that ship with scikit-learn: each digit in turn is "
        "normal, a few labeled anomalies come from one other digit, and the test set holds all digits. "
        "Prints the test AUC of Deep SVDD and Deep SAD per normal digit.",
    )
    demo.add_argument("--epochs", type=int, default=150, help="pretraining and training epochs each (default 150)")
    demo.add_argument("--gamma-l", type=float, default=0.05, help="ratio of labeled anomalies (default 0.05)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--classes", type=int, nargs="+", default=list(range(10)), metavar="DIGIT")


def run_demo(args: argparse.Namespace) -> int:
    """Run ``deepsad demo``; returns the exit status."""
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
