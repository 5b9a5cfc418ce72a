"""Loading a startup configuration file through the command tree (SPEC 3.1).

Each line runs as if typed in global configuration mode; a line that fails
is reported with its number and the rest still applies. Show, clear and
write commands are refused: a configuration file configures.

When a line that is not indented fails, the loader leaves any sub-mode, so
that the indented lines under a failed `interface tunnel ...` can never
edit the interface opened before it.
"""

from __future__ import annotations

from ..config.model import RunningConfig
from .gateway import FakeGateway
from .session import Result, Session
from .tree import Mode

_INVALID = "Invalid input detected at '^' marker."


def one_line_error(line: str, result: Result) -> str:
    """A session error as one log line: what, at which word, in which command."""
    messages = [m.removeprefix("% ") for m in result.error.splitlines()]
    messages = ["Invalid input" if m == _INVALID else m for m in messages]
    where = ""
    if result.caret is not None:
        word = line[result.caret :].split(maxsplit=1)[0] if line[result.caret :].strip() else ""
        where = f' at "{word}"' if word else ""
    return f"{': '.join(messages)}{where} in: {line.strip()}"


def load_config_text(
    text: str, base: RunningConfig | None = None
) -> tuple[RunningConfig, list[tuple[int, str]]]:
    """Apply `text` to `base` (default: an empty configuration).

    Returns the resulting configuration and (line number, message) for every
    line that was rejected.
    """
    holder = FakeGateway(base)
    session = Session(holder, mode=Mode.CONFIG, configuration_only=True)
    errors: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        result = session.execute(line)
        if result.ok:
            continue
        errors.append((number, one_line_error(line, result)))
        if not line[:1].isspace():
            session.leave_sub_mode()
    return holder.config, errors
