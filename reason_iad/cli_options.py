"""Options that a command and its actions share, so they may be given before or after the action.

argparse lets an option of `reason-iad kb` come only before the action (`kb --db DIR import FILE`). After the
parsers are built, `share_options(parser)` gives each action a copy of `parser`'s own options, and
`add_everywhere(parser, ...)` adds one option (such as `--verbose`) to a parser and all its subcommands. The
copies default to `argparse.SUPPRESS`: an action's parse sets the value only when the option is given there,
so `kb --db A list` and `kb list --db A` mean the same, and the default stays that of the first parser.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Iterator


def subcommand_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parsers of `parser`'s subcommands (actions), one level down, each once."""
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield child


def _takes(parser: argparse.ArgumentParser, action: argparse.Action) -> bool:
    return any(flag in parser._option_string_actions for flag in action.option_strings)


def _copy_into(parser: argparse.ArgumentParser, action: argparse.Action) -> None:
    shared = copy.copy(action)
    shared.default, shared.required = argparse.SUPPRESS, False
    parser._add_action(shared)


def share_options(parser: argparse.ArgumentParser) -> None:
    """Let every action of `parser` accept `parser`'s own options (not `--help`) after the action too.

    Call it once the actions are added. An action that defines an option string itself keeps its own option.
    """
    own = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    for child in subcommand_parsers(parser):
        for action in own:
            if not _takes(child, action):
                _copy_into(child, action)


def add_everywhere(parser: argparse.ArgumentParser, *flags: str, **options) -> None:
    """Add an option to `parser` and, with a suppressed default, to every subcommand below it (any depth)."""
    action = parser.add_argument(*flags, **options)
    pending = list(subcommand_parsers(parser))
    while pending:
        child = pending.pop()
        if not _takes(child, action):
            _copy_into(child, action)
        pending += subcommand_parsers(child)
