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
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from ..cli.gateway import Gateway
from ..cli.redact import redact
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


class ControlSocketBusy(Exception):
    """Another daemon, alive, listens on the control socket."""


class ControlSocket:
    """The listening control socket, claimed at start and released at exit.

    Mode 0600: it can change everything.  A socket file left by a daemon
    that died is replaced; one a live daemon answers on is not touched
    (ControlSocketBusy), so a second daemon started by mistake can neither
    take the first one's CLI away nor delete its socket when it exits.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._bind()
            self.sock.listen(16)
            self.sock.setblocking(False)
            st = os.stat(path)
        except BaseException:
            self.sock.close()
            raise
        self._identity = (st.st_dev, st.st_ino)

    def _bind(self) -> None:
        old_umask = os.umask(0o177)
        try:
            try:
                self.sock.bind(self.path)
                return
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
            if _answers(self.path):
                raise ControlSocketBusy(
                    f"control socket {self.path} is held by a running daemon; not starting "
                    "(stop that daemon first, or give this one its own --control)"
                )
            log.info("replacing the control socket %s of a daemon that is gone", self.path)
            os.unlink(self.path)
            self.sock.bind(self.path)
        finally:
            os.umask(old_umask)

    async def serve(self, gateway: Gateway) -> asyncio.AbstractServer:
        return await asyncio.start_unix_server(
            lambda r, w: handle_connection(r, w, gateway), sock=self.sock
        )

    def close(self) -> None:
        """Stop listening and remove the socket file, if it is still ours."""
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)


def _answers(path: str) -> bool:
    """Whether a process may be listening on the Unix socket `path`.

    Only "connection refused" (nobody listens: its daemon is gone) or a
    file that vanished meanwhile say no; anything else (a full backlog that
    times out, no permission) counts as alive: better to refuse to start
    than to take a live daemon's socket away.
    """
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True
    finally:
        probe.close()
    return True
