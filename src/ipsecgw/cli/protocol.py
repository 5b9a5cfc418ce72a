"""The control socket: JSON lines between `ipsecgw cli` and the daemon.

One JSON object a line each way; each connection is one CLI session (its
own mode and virtual-router context), starting in privileged exec mode.

Requests and their answers (every answer carries the session's "prompt")::

    {"op": "prompt"}                 -> {"prompt"}
    {"op": "execute", "line": L}     -> {"ok", "output", "error", "caret", "closed", "prompt"}
    {"op": "complete", "line": L}    -> {"completions": [[word, help], ...], "prompt"}
    {"op": "help", "line": L}        -> {"help": [[word, help], ...], "error", "caret", "prompt"}

`caret` is the column of the word an error points at (null when none).
This module is the client; the daemon's server half is
`ipsecgw.daemon.control`, which answers a request it does not understand
with {"ok": false, "error": ...}.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any


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
