"""The one command tree: a decorator registry, and the matcher that walks it.

Every command, in every mode, registers here with the syntax a manual would
print (see `grammar`); the interactive shell, batch mode, `?` help, Tab
completion and the startup-file loader all go through `CommandTree.match`
and `CommandTree.suggest`, so they can never disagree about what a command
line means.

Matching follows all commands of a mode at once, word by word. A word that
equals a keyword selects it; otherwise a word selects every keyword it is a
prefix of, and every argument that parses it, except that a keyword wins
over the longer keywords made of it and a hyphen (`tun` is `tunnel`, not
`tunnel-profile`, unless the line cannot go on as `tunnel`). When the line ends, exactly
one reading must remain: if the readings disagree about a keyword the
command is ambiguous (IOS: `% Ambiguous command`), so `sh` in interface mode
(`shutdown` or `show`) is ambiguous while `sh ipsec tunnel` is not.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config.model import RunningConfig
from ..config.tokens import Token
from .grammar import Automaton, Terminal
from .helptext import FIRST_WORD_HINTS, KEYWORD_HELP
from .types import TYPES, ArgError, IntRange, Text, Value

if TYPE_CHECKING:
    from .context import Context


#: An invalid word lists the keywords that were possible when there are this few.
_LIST_AT_MOST = 8
#: difflib ratio above which a mistyped word gets a did-you-mean.
_CLOSE_ENOUGH = 0.75


def word_order(word: str) -> tuple[int, int, str]:
    """Numbers numerically (DH groups 1 2 5 14), then words alphabetically."""
    return (0, int(word), "") if word.isdecimal() else (1, 0, word)


def suggestion_order(item: Suggestion) -> tuple[bool, bool, tuple[int, int, str]]:
    """Words first, then placeholders (A.B.C.D) and `|` (output filters), `<cr>` last."""
    return (item.word == "<cr>", not item.is_word, word_order(item.word))


class Mode(enum.Enum):
    """The command modes of SPEC 3.2; the value is the prompt's mode tag."""

    USER_EXEC = ">"
    PRIV_EXEC = "#"
    CONFIG = "(config)#"
    CONFIG_IF = "(config-if)#"
    CONFIG_IKE_POLICY = "(config-ike-policy)#"
    CONFIG_MANUAL_KEY = "(config-manual-key)#"
    CONFIG_TUNNEL_PROFILE = "(config-tunnel-profile)#"
    CONFIG_RADIUS = "(config-radius)#"


SUB_MODES = frozenset({Mode.CONFIG_IF, Mode.CONFIG_IKE_POLICY, Mode.CONFIG_MANUAL_KEY,
                       Mode.CONFIG_TUNNEL_PROFILE, Mode.CONFIG_RADIUS})
CONFIG_MODES = SUB_MODES | {Mode.CONFIG}
EXEC_MODES = frozenset({Mode.USER_EXEC, Mode.PRIV_EXEC})
ALL_MODES = CONFIG_MODES | EXEC_MODES

Handler = Callable[["Context", "Args"], None]


class CommandError(Exception):
    """A command refuses to run; `at` is the argument (name or word) the '^' points at."""

    def __init__(self, message: str, at: str | Token | None = None) -> None:
        super().__init__(message)
        self.at = at


@dataclass(frozen=True)
class Step:
    """One word of the line and the terminal it was read as."""

    token: Token
    terminal: Terminal
    value: Value


@dataclass(frozen=True)
class Args:
    """The words of a matched line, by argument name (and keyword capture)."""

    steps: tuple[Step, ...]

    def _values(self, name: str) -> list[Step]:
        return [s for s in self.steps if name in (s.terminal.arg, s.terminal.capture)]

    def has(self, keyword: str) -> bool:
        return any(s.terminal.keyword == keyword for s in self.steps)

    def opt_text(self, name: str) -> str | None:
        found = self._values(name)
        return str(found[0].value) if found else None

    def text(self, name: str) -> str:
        value = self.opt_text(name)
        if value is None:
            raise KeyError(name)
        return value

    def texts(self, name: str) -> list[str]:
        return [str(s.value) for s in self._values(name)]

    def opt_number(self, name: str) -> int | None:
        found = self._values(name)
        return int(found[0].value) if found else None

    def number(self, name: str) -> int:
        value = self.opt_number(name)
        if value is None:
            raise KeyError(name)
        return value

    def tokens(self, name: str) -> list[Token]:
        return [s.token for s in self._values(name)]


@dataclass(eq=False)
class Command:
    syntax: str
    modes: frozenset[Mode]
    handler: Handler
    automaton: Automaton
    hidden: bool = False  # accepted, but never offered by `?` or Tab
    operational: bool = False  # show / clear / write: not part of a configuration
    filterable: bool = False  # its output may go through `| include ...` (cli.filters)


@dataclass(frozen=True)
class _Reading:
    """One way of reading the words so far: a command and a state in it."""

    command: Command
    state: int
    steps: tuple[Step, ...]

    def key(self) -> tuple[object, ...]:
        return (id(self.command), self.state, tuple(id(s.terminal) for s in self.steps))

    def words(self) -> tuple[str, ...]:
        return tuple(s.terminal.keyword or "<arg>" for s in self.steps)


@dataclass(frozen=True)
class Match:
    """The line is one command."""

    command: Command
    args: Args


@dataclass(frozen=True)
class Failure:
    """The line is no command; `kind` is invalid, ambiguous or incomplete."""

    kind: str
    token_index: int  # the word at fault (len(tokens) when incomplete)
    column: int | None  # where the '^' goes
    details: tuple[str, ...] = ()

    @property
    def progress(self) -> int:
        """How far the line got, to pick the better of two layers' errors."""
        return self.token_index if self.kind == "invalid" else 1 << 30

    def message(self, line: str) -> str:
        if self.kind == "ambiguous":
            head = f'% Ambiguous command: "{line[: self.column_end(line)].strip()}"'
        elif self.kind == "incomplete":
            head = "% Incomplete command."
        else:
            head = "% Invalid input detected at '^' marker."
        return "\n".join([head, *self.details])

    def column_end(self, line: str) -> int:
        if self.column is None:
            return len(line)
        end = self.column
        while end < len(line) and not line[end].isspace():
            end += 1
        return end


@dataclass(frozen=True)
class Suggestion:
    """One entry of `?` help or Tab completion."""

    word: str
    help: str
    is_word: bool = True  # False for placeholders (A.B.C.D) and <cr>


@dataclass
class CommandTree:
    commands: list[Command] = field(default_factory=list)
    _by_mode: dict[tuple[Mode, bool | None], list[Command]] = field(default_factory=dict)

    def command(
        self,
        syntax: str,
        *,
        modes: Iterable[Mode],
        help: dict[str, str] | None = None,
        hidden: bool = False,
        operational: bool = False,
        filterable: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of `syntax` in `modes`."""

        def register(handler: Handler) -> Handler:
            words = {**KEYWORD_HELP, **(help or {})}
            automaton = Automaton(syntax, TYPES, words)
            self.commands.append(
                Command(
                    syntax, frozenset(modes), handler, automaton, hidden, operational, filterable
                )
            )
            self._by_mode.clear()
            return handler

        return register

    def in_mode(self, mode: Mode, *, operational: bool | None = None) -> list[Command]:
        key = (mode, operational)
        if key not in self._by_mode:
            self._by_mode[key] = [
                c
                for c in self.commands
                if mode in c.modes and (operational is None or c.operational == operational)
            ]
        return self._by_mode[key]

    # -- matching ------------------------------------------------------------

    @staticmethod
    def _start(commands: Sequence[Command]) -> list[_Reading]:
        return [_Reading(c, c.automaton.start, ()) for c in commands]

    @staticmethod
    def _advance(
        readings: list[_Reading], token: Token
    ) -> tuple[list[_Reading], list[_Reading], list[str]]:
        """Readings that accept `token` next: those taking it as a whole keyword,
        those taking it as a prefix or an argument, and why the others did not."""
        exact: list[_Reading] = []
        loose: list[_Reading] = []
        errors: list[str] = []
        word = token.text.lower()
        for reading in readings:
            for terminal, nxt in reading.command.automaton.next_moves(reading.state):
                if terminal.keyword is not None:
                    if word == terminal.keyword:
                        target = exact
                    elif terminal.keyword.startswith(word):
                        target = loose
                    else:
                        continue
                    value: Value = terminal.keyword
                else:
                    assert terminal.type is not None
                    try:
                        value = terminal.type.parse(token.text)
                    except ArgError as exc:
                        claimed = terminal.type.claims(token.text)
                        errors.insert(0 if claimed else len(errors), str(exc))
                        continue
                    target = loose
                target.append(
                    _Reading(reading.command, nxt, (*reading.steps, Step(token, terminal, value)))
                )
        return _unique(exact), _unique(loose), errors

    def _walk(
        self, commands: Sequence[Command], tokens: Sequence[Token]
    ) -> tuple[list[_Reading], Failure | None]:
        readings, failure, _ = self._walk_from(self._start(commands), tokens, 0)
        return readings, failure

    def _walk_from(
        self, readings: list[_Reading], tokens: Sequence[Token], index: int
    ) -> tuple[list[_Reading], Failure | None, list[_Reading]]:
        """The readings of `tokens[index:]`, and those a whole keyword hid.

        A word typed in full wins over longer keywords (`group 1` is not
        14); but when that reading dies later in the line, the prefix
        readings it hid are followed instead (`ip cl sa` is `ipsec clear
        sa`, although `ip local pool` exists). The hidden readings that
        reach the end of the line are returned too, for `?` and Tab.
        """
        hidden: list[tuple[int, list[_Reading]]] = []
        while index < len(tokens):
            token = tokens[index]
            exact, loose, errors = self._advance(readings, token)
            loose, longer = _stems_first(loose)
            if exact and (loose or longer):
                hidden.append((index + 1, loose + longer))
            elif longer:
                hidden.append((index + 1, longer))
            if not (exact or loose):
                why = self._first_word_hint(token) if index == 0 else ()
                failure = Failure(
                    "invalid", index, token.start, why or self._why(readings, token, errors)
                )
                for at, alternative in reversed(hidden):
                    found, later, _ = self._walk_from(alternative, tokens, at)
                    if later is None:
                        return found, None, []
                return [], failure, []
            readings = exact or loose
            index += 1
        alternatives = [
            r for at, alternative in hidden
            for r in self._walk_from(alternative, tokens, at)[0]
        ]
        return readings, None, alternatives

    @staticmethod
    def _first_word_hint(token: Token) -> tuple[str, ...]:
        """An IOS-ism typed first: the ipsecgw command it means."""
        hint = FIRST_WORD_HINTS.get(token.text.lower())
        return (f'% Did you mean "{hint}"?',) if hint else ()

    @staticmethod
    def _extra_word(readings: list[_Reading], token: Token) -> str:
        """A word after a complete command: a crossed repetition limit, an unquoted blank."""
        for reading in readings:
            if not reading.steps:
                continue
            last = reading.steps[-1].terminal
            if isinstance(last.type, Text):
                return (
                    f'% Extra word after the {last.type.placeholder}: if it has blanks,'
                    ' quote it ("...")'
                )
            word = token.text.lower()
            repeats = [
                t
                for moves in reading.command.automaton.moves
                for t, _ in moves
                if last.capture and t.capture == last.capture and t.keyword
            ]
            if any(t.keyword is not None and t.keyword.startswith(word) for t in repeats):
                count = sum(1 for step in reading.steps if step.terminal.capture == last.capture)
                return f"% At most {count} {last.capture}s"
        return "% Extra word after a complete command"

    @classmethod
    def _why(
        cls, readings: list[_Reading], token: Token, errors: list[str]
    ) -> tuple[str, ...]:
        """The detail line under `% Invalid input`: a range, a near keyword, a type."""
        terminals = [
            t
            for r in readings
            if not r.command.hidden
            for t, _ in r.command.automaton.next_moves(r.state)
        ]
        for terminal in terminals:
            if isinstance(terminal.type, IntRange) and token.text.isdecimal():
                return (f"% Value out of range: {terminal.type.placeholder}",)
        if not terminals:
            return (cls._extra_word(readings, token),)
        keywords = sorted({t.keyword for t in terminals if t.keyword is not None}, key=word_order)
        close = difflib.get_close_matches(token.text.lower(), keywords, n=1, cutoff=_CLOSE_ENOUGH)
        if close:
            return (f'% Did you mean "{close[0]}"?',)
        if errors:
            return (f"% {errors[0]}",)
        if keywords and len(keywords) <= _LIST_AT_MOST and len(keywords) == len(terminals):
            return (f"% Expected one of: {', '.join(keywords)}",)
        return ()

    def match(self, commands: Sequence[Command], tokens: Sequence[Token]) -> Match | Failure:
        readings, failure = self._walk(commands, tokens)
        if failure is not None:
            return failure
        for index in range(len(tokens)):
            if len({r.words()[index] for r in readings}) > 1:
                return Failure(
                    "ambiguous", index, tokens[index].start, self._could_be(readings, index)
                )
        complete = [r for r in readings if r.command.automaton.accepts(r.state)]
        if not complete:
            return Failure("incomplete", len(tokens), None)
        if len({id(r.command) for r in complete}) > 1:
            return Failure("ambiguous", 0, tokens[0].start if tokens else None)
        return Match(complete[0].command, Args(complete[0].steps))

    @staticmethod
    def _could_be(readings: list[_Reading], index: int) -> tuple[str, ...]:
        words = sorted({r.words()[index] for r in readings} - {"<arg>"})
        return (f"% Could be: {', '.join(words)}",) if words else ()

    def suggest(
        self,
        commands: Sequence[Command],
        tokens: Sequence[Token],
        partial: str,
        config: RunningConfig,
        subcommands: Callable[[], Sequence[Command]],
    ) -> list[Suggestion] | Failure:
        """What may come at the end of `tokens`, starting with `partial`.

        With `partial` empty this is `?` after a blank (every next word and
        `<cr>` when the command is complete); otherwise the words the partial
        word may complete to. `subcommands` gives the commands a rest-of-line
        argument (`do ...`) continues with.
        """
        readings, failure, alternatives = self._walk_from(self._start(commands), tokens, 0)
        if failure is not None:
            return failure
        found = self._suggestions(readings, partial, config, subcommands)
        if not found:  # `sh ip tu`: nothing after `ip`, but `ipsec` has `tunnel`
            found = self._suggestions(alternatives, partial, config, subcommands)
        return sorted(found.values(), key=suggestion_order)

    def _suggestions(
        self,
        readings: list[_Reading],
        partial: str,
        config: RunningConfig,
        subcommands: Callable[[], Sequence[Command]],
    ) -> dict[str, Suggestion]:
        found: dict[str, Suggestion] = {}
        lower = partial.lower()
        for reading in readings:
            if reading.command.hidden:
                continue
            if not partial and reading.command.automaton.accepts(reading.state):
                found.setdefault("<cr>", Suggestion("<cr>", "", is_word=False))
                nested = bool(reading.steps) and reading.steps[-1].terminal.is_line
                if reading.command.filterable and not nested:  # `do ...`: the inner command's
                    found.setdefault("|", Suggestion("|", "Output filters", is_word=False))
            for terminal, _ in reading.command.automaton.next_moves(reading.state):
                for suggestion in self._offer(
                    terminal, reading, partial, lower, config, subcommands
                ):
                    found.setdefault(suggestion.word, suggestion)
        return found

    def _offer(
        self,
        terminal: Terminal,
        reading: _Reading,
        partial: str,
        lower: str,
        config: RunningConfig,
        subcommands: Callable[[], Sequence[Command]],
    ) -> list[Suggestion]:
        if terminal.keyword is not None:
            if terminal.keyword.startswith(lower):
                return [Suggestion(terminal.keyword, terminal.help)]
            return []
        assert terminal.type is not None
        if terminal.is_line:
            inner = [s.token for s in reading.steps if s.terminal is terminal]
            nested = self.suggest(subcommands(), inner, partial, config, subcommands)
            return [] if isinstance(nested, Failure) else nested
        help_text = terminal.help or terminal.type.help
        offers = [
            Suggestion(value, help_text)
            for value in terminal.type.candidates(config)
            if value.lower().startswith(lower)
        ]
        try:
            if partial:
                terminal.type.parse(partial)
        except ArgError:
            return offers
        return [*offers, Suggestion(terminal.type.placeholder, help_text, is_word=False)]


def _stems_first(readings: list[_Reading]) -> tuple[list[_Reading], list[_Reading]]:
    """Prefix readings, split: a word that abbreviates a keyword and also the
    longer keywords made of it and a hyphen (`tun`: `tunnel` and
    `tunnel-profile`) reads as that keyword; the longer ones are returned
    apart, to be followed only if that reading dies later in the line."""
    stems = {r.steps[-1].terminal.keyword for r in readings if r.steps}

    def longer(reading: _Reading) -> bool:
        keyword = reading.steps[-1].terminal.keyword if reading.steps else None
        return keyword is not None and any(
            stem is not None and keyword.startswith(stem + "-") for stem in stems)

    return [r for r in readings if not longer(r)], [r for r in readings if longer(r)]


def _unique(readings: list[_Reading]) -> list[_Reading]:
    return list({r.key(): r for r in readings}.values())


#: The registry every `commands_*` module adds to.
TREE = CommandTree()
