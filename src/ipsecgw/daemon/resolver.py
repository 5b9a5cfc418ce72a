"""`tunnel destination` names to IPv4 addresses, looked up off the event loop.

A DNS lookup can take seconds; on the event loop it would stall every IKE
socket, the data plane and the CLI.  `Resolver.address` therefore answers
from what it knows and never blocks: an address is itself, a name is looked
up in the background (`loop.getaddrinfo`, which runs in the loop's
executor) and is None until the first answer.  When an answer changes what
is known, `on_change` runs so the daemon re-applies its configuration; a
failed lookup keeps the last known address (a DNS hiccup must not take a
working tunnel down) and is retried after `RETRY_SECONDS`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("ipsecgw.daemon")

RETRY_SECONDS = 30.0


class Resolver:
    def __init__(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None]) -> None:
        self._loop = loop
        self._on_change = on_change
        self._known: dict[str, str] = {}
        self._lookups: dict[str, asyncio.Task[None]] = {}
        self._retry: asyncio.TimerHandle | None = None

    def address(self, destination: str) -> str | None:
        """The IPv4 address of `destination` (an address or a name), None if not known yet.

        Every call for a name starts a lookup unless one is running, so
        each configuration change refreshes the names it uses.
        """
        try:
            return str(ipaddress.IPv4Address(destination))
        except ValueError:
            pass
        if destination not in self._lookups:
            task = self._loop.create_task(self._lookup(destination))
            self._lookups[destination] = task
        return self._known.get(destination)

    async def _lookup(self, name: str) -> None:
        try:
            infos = await self._loop.getaddrinfo(name, None, family=socket.AF_INET,
                                                 type=socket.SOCK_DGRAM)
            address: str | None = str(infos[0][4][0])
        except OSError as exc:
            address = None
            log.warning("cannot resolve %s: %s%s", name, exc.strerror or exc,
                        "; keeping " + self._known[name] if name in self._known else "")
        finally:
            self._lookups.pop(name, None)
        if address is None:
            if self._retry is None:
                self._retry = self._loop.call_later(RETRY_SECONDS, self._retry_now)
        elif self._known.get(name) != address:
            log.info("%s is %s", name, address)
            self._known[name] = address
            self._on_change()

    def _retry_now(self) -> None:
        self._retry = None
        self._on_change()

    def close(self) -> None:
        for task in self._lookups.values():
            task.cancel()
        self._lookups.clear()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
