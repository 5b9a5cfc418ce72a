"""Loading a startup configuration file through the command tree (SPEC 3.1).

Each line runs as if typed in global configuration mode; a line that fails
is reported with its number and the rest still applies. Show, clear and
write commands are refused: a configuration file configures.

The loader keeps its place whatever the file holds (docs/CLI.md, "The
startup file"):

- a line that is not UTF-8, or longer than `MAX_LINE_LENGTH`, is reported
  by number without being read (nor echoed);
- when a line that is not indented fails, the lines indented under it are
  its block (an `interface tunnel ...` that was refused): they are skipped
  and reported, never run in whatever mode the loader happens to be in, so
  they can neither edit the interface opened before it nor, with their
  `exit`, leave configuration mode;
- `exit` or `end` outside a block never leaves configuration mode: the
  rest of the file still configures;
- a file larger than `MAX_FILE_SIZE` is refused as a whole (`ConfigFileError`)
  rather than loaded in part.

Every message goes through `redact`, so a secret in a refused line is never
logged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..config.model import RunningConfig
from ..config.tokens import MAX_LINE_LENGTH
from .gateway import FakeGateway
from .redact import redact, secret_start
from .session import Result, Session
from .tree import EXEC_MODES, Mode

#: A startup file of 10,000 tunnels is about 4 MB; this leaves ample room.
MAX_FILE_SIZE = 16 * 1024 * 1024

_INVALID = "Invalid input detected at '^' marker."


class ConfigFileError(Exception):
    """The startup file cannot be loaded at all (too large, unreadable)."""


def one_line_error(line: str, result: Result) -> str:
    """A session error as one log line: what, at which word, in which command."""
    messages = [m.removeprefix("% ") for m in result.error.splitlines()]
    messages = ["Invalid input" if m == _INVALID else m for m in messages]
    where = ""
    hidden_from = secret_start(line)
    if result.caret is not None and (hidden_from is None or result.caret < hidden_from):
        word = line[result.caret :].split(maxsplit=1)[0] if line[result.caret :].strip() else ""
        where = f' at "{word}"' if word else ""
    return f"{': '.join(messages)}{where} in: {redact(line.strip())}"


#: One line of a file: its number, its text (None when it cannot be read), why not,
#: and whether it is indented (a line of the block above it).
_Line = tuple[int, str | None, str, bool]


def _decode(data: bytes) -> list[_Line]:
    raw_lines = data.split(b"\n")
    if raw_lines and not raw_lines[-1]:
        raw_lines.pop()
    lines: list[_Line] = []
    for number, raw in enumerate(raw_lines, start=1):
        raw = raw.removesuffix(b"\r")
        indented = raw[:1] in (b" ", b"\t")
        if len(raw) > MAX_LINE_LENGTH:
            problem = f"Line longer than {MAX_LINE_LENGTH} characters, not read"
            lines.append((number, None, problem, indented))
            continue
        try:
            lines.append((number, raw.decode("utf-8"), "", indented))
        except UnicodeDecodeError as exc:
            problem = f"Not UTF-8 text (byte {exc.start + 1}), not read"
            lines.append((number, None, problem, indented))
    return lines


def _load(
    lines: Iterable[_Line], base: RunningConfig | None
) -> tuple[RunningConfig, list[tuple[int, str]]]:
    holder = FakeGateway(base)
    session = Session(holder, mode=Mode.CONFIG, configuration_only=True)
    errors: list[tuple[int, str]] = []
    failed_block: int | None = None  # number of the failed line whose block is being skipped
    for number, line, problem, indented in lines:
        if line is not None and not line.strip():
            continue
        if indented and failed_block is not None:
            if line is None or not line.strip().startswith("!"):
                errors.append((number, f"Skipped: under line {failed_block}, which failed"))
            continue
        failed_block = None
        if line is None:
            errors.append((number, problem))
            ok = False
        else:
            result = session.execute(line)
            ok = result.ok
            if not ok:
                errors.append((number, one_line_error(line, result)))
        if not ok and not indented:
            session.leave_sub_mode()
            failed_block = number
        if session.mode in EXEC_MODES:
            session.enter_configuration()
    return holder.config, errors


def load_config_bytes(
    data: bytes, base: RunningConfig | None = None
) -> tuple[RunningConfig, list[tuple[int, str]]]:
    """Apply the file content `data` to `base` (default: an empty configuration).

    Returns the resulting configuration and (line number, message) for every
    line that was rejected or skipped.
    """
    return _load(_decode(data), base)


def load_config_text(
    text: str, base: RunningConfig | None = None
) -> tuple[RunningConfig, list[tuple[int, str]]]:
    """`load_config_bytes` for a configuration already in a string."""
    return load_config_bytes(text.encode("utf-8", errors="surrogateescape"), base)


def read_config_file(
    path: str | os.PathLike[str],
) -> tuple[RunningConfig, list[tuple[int, str]]]:
    """Load the startup file at `path` (a missing file is an empty configuration)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_SIZE:
        raise ConfigFileError(
            f"{path}: larger than {MAX_FILE_SIZE} bytes, the limit of a startup file; not loaded"
        )
    return load_config_bytes(data)
