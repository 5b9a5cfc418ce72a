"""Simple settings: one declaration registers a command and its `no` form.

A setting is one field of the object a mode edits (a tunnel interface, an
IKE policy rule, the router). Its row in a table says everything::

    Setting("tunnel mtu", "<mtu:576-9216>", "mtu", None, number("mtu"), "Set the MTU ...")

and `register` makes two commands of it:

- `tunnel mtu <mtu:576-9216>` sets the field to what `read` makes of the words;
- `no tunnel mtu [<mtu:576-9216>]` puts the default back. The `no` form
  accepts the words the set form took, or their leading elements (`no
  tunnel pfs`, `no tunnel pfs group`, `no tunnel pfs group 5`), as IOS and
  JUNOSe users type it after editing a `show configuration` line. **Choice**:
  when the whole value is given it must be the configured one, otherwise
  the command is refused and nothing changes (`no tunnel source 10.0.0.9`
  does not remove a source of 10.0.0.1 by mistake).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .context import Context
from .tree import TREE, Args, CommandError, Mode

#: How a setting's value is read from the words of its set form (may refuse).
Reader = Callable[[Context, Args], object]


@dataclass(frozen=True)
class Place:
    """Where settings live: the object a mode edits, and how a changed one is staged."""

    get: Callable[[Context], Any]
    put: Callable[[Context, Any], None]


@dataclass(frozen=True)
class Setting:
    words: str  # the keywords naming it: "tunnel source"
    value: str  # the syntax of its value ("" for an on/off flag)
    field: str  # the model field it sets
    default: object  # what the `no` form puts back
    read: Reader  # the value from the set form's words
    doc: str  # what the set form does (its `help` and docstring)
    no_doc: str = ""  # what the `no` form does (default: "Restore the default ...")
    help: Mapping[str, str] = dataclasses.field(default_factory=dict)  # `?` help of its words
    no_help: Mapping[str, str] = dataclasses.field(default_factory=dict)  # ... in the `no` form


def text(name: str) -> Reader:
    return lambda ctx, args: args.text(name)


def number(name: str) -> Reader:
    return lambda ctx, args: args.number(name)


def const(value: object) -> Reader:
    return lambda ctx, args: value


def _elements(syntax: str) -> list[str]:
    """The top-level elements of a syntax string (a group with its `=name` or `@N-M`)."""
    elements: list[str] = []
    depth = 0
    current = ""
    for char in syntax:
        if char.isspace() and depth == 0:
            if current:
                elements.append(current)
            current = ""
            continue
        depth += (char in "[{") - (char in "]}")
        current += char
    if current:
        elements.append(current)
    return elements


def optional_prefixes(syntax: str) -> str:
    """`a b c` as `[a [b [c]]]`: nothing, or any first part of the value."""
    nested = ""
    for element in reversed(_elements(syntax)):
        nested = f"[{element}{' ' + nested if nested else ''}]"
    return nested


def _given(args: Args, words: str) -> bool:
    """Whether the `no` form carries more than its keywords (and `no`)."""
    return len(args.steps) > 1 + len(words.split())


#: Every registered setting, with its place and modes (for tests and documentation).
TABLE: list[tuple[Place, frozenset[Mode], Setting]] = []


def register(place: Place, modes: Iterable[Mode], rows: Iterable[Setting]) -> None:
    """Register each row's set and `no` commands in `modes`."""
    modes = frozenset(modes)
    for row in rows:
        _register(place, modes, row)
        TABLE.append((place, modes, row))


def _register(place: Place, modes: frozenset[Mode], row: Setting) -> None:
    def set_value(ctx: Context, args: Args) -> None:
        place.put(ctx, replace(place.get(ctx), **{row.field: row.read(ctx, args)}))

    def restore(ctx: Context, args: Args) -> None:
        current = place.get(ctx)
        if _given(args, row.words):
            try:
                typed = row.read(ctx, args)
            except KeyError:  # only a first part of the value: nothing to compare
                pass
            else:
                if typed != getattr(current, row.field):
                    given = args.steps[1 + len(row.words.split()) :]
                    shown = " ".join(step.token.text for step in given)
                    raise CommandError(
                        f"The configured {row.words} is not {shown}", at=given[0].token
                    )
        place.put(ctx, replace(current, **{row.field: row.default}))

    set_value.__doc__ = row.doc
    restore.__doc__ = row.no_doc or f"Restore the default of {row.words}."
    syntax = f"{row.words} {row.value}".strip()
    TREE.command(syntax, modes=modes, help=dict(row.help))(set_value)
    no_syntax = f"no {row.words} {optional_prefixes(row.value)}".strip()
    TREE.command(no_syntax, modes=modes, help={**row.help, **row.no_help})(restore)
