"""Command syntax strings, compiled to a small automaton per command.

A command is declared with the syntax a manual would print::

    ipsec clear sa {all|tunnel <tunnel:TUNNEL>|state {up|down}=state} [phase {1|2}=phase]

- a bare word is a keyword (matched case-insensitively, by unique prefix);
- ``<name:TYPE>`` is an argument; TYPE names an `ArgType` in the table the
  caller passes, or is a range ``LOW-HIGH`` of integers;
- ``{a|b c}`` is a choice, ``[x]`` is optional (``[a|b]`` an optional choice);
- ``}=name`` / ``]=name`` stores the keyword chosen in that group under ``name``;
- a postfix ``@LOW-HIGH`` repeats the element before it LOW to HIGH times
  (``@1-`` : at least once, no upper bound).

The automaton (Thompson construction: epsilon moves plus one move per
terminal) lets the matcher follow every command of a mode at once, word by
word, which is what unique-prefix abbreviation, `?` help and Tab completion
all need: the set of words that may come next.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .types import ArgType, IntRange, Line


class SyntaxDefinitionError(ValueError):
    """A syntax string is malformed: a programming error, raised at import."""


@dataclass(frozen=True, eq=False)
class Terminal:
    """One word position: a keyword or an argument."""

    keyword: str | None = None
    capture: str | None = None  # for a keyword: store the word under this name
    arg: str | None = None  # for an argument: its name
    type: ArgType | None = None
    help: str = ""

    @property
    def is_line(self) -> bool:
        """An argument that swallows the rest of the line."""
        return isinstance(self.type, Line)


@dataclass(frozen=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alt:
    options: tuple[_Node, ...]


@dataclass(frozen=True)
class _Opt:
    item: _Node


@dataclass(frozen=True)
class _Rep:
    item: _Node
    low: int
    high: int | None


_Node = Terminal | _Seq | _Alt | _Opt | _Rep

_LEX = re.compile(
    r"\s*(?:(?P<open>[\[{])|(?P<close>[\]}])|(?P<bar>\|)|(?P<capture>=[a-z_]+)"
    r"|(?P<rep>@\d+-\d*)|(?P<arg><[a-z_]+:[^>\s]+>)|(?P<word>[^\s\[\]{}|<>=@]+))"
)
_RANGE = re.compile(r"(\d+)-(\d+)\Z")


@dataclass
class _Parser:
    text: str
    types: Mapping[str, ArgType]
    help: Mapping[str, str]
    tokens: list[tuple[str, str]] = field(default_factory=list)
    pos: int = 0

    def lex(self) -> None:
        i = 0
        while i < len(self.text):
            m = _LEX.match(self.text, i)
            if m is None or m.end() == i:
                if self.text[i:].strip():
                    raise SyntaxDefinitionError(f"cannot read {self.text[i:]!r} in {self.text!r}")
                break
            kind = m.lastgroup
            assert kind is not None
            self.tokens.append((kind, m.group(kind)))
            i = m.end()

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise SyntaxDefinitionError(f"unexpected end of {self.text!r}")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def sequence(self) -> _Node:
        items: list[_Node] = []
        while (token := self.peek()) is not None and token[0] not in ("close", "bar"):
            items.append(self.postfix(self.element()))
        return items[0] if len(items) == 1 else _Seq(tuple(items))

    def element(self) -> _Node:
        kind, text = self.take()
        if kind == "word":
            return Terminal(keyword=text, help=self.help.get(text, ""))
        if kind == "arg":
            name, type_name = text[1:-1].split(":", 1)
            return Terminal(
                arg=name, type=self.arg_type(type_name), help=self.help.get(f"<{name}>", "")
            )
        if kind != "open":
            raise SyntaxDefinitionError(f"unexpected {text!r} in {self.text!r}")
        options = [self.sequence()]
        while (token := self.take())[0] == "bar":
            options.append(self.sequence())
        if (text, token[1]) not in (("[", "]"), ("{", "}")):
            raise SyntaxDefinitionError(f"unbalanced {text!r} in {self.text!r}")
        group: _Node = options[0] if len(options) == 1 else _Alt(tuple(options))
        if (nxt := self.peek()) is not None and nxt[0] == "capture":
            self.take()
            group = _capture(group, nxt[1][1:], self.text)
        return _Opt(group) if text == "[" else group

    def postfix(self, node: _Node) -> _Node:
        if (token := self.peek()) is not None and token[0] == "rep":
            self.take()
            low, _, high = token[1][1:].partition("-")
            return _Rep(node, int(low), int(high) if high else None)
        return node

    def arg_type(self, name: str) -> ArgType:
        if m := _RANGE.match(name):
            return IntRange(int(m.group(1)), int(m.group(2)))
        try:
            return self.types[name]
        except KeyError:
            raise SyntaxDefinitionError(
                f"unknown argument type {name!r} in {self.text!r}"
            ) from None


def _capture(group: _Node, name: str, text: str) -> _Node:
    options = group.options if isinstance(group, _Alt) else (group,)
    captured: list[_Node] = []
    for option in options:
        if not isinstance(option, Terminal) or option.keyword is None:
            raise SyntaxDefinitionError(f"'={name}' needs a group of keywords in {text!r}")
        captured.append(Terminal(keyword=option.keyword, capture=name, help=option.help))
    return captured[0] if len(captured) == 1 else _Alt(tuple(captured))


class Automaton:
    """The compiled syntax of one command: states, epsilon moves, word moves."""

    def __init__(self, syntax: str, types: Mapping[str, ArgType], help: Mapping[str, str]) -> None:
        parser = _Parser(syntax, types, help)
        parser.lex()
        root = parser.sequence()
        if parser.peek() is not None:
            raise SyntaxDefinitionError(f"unbalanced group in {syntax!r}")
        self._eps: list[list[int]] = []
        self.moves: list[list[tuple[Terminal, int]]] = []
        self.start = self._new()
        self.accept = self._build(root, self.start)
        self.closure = [self._closure(state) for state in range(len(self._eps))]
        first = [t for s in self.closure[self.start] for t, _ in self.moves[s]]
        if len(first) != 1 or first[0].keyword is None:
            raise SyntaxDefinitionError(f"a command must start with one keyword: {syntax!r}")
        self.first_word = first[0].keyword

    def _new(self) -> int:
        self._eps.append([])
        self.moves.append([])
        return len(self._eps) - 1

    def _build(self, node: _Node, start: int) -> int:
        if isinstance(node, Terminal):
            end = self._new()
            self.moves[start].append((node, end))
            return end
        if isinstance(node, _Seq):
            for item in node.items:
                start = self._build(item, start)
            return start
        end = self._new()
        if isinstance(node, _Alt):
            for option in node.options:
                self._eps[self._build(option, start)].append(end)
        elif isinstance(node, _Opt):
            self._eps[start].append(end)
            self._eps[self._build(node.item, start)].append(end)
        else:
            for _ in range(node.low):
                start = self._build(node.item, start)
            self._eps[start].append(end)
            if node.high is None:
                self._eps[self._build(node.item, end)].append(end)
            else:
                for _ in range(node.high - node.low):
                    start = self._build(node.item, start)
                    self._eps[start].append(end)
        return end

    def _closure(self, state: int) -> tuple[int, ...]:
        seen = [state]
        stack = [state]
        while stack:
            for nxt in self._eps[stack.pop()]:
                if nxt not in seen:
                    seen.append(nxt)
                    stack.append(nxt)
        return tuple(seen)

    def accepts(self, state: int) -> bool:
        return self.accept in self.closure[state]

    def next_moves(self, state: int) -> list[tuple[Terminal, int]]:
        return [move for s in self.closure[state] for move in self.moves[s]]
