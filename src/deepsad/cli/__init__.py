"""The ``deepsad`` command line: :func:`main` and the parser of every command.

This package is the only place that configures logging or prints. Every user mistake ends
in one line on stderr and a non-zero exit status; a traceback means a bug. Each command
lives in a module of its own, imported when the parser is built, so that ``deepsad --help``
imports no torch:

* :mod:`~deepsad.cli.fit` -- ``fit``; :mod:`~deepsad.cli.score` -- ``score``;
* :mod:`~deepsad.cli.model` -- ``info`` and ``evaluate``; :mod:`~deepsad.cli.export` -- ``export``;
* :mod:`~deepsad.cli.demo` -- ``demo``; :mod:`~deepsad.cli.data` -- ``data ...``;
* :mod:`~deepsad.cli.experiment` -- ``experiment ...``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from deepsad.errors import DeepSADError

#: Exit status for a user error (bad input, missing file, ...).
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command registered."""
    from deepsad._version import __version__
    from deepsad.cli.data import add_data_commands
    from deepsad.cli.demo import add_demo_command
    from deepsad.cli.experiment import add_experiment_commands
    from deepsad.cli.export import add_export_command
    from deepsad.cli.fit import add_fit_command
    from deepsad.cli.model import add_model_commands
    from deepsad.cli.score import add_score_command

    parser = argparse.ArgumentParser(
        prog="deepsad",
        description="Deep semi-supervised anomaly detection (Deep SAD, Deep SVDD and baselines).",
    )
    parser.add_argument("--version", action="version", version=f"deepsad {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    add_fit_command(commands)
    add_score_command(commands)
    add_model_commands(commands)
    add_export_command(commands)
    add_demo_command(commands)
    add_data_commands(commands)
    add_experiment_commands(commands)
    return parser


def _trains(args: argparse.Namespace) -> bool:
    """Whether the command trains models here (fit, demo, experiments run)."""
    from deepsad.cli.demo import run_demo
    from deepsad.cli.experiment import cmd_run
    from deepsad.cli.fit import run_fit

    return args.func in (run_fit, run_demo, cmd_run)


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
