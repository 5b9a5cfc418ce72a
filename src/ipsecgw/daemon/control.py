"""The server half of the control socket: one CLI session per connection.

The protocol (JSON lines, one request and one answer each) is described in
`ipsecgw.cli.protocol`, next to its client.  Here each connection gets its
own `cli.session.Session` (its own mode and virtual-router context),
starting in privileged exec mode, which calls the daemon through the
`cli.gateway.Gateway` protocol.  A request that is not understood gets
{"ok": false, "error": ...} and the connection stays open; a request longer
than the stream's limit (asyncio's default, 64 KiB) is answered with an
error and the connection closed; an exception inside a command is logged
and answered as an error, so nothing a user types can take the daemon down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from ..cli.gateway import Gateway
from ..cli.session import Session

log = logging.getLogger("ipsecgw.daemon")


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
        log.exception("command failed: %r", line)
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


async def start_control_server(gateway: Gateway, path: str) -> asyncio.AbstractServer:
    """Listen on the control socket `path` (mode 0600: it can change everything)."""
    if os.path.exists(path):
        os.unlink(path)
    old_umask = os.umask(0o177)
    try:
        return await asyncio.start_unix_server(
            lambda r, w: handle_connection(r, w, gateway), path=path
        )
    finally:
        os.umask(old_umask)
