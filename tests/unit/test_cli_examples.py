"""Every command's `--help` ends with examples, and every example parses as its command."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

import pytest

from cli.examples import EXAMPLES, examples_epilog
from cli.main import build_parser

SHELL_OPERATORS = {"|", "<", ">", "&&", ";"}


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield " ".join((*path, name)), child
                yield from _subcommands(child, (*path, name))


SUBCOMMANDS = dict(_subcommands(build_parser()))


def _vigie_arguments(command: str) -> list[str]:
    """The arguments given to `vigie` in an example's shell line (pipes and redirections off)."""
    words = shlex.split(command)
    start = words.index("vigie") + 1
    end = next((i for i in range(start, len(words)) if words[i] in SHELL_OPERATORS), len(words))
    return words[start:end]


def _parsed_path(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The command path argparse chose for `args` ("db export")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(args, action.dest)
            rest = _parsed_path(action.choices[name], args)
            return f"{name} {rest}".strip()
    return ""


def test_the_walk_finds_nested_subcommands() -> None:
    assert {"check", "run", "db", "db export", "outbox resend", "incident stop"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("path", sorted(SUBCOMMANDS))
def test_every_subcommand_has_examples_in_its_help(path: str) -> None:
    assert EXAMPLES.get(path), f"add examples for `vigie {path}` to cli/examples.py"
    help_text = SUBCOMMANDS[path].format_help()
    assert examples_epilog(path) in help_text
    for command, what in EXAMPLES[path]:
        assert command in help_text and what in help_text


@pytest.mark.parametrize(
    ("path", "command"),
    [(path, command) for path, examples in sorted(EXAMPLES.items()) for command, _ in examples],
)
def test_every_example_parses_as_the_command_it_illustrates(path: str, command: str) -> None:
    assert path in SUBCOMMANDS, f"examples for `vigie {path}`, which is no command"
    arguments = _vigie_arguments(command)
    try:
        args = build_parser().parse_args(arguments)
    except SystemExit as exit_:
        pytest.fail(f"`{command}` does not parse (exit {exit_.code})")
    assert _parsed_path(build_parser(), args).startswith(path)
    leaf = SUBCOMMANDS[path].get_default("func")
    if leaf is not None:  # a group's example runs one of its subcommands
        assert args.func is leaf


def test_a_usage_error_points_to_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["db", "export", "--since", "2026-11-01"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error == (
        "vigie db export: error: the following arguments are required: --until "
        "(examples: vigie db export --help)"
    )
