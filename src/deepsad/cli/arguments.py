"""Argument definitions that several ``deepsad`` commands share.

One definition per option keeps the commands' spelling, metavar and default alike:
``deepsad score MODEL_DIR DATA`` and ``deepsad evaluate MODEL_DIR DATA`` read the same
arguments, ``--data-root`` means the same folder for ``data`` and ``experiment run``. Nothing
here imports more than :mod:`argparse`, so that ``deepsad --help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

#: What every command's function is: the parsed arguments in, the exit status out.
Command = Callable[[argparse.Namespace], int]

#: name -> (flags, keyword arguments of ``add_argument``) of the arguments several commands take
SHARED_ARGUMENTS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "model": (("model",), {"metavar": "MODEL_DIR", "help": "directory written by 'deepsad fit' or save()"}),
    "data": (("data",), {"metavar": "DATA"}),
    "label_column": (("--label-column",), {"default": "label", "metavar": "NAME"}),
    "device": (("--device",), {"default": "auto", "help": "auto, cpu, cuda or cuda:N"}),
    "data_root": (
        ("--data-root",),
        {
            "metavar": "DIR",
            "default": None,
            "help": "folder holding the datasets (default: $DEEPSAD_DATA, else the user cache folder)",
        },
    ),
    "no_progress": (("--no-progress",), {"action": "store_true", "help": "no progress bar"}),
}


def add_shared_argument(parser: argparse.ArgumentParser, name: str, **overrides: Any) -> argparse.Action:
    """Add one of :data:`SHARED_ARGUMENTS` to a command's parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    name : str
        A key of :data:`SHARED_ARGUMENTS` (``"model"``, ``"data"``, ``"label_column"``,
        ``"device"``, ``"data_root"``, ``"no_progress"``).
    **overrides
        Keyword arguments of ``add_argument`` that differ for this command, most often
        ``help`` (what the command does with a data file or its label column).

    Returns
    -------
    argparse.Action
        The argument added.
    """
    flags, options = SHARED_ARGUMENTS[name]
    return parser.add_argument(*flags, **{**options, **overrides})


def add_command(
    commands: Any, name: str, func: Command, *, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """Register one sub-command and the function that runs it.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        What ``add_subparsers()`` returned on the parent parser.
    name : str
        The sub-command's name on the command line.
    func : callable
        Runs the command: ``func(args) -> exit status``; :func:`deepsad.cli.main` calls it.
    help : str
        The one line shown in the parent's ``--help``.
    description : str or None, default=None
        The paragraph shown in the sub-command's own ``--help``.

    Returns
    -------
    argparse.ArgumentParser
        The sub-command's parser, for its own arguments.
    """
    parser = commands.add_parser(name, help=help, description=description)
    parser.set_defaults(func=func)
    return parser


def add_command_group(commands: Any, name: str, *, dest: str, help: str, description: str) -> Any:
    """Register a command that only groups sub-commands (``deepsad data ...``, ``deepsad experiment ...``).

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The ``deepsad`` parser's sub-commands.
    name : str
        The group's name on the command line.
    dest : str
        The attribute of the parsed arguments that names the sub-command chosen.
    help, description : str
        As for :func:`add_command`.

    Returns
    -------
    argparse._SubParsersAction
        The group's sub-commands, for :func:`add_command`; one of them is required.
    """
    group = commands.add_parser(name, help=help, description=description)
    sub_commands = group.add_subparsers(dest=dest, metavar="SUBCOMMAND")
    sub_commands.required = True
    return sub_commands
