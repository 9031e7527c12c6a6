"""``deepsad.cli.arguments``: the argument definitions several commands share."""

from __future__ import annotations

import argparse

import pytest

from deepsad.cli import build_parser
from deepsad.cli.arguments import SHARED_ARGUMENTS, add_command, add_command_group, add_shared_argument


def _commands() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(prog="tool")
    return parser, parser.add_subparsers(dest="command")


def test_add_command_sets_the_function_that_runs_it():
    parser, commands = _commands()
    run = lambda args: 0  # noqa: E731
    sub = add_command(commands, "go", run, help="go somewhere", description="Go.")
    add_shared_argument(sub, "model")
    args = parser.parse_args(["go", "m"])
    assert args.func is run and args.model == "m"
    assert sub.description == "Go."


def test_a_group_requires_a_sub_command():
    parser, commands = _commands()
    group = add_command_group(commands, "data", dest="data_command", help="h", description="d")
    add_command(group, "list", lambda args: 0, help="l")
    assert parser.parse_args(["data", "list"]).data_command == "list"
    with pytest.raises(SystemExit):
        parser.parse_args(["data"])


def test_overrides_replace_the_shared_options_for_one_command_only():
    parser, commands = _commands()
    add_shared_argument(add_command(commands, "a", lambda args: 0, help="a"), "label_column", help="ignored")
    add_shared_argument(add_command(commands, "b", lambda args: 0, help="b"), "label_column")
    assert parser.parse_args(["a"]).label_column == "label"
    assert "help" not in SHARED_ARGUMENTS["label_column"][1]  # the table itself is untouched


@pytest.mark.parametrize("argv", [["score", "M", "D", "--out", "s.csv"], ["evaluate", "M", "D"]])
def test_score_and_evaluate_read_model_and_data_alike(argv):
    args = build_parser().parse_args(argv)
    assert (args.model, args.data, args.label_column, args.device) == ("M", "D", "label", "auto")


@pytest.mark.parametrize("argv", [["data", "list"], ["experiment", "run", "table6"]])
def test_data_root_defaults_to_none_for_data_and_experiment_commands(argv):
    assert build_parser().parse_args(argv).data_root is None
