"""The control socket: JSON lines between `ipsecgw cli` and the daemon.

One JSON object a line each way; each connection is one CLI session (its
own mode and virtual-router context), starting in privileged exec mode.

Requests and their answers (every answer carries the session's "prompt")::

    {"op": "prompt"}                 -> {"prompt"}
    {"op": "execute", "line": L}     -> {"ok", "output", "error", "caret", "closed", "prompt"}
    {"op": "complete", "line": L}    -> {"completions": [[word, help], ...], "prompt"}
    {"op": "help", "line": L}        -> {"help": [[word, help], ...], "error", "caret", "prompt"}

`caret` is the column of the word an error points at (null when none). A
request that is not understood gets {"ok": false, "error": ...} and the
connection stays open; a request longer than the stream's limit (asyncio's
default, 64 KiB) is answered with an error and the connection closed; an
exception inside a command is logged and answered as an error, so nothing a
user types can take the daemon down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from .gateway import Gateway
from .redact import redact
from .session import Session

log = logging.getLogger("ipsecgw.cli")


def respond(session: Session, raw: bytes) -> dict[str, Any]:
    """The answer to one request line."""
    try:
        request = json.loads(raw)
        op, line = request["op"], request.get("line", "")
        if not isinstance(op, str) or not isinstance(line, str):
            raise TypeError("op and line must be strings")
    except (ValueError, KeyError, TypeError) as exc:
        return {"ok": False, "error": f"% Bad request: {exc}", "prompt": session.prompt}
    try:
        answer = _dispatch(session, op, line)
    except Exception:  # a bug in one command must not end the daemon or the session
        log.exception("command failed: %r", redact(line))
        answer = {"ok": False, "error": "% Internal error (see the daemon log)", "caret": None}
    answer["prompt"] = session.prompt
    return answer


def _dispatch(session: Session, op: str, line: str) -> dict[str, Any]:
    if op == "prompt":
        return {}
    if op == "execute":
        result = session.execute(line)
        return {
            "ok": result.ok,
            "output": result.output,
            "error": result.error,
            "caret": result.caret,
            "closed": result.closed,
        }
    if op == "complete":
        return {"completions": [list(item) for item in session.complete(line)]}
    if op == "help":
        help_ = session.help(line)
        return {
            "help": [list(item) for item in help_.items],
            "error": help_.error,
            "caret": help_.caret,
        }
    return {"ok": False, "error": f"% Unknown operation {op!r}"}


async def handle_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    gateway: Gateway,
    *,
    clock: Callable[[], float] = time.time,
) -> None:
    """Serve one control connection (give this to `asyncio.start_unix_server`)."""
    session = Session(gateway, clock=clock)
    try:
        while not session.closed:
            try:
                raw = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                writer.write(
                    json.dumps({"ok": False, "error": "% Request too long"}).encode() + b"\n"
                )
                break
            if not raw:
                break
            writer.write(json.dumps(respond(session, raw)).encode() + b"\n")
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


class ControlError(Exception):
    """The daemon cannot be reached, or hung up."""


class ControlClient:
    """The client end, blocking: used by the shell and batch mode."""

    def __init__(self, path: str, *, timeout: float | None = 60.0) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError as exc:
            self._sock.close()
            raise ControlError(f"cannot connect to {path}: {exc.strerror or exc}") from exc
        self._file = self._sock.makefile("rwb")

    def request(self, op: str, line: str = "") -> dict[str, Any]:
        try:
            self._file.write(json.dumps({"op": op, "line": line}).encode() + b"\n")
            self._file.flush()
            raw = self._file.readline()
        except OSError as exc:
            raise ControlError(f"lost the connection to {self.path}: {exc}") from exc
        if not raw:
            raise ControlError(f"the daemon closed the connection ({self.path})")
        answer: dict[str, Any] = json.loads(raw)
        return answer

    def prompt(self) -> str:
        return str(self.request("prompt")["prompt"])

    def execute(self, line: str) -> dict[str, Any]:
        return self.request("execute", line)

    def complete(self, line: str) -> list[tuple[str, str]]:
        return [(w, h) for w, h in self.request("complete", line).get("completions", [])]

    def help(self, line: str) -> dict[str, Any]:
        return self.request("help", line)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
