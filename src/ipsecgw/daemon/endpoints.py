"""UDP 500 and 4500 sockets of the local endpoints, one set per virtual router.

Port 4500 carries both IKE and UDP-encapsulated ESP (RFC 3948 section 2):
an IKE message there starts with the four-byte non-ESP marker (zero, which
no ESP SPI may be), a lone 0xFF byte is a NAT-keepalive, and anything else
is ESP. The engine only ever sees bare ISAKMP, so the marker is added and
stripped here.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..isakmp.constants import IKE_PORT, NAT_T_PORT, NON_ESP_MARKER
from ..netns import in_vr
from ..status import LocalEndpointStatus

log = logging.getLogger("ipsecgw.daemon")

NATT_KEEPALIVE = b"\xff"
# Linux: bind to an address that is not (yet) on an interface, so a local
# endpoint can be configured before its address is.
IP_FREEBIND = 15

# SO_RCVBUFFORCE (Linux, root): SO_RCVBUF is silently capped at rmem_max,
# too small for bursts of UDP-encapsulated ESP.
SO_RCVBUFFORCE = 33
RECEIVE_BUFFER = 4 << 20

Address = tuple[str, int]
IkeHandler = Callable[[str, bytes, Address, Address], None]  # vr, data, local, remote
EspHandler = Callable[[str, bytes, Address, Address], None]
BatchHandler = Callable[[], None]  # after the datagrams of one wakeup


@dataclass
class _Counters:
    received: int = 0
    keepalives: int = 0
    runts: int = 0
    send_dropped: int = 0


def _large_receive_buffer(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


class Endpoint:
    """One bound UDP socket: (vr, address, port)."""

    def __init__(self, vr: str, local: Address, on_ike: IkeHandler, on_esp: EspHandler,
                 on_batch: BatchHandler | None = None) -> None:
        self.vr = vr
        self.local = local
        self.on_ike = on_ike
        self.on_esp = on_esp
        self.on_batch = on_batch
        self.sock: socket.socket | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.counters = _Counters()

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        with in_vr(self.vr):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            # No SO_REUSEADDR (nor SO_REUSEPORT): with it a second daemon
            # could bind the same IKE ports and both would answer peers.
            # UDP has no TIME_WAIT, so a restart does not need it either.
            _large_receive_buffer(sock)
            sock.bind(self.local)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.loop = loop
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        # Drain everything queued in one wakeup: under load this batches work,
        # and what is common to the batch (`on_batch`) runs once after it.
        try:
            self._read_batch()
        finally:
            if self.on_batch is not None:
                try:
                    self.on_batch()
                except Exception:  # as for a datagram: the socket must keep working
                    log.exception("after datagrams on %s", self.local)

    def _read_batch(self) -> None:
        sock = self.sock
        if sock is None:
            return
        for _ in range(256):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ICMP errors from a peer that is down surface here; DPD and
                # retransmission deal with the peer itself.
                log.debug("socket %s: %s", self.local, exc)
                continue
            try:
                self.received(data, (addr[0], addr[1]))
            except Exception:  # one bad datagram must never stop the socket
                log.exception("handling datagram from %s on %s", addr, self.local)

    def received(self, data: bytes, remote: Address) -> None:
        self.counters.received += 1
        if self.local[1] != NAT_T_PORT:
            self.on_ike(self.vr, data, self.local, remote)
            return
        if data == NATT_KEEPALIVE:
            self.counters.keepalives += 1
        elif data[:4] == NON_ESP_MARKER:
            self.on_ike(self.vr, data[4:], self.local, remote)
        elif len(data) < 8:
            self.counters.runts += 1
        else:
            self.on_esp(self.vr, data, self.local, remote)

    def send_ike(self, data: bytes, remote: Address) -> None:
        if self.local[1] == NAT_T_PORT:
            data = NON_ESP_MARKER + data
        self.send_raw(data, remote)

    def send_raw(self, data: bytes, remote: Address) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(data, remote)
        except (BlockingIOError, InterruptedError):
            self.counters.send_dropped += 1  # UDP: a full queue drops, as the wire would
        except OSError as exc:
            self.counters.send_dropped += 1
            log.debug("send %s -> %s: %s", self.local, remote, exc)

    def close(self) -> None:
        if self.sock is not None:
            if self.loop is not None:
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None


class Endpoints:
    """All sockets, keyed by (vr, address, port)."""

    def __init__(self, on_ike: IkeHandler, on_esp: EspHandler,
                 on_batch: BatchHandler | None = None) -> None:
        self.on_ike = on_ike
        self.on_esp = on_esp
        self.on_batch = on_batch
        self.sockets: dict[tuple[str, str, int], Endpoint] = {}
        # Wanted but not open: (vr, address, port) -> why.
        self.failed: dict[tuple[str, str, int], OSError] = {}
        self.wanted: set[tuple[str, str]] = set()

    def sync(self, loop: asyncio.AbstractEventLoop, wanted: set[tuple[str, str]]) -> None:
        """Open 500 and 4500 for every (vr, address) in ``wanted``; close the rest.

        One that cannot be opened is kept in `failed` and tried again at the
        next call (or `retry`); its error is logged when it first occurs or
        changes.
        """
        self.wanted = set(wanted)
        want_keys = {(vr, addr, port) for vr, addr in wanted for port in (IKE_PORT, NAT_T_PORT)}
        for key in list(self.sockets):
            if key not in want_keys:
                self.sockets.pop(key).close()
        for key in list(self.failed):
            if key not in want_keys:
                del self.failed[key]
        for key in sorted(want_keys - set(self.sockets)):
            vr, addr, port = key
            endpoint = Endpoint(vr, (addr, port), self.on_ike, self.on_esp, self.on_batch)
            try:
                endpoint.open(loop)
            except OSError as exc:
                before = self.failed.get(key)
                if before is None or str(before) != str(exc):
                    log.error("local endpoint %s:%d in VR %s: cannot open: %s",
                              addr, port, vr, describe(exc))
                self.failed[key] = exc
                continue
            if self.failed.pop(key, None) is not None:
                log.info("local endpoint %s:%d in VR %s: open now", addr, port, vr)
            log.info("listening on %s:%d (VR %s)", addr, port, vr)
            self.sockets[key] = endpoint

    def retry(self, loop: asyncio.AbstractEventLoop) -> None:
        """Try the failed endpoints again: a VR's namespace may exist now, or
        the process that held the address may be gone."""
        if self.failed:
            self.sync(loop, self.wanted)

    def status(self) -> list[LocalEndpointStatus]:
        """Every wanted (vr, address): up when both ports are open, else why not."""
        result = []
        for vr, address in sorted(self.wanted):
            errors = [describe(exc) for port in (IKE_PORT, NAT_T_PORT)
                      if (exc := self.failed.get((vr, address, port))) is not None]
            up = all((vr, address, port) in self.sockets for port in (IKE_PORT, NAT_T_PORT))
            result.append(LocalEndpointStatus(vr, address, up, errors[0] if errors else None))
        return result

    def in_use(self) -> list[tuple[str, str, int]]:
        """The wanted endpoints that another socket holds (EADDRINUSE)."""
        return sorted(key for key, exc in self.failed.items() if exc.errno == errno.EADDRINUSE)

    def get(self, vr: str, local: Address) -> Endpoint | None:
        return self.sockets.get((vr, local[0], local[1]))

    def close(self) -> None:
        for endpoint in self.sockets.values():
            endpoint.close()
        self.sockets.clear()
        self.failed.clear()
        self.wanted.clear()


def describe(exc: OSError) -> str:
    """An endpoint's error as an operator should read it."""
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (another ipsecgw or IKE daemon holds it)"
    return str(exc)
