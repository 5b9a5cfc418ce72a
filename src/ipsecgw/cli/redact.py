"""Hiding secrets in a command line before it is echoed or logged.

A line that failed may be anything: too long, an unterminated quote, not
even a command, so the command tree cannot be asked which of its words is
a secret. The rule is therefore textual and errs on the side of hiding:
every word after one that abbreviates a keyword taking a secret argument
(`key`, `masked-key`: whatever the tree declares with a secret type) is
replaced by `<hidden>`, wherever that keyword stands in the line. Words are
split at blanks only, so a quote cannot hide a keyword from the rule.
"""

from __future__ import annotations

import functools

from . import (  # noqa: F401  (the commands must be registered before the tree is read)
    commands_config,
    commands_exec,
    commands_ike,
    commands_remote,
    commands_show,
    commands_show_remote,
    commands_tunnel,
)
from .tree import TREE

HIDDEN = "<hidden>"


@functools.cache
def secret_keywords() -> frozenset[str]:
    """Every keyword that is directly followed by a secret argument in some command."""
    found: set[str] = set()
    for command in TREE.commands:
        automaton = command.automaton
        for moves in automaton.moves:
            for terminal, state in moves:
                if terminal.keyword is not None and any(
                    t.type is not None and t.type.secret for t, _ in automaton.next_moves(state)
                ):
                    found.add(terminal.keyword)
    return frozenset(found)


def secret_start(line: str) -> int | None:
    """The column from which `line` is hidden, or None when it holds no secret."""
    keywords = secret_keywords()
    words = line.split()
    column = 0
    for index, word in enumerate(words):
        column = line.index(word, column) + len(word)
        lower = word.lower()
        if index + 1 < len(words) and any(k.startswith(lower) for k in keywords):
            return line.index(words[index + 1], column)
    return None


def redact(line: str) -> str:
    """`line` with every word that may be a secret replaced by `<hidden>`."""
    start = secret_start(line)
    return line if start is None else line[:start] + HIDDEN
