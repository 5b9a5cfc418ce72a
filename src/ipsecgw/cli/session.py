"""One CLI session: a mode, a virtual-router context, one line at a time.

    session = Session(gateway)
    result = session.execute("configure terminal")
    session.prompt                       # "host1(config)#"
    session.help("show ipsec ")          # what `?` lists
    session.complete("sh ipsec tu")      # what Tab offers

In a sub-mode (interface, IKE policy, manual key) a line that is not a
sub-mode command but is a global configuration command leaves the sub-mode
and runs, as on IOS and JUNOSe; that is also why sub-mode lines in a startup
file need no indentation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..config.model import DEFAULT_VR
from ..config.tokens import Token, TokenizeError, tokenize
from . import (  # noqa: F401  (importing them registers their commands in TREE)
    commands_config,
    commands_exec,
    commands_ike,
    commands_show,
    commands_tunnel,
)
from .context import Context, Target
from .filters import FILTERS, FilterError, filter_words, pipe_column, split_filter
from .gateway import Gateway, GatewayError
from .tree import (
    SUB_MODES,
    TREE,
    Command,
    CommandError,
    Failure,
    Match,
    Mode,
    Suggestion,
    suggestion_order,
)


@dataclass(frozen=True)
class Result:
    """The outcome of one line; `caret` is the column the '^' marker points at."""

    ok: bool
    output: str = ""
    error: str = ""
    caret: int | None = None
    closed: bool = False  # the session ended (`exit` from exec mode)


_NOT_FILTERABLE = "% Output filters (| include ...) apply to show commands only"


@dataclass(frozen=True)
class Help:
    """What `?` shows: (word, help) pairs, or why the line so far is wrong."""

    items: tuple[tuple[str, str], ...] = ()
    error: str = ""
    caret: int | None = None


class _NestedFailure(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.kind)
        self.failure = failure


def _filter_help(line: str, column: int) -> tuple[tuple[str, str], ...]:
    """`?` after a `|`: the filters, or what a filter takes next."""
    word, _, rest = filter_words(line, column)
    if not word or (not rest and not line[-1:].isspace()):
        return tuple((k, h) for k, h in FILTERS.items() if k.startswith(word.lower()))
    if "count".startswith(word.lower()):
        return (("<cr>", ""),)
    return (("LINE", "Regular expression (Python re syntax)"),)


def format_error(error: str, caret: int | None, *, prompt: str, line: str, echo: bool) -> str:
    """An error as a terminal shows it: the line (when `echo`), '^' under the word."""
    lines = [prompt + line] if echo else []
    if caret is not None:
        lines.append(" " * (len(prompt) + caret) + "^")
    lines.append(error)
    return "\n".join(lines)


def format_help(items: Sequence[tuple[str, str]]) -> str:
    """`?` output: one word a line, the help text in a column."""
    width = max((len(word) for word, _ in items), default=0)
    return "\n".join(f"  {word.ljust(width)}  {text}".rstrip() for word, text in items)


class Session:
    def __init__(
        self,
        gateway: Gateway,
        *,
        mode: Mode = Mode.PRIV_EXEC,
        vr: str = DEFAULT_VR,
        clock: Callable[[], float] = time.time,
        configuration_only: bool = False,
    ) -> None:
        """`configuration_only`: refuse operational commands (the startup-file loader)."""
        self.gateway = gateway
        self.mode = mode
        self.vr = vr
        self.target: Target = None
        self.clock = clock
        self.configuration_only = configuration_only
        self.closed = False

    @property
    def prompt(self) -> str:
        vr = "" if self.vr == DEFAULT_VR else f":{self.vr}"
        return f"{self.gateway.config.hostname}{vr}{self.mode.value}"

    def enter_configuration(self) -> None:
        """Back to global configuration mode from any mode (the loader never leaves it)."""
        self.mode, self.target = Mode.CONFIG, None

    def leave_sub_mode(self) -> None:
        """Back to global configuration mode, if in a sub-mode."""
        if self.mode in SUB_MODES:
            self.mode, self.target = Mode.CONFIG, None

    # -- the command sets a line is looked up in ---------------------------------

    def _commands(self, mode: Mode) -> list[Command]:
        return TREE.in_mode(mode, operational=False if self.configuration_only else None)

    def _layers(self) -> list[tuple[list[Command], Mode | None]]:
        """(commands, mode to switch to first): the mode's own, then global config."""
        layers: list[tuple[list[Command], Mode | None]] = [(self._commands(self.mode), None)]
        if self.mode in SUB_MODES:
            layers.append((self._commands(Mode.CONFIG), Mode.CONFIG))
        return layers

    def _operational(self) -> list[Command]:
        return TREE.in_mode(Mode.PRIV_EXEC, operational=True)

    def _match(self, tokens: list[Token]) -> tuple[Match, Mode | None] | Failure:
        best: Failure | None = None
        for commands, switch in self._layers():
            outcome = TREE.match(commands, tokens)
            if isinstance(outcome, Match):
                return outcome, switch
            if best is None or outcome.progress > best.progress:
                best = outcome
        assert best is not None
        return best

    # -- execute -----------------------------------------------------------------

    def execute(self, line: str) -> Result:
        if self.closed:
            return Result(False, error="% Session closed", closed=True)
        try:
            line, output_filter = split_filter(line)
            tokens = tokenize(line)
        except (TokenizeError, FilterError) as exc:
            return Result(False, error=f"% {exc}", caret=exc.column)
        if not tokens or tokens[0].text.startswith("!"):
            return Result(True)
        found = self._match(tokens)
        if isinstance(found, Failure):
            return Result(False, error=found.message(line), caret=found.column)
        match, switch = found
        if output_filter is not None and not match.command.filterable:
            return Result(False, error=_NOT_FILTERABLE, caret=output_filter.column)
        old_config = self.gateway.config
        ctx = Context(
            gateway=self.gateway,
            config=old_config,
            mode=switch or self.mode,
            vr=self.vr,
            target=None if switch else self.target,
            now=self.clock(),
            run_operational=self._run_operational,
            filtered=output_filter is not None,
        )
        try:
            match.command.handler(ctx, match.args)
        except CommandError as exc:
            return Result(False, error=f"% {exc}", caret=self._caret(match, exc))
        except _NestedFailure as nested:
            failure = nested.failure
            return Result(False, error=failure.message(line), caret=failure.column)
        except GatewayError as exc:
            return Result(False, error=f"% {exc}")
        if ctx.new_config is not None and ctx.new_config != old_config:
            try:
                self.gateway.apply(ctx.new_config)
            except GatewayError as exc:
                return Result(False, error=f"% {exc}")
        self.mode, self.vr, self.target = ctx.mode, ctx.vr, ctx.target
        self.closed = ctx.closed
        output = "\n".join(ctx.output)
        if output_filter is not None:
            output = output_filter.apply(output)
        return Result(True, output=output, closed=ctx.closed)

    @staticmethod
    def _caret(match: Match, error: CommandError) -> int | None:
        if isinstance(error.at, Token):
            return error.at.start
        tokens = match.args.tokens(error.at) if error.at else []
        return tokens[-1].start if tokens else None

    def _run_operational(self, ctx: Context, tokens: list[Token]) -> None:
        """`do COMMAND`: run an exec-mode show/clear/write command from any mode."""
        outcome = TREE.match(self._operational(), tokens)
        if isinstance(outcome, Failure):
            raise _NestedFailure(outcome)
        if ctx.filtered and not outcome.command.filterable:
            raise CommandError(_NOT_FILTERABLE.removeprefix("% "))
        outcome.command.handler(ctx, outcome.args)

    # -- help and completion -------------------------------------------------------

    def _suggest(self, line: str) -> list[Suggestion] | Failure | TokenizeError:
        try:
            tokens = tokenize(line)
        except TokenizeError as exc:
            return exc
        partial = ""
        if tokens and not line[-1:].isspace():
            partial = tokens.pop().text
        config = self.gateway.config
        found: dict[str, Suggestion] = {}
        failure: Failure | None = None
        for commands, _ in self._layers():
            outcome = TREE.suggest(commands, tokens, partial, config, self._operational)
            if isinstance(outcome, Failure):
                failure = failure or outcome
                continue
            for item in outcome:
                found.setdefault(item.word, item)
        if not found and failure is not None:
            return failure
        return sorted(found.values(), key=suggestion_order)

    def help(self, line: str) -> Help:
        """`?` at the end of `line`: the possible next words (or completions of the last)."""
        column = pipe_column(line)
        if column is not None:
            return Help(items=_filter_help(line, column))
        outcome = self._suggest(line)
        if isinstance(outcome, TokenizeError):
            return Help(error=f"% {outcome}", caret=outcome.column)
        if isinstance(outcome, Failure):
            return Help(error=outcome.message(line), caret=outcome.column)
        if not outcome:
            return Help(error="% Unrecognized command", caret=len(line.rstrip()))
        return Help(items=tuple((s.word, s.help) for s in outcome))

    def complete(self, line: str) -> list[tuple[str, str]]:
        """Tab at the end of `line`: the words the last (partial) word may become."""
        column = pipe_column(line)
        if column is not None:
            return [(w, h) for w, h in _filter_help(line, column) if w in FILTERS]
        outcome = self._suggest(line)
        if isinstance(outcome, (TokenizeError, Failure)):
            return []
        return [(s.word, s.help) for s in outcome if s.is_word]
