"""A RADIUS client over asyncio UDP: authentication (RFC 2865) and accounting (RFC 2866).

Packets are built and checked by pyrad (a maintained RADIUS library): the
User-Password hiding of RFC 2865 section 5.2, the Request and Response
Authenticators, and the Message-Authenticator of RFC 2869 section 5.14,
which every Access-Request carries and which is checked on every answer
that has one. **Choice**: an Access-Accept without one is still taken
(requiring it is the BlastRADIUS countermeasure, CVE-2024-3596, but
FreeRADIUS before 3.2.5, Debian 12's included, does not send it).
This module adds the transport: each request goes from its own UDP socket,
made in the server's VR (so identifiers never collide and a late answer
finds no listener), is
retransmitted after `timeout` seconds up to `retransmit` times, and then
goes to the next server in the configured order (RFC 2865 2.4: the client
may fail over to an alternate server). When no server answers, the caller
gets `RadiusTimeout`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from ..netns import DEFAULT_VR, NetnsError, in_vr

log = logging.getLogger("ipsecgw.aaa")

AUTH_PORT = 1812  # RFC 2865 3
ACCT_PORT = 1813  # RFC 2866 3

# The attributes this client sends or reads (RFC 2865 5, RFC 2866 5,
# RFC 2869 5.14 and 5.16), in the dictionary syntax pyrad reads.
_DICTIONARY = """\
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string encrypt=1
ATTRIBUTE NAS-IP-Address 4 ipaddr
ATTRIBUTE NAS-Port 5 integer
ATTRIBUTE Service-Type 6 integer
ATTRIBUTE Framed-IP-Address 8 ipaddr
ATTRIBUTE Framed-IP-Netmask 9 ipaddr
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE Class 25 octets
ATTRIBUTE Called-Station-Id 30 string
ATTRIBUTE Calling-Station-Id 31 string
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE Acct-Status-Type 40 integer
ATTRIBUTE Acct-Delay-Time 41 integer
ATTRIBUTE Acct-Input-Octets 42 integer
ATTRIBUTE Acct-Output-Octets 43 integer
ATTRIBUTE Acct-Session-Id 44 string
ATTRIBUTE Acct-Authentic 45 integer
ATTRIBUTE Acct-Session-Time 46 integer
ATTRIBUTE Acct-Input-Packets 47 integer
ATTRIBUTE Acct-Output-Packets 48 integer
ATTRIBUTE Acct-Terminate-Cause 49 integer
ATTRIBUTE Acct-Input-Gigawords 52 integer
ATTRIBUTE Acct-Output-Gigawords 53 integer
ATTRIBUTE Acct-Interim-Interval 85 integer
ATTRIBUTE NAS-Port-Type 61 integer
ATTRIBUTE Message-Authenticator 80 octets
"""

DICTIONARY = Dictionary(io.StringIO(_DICTIONARY))

# RFC 2865 5.6 Service-Type Framed; RFC 2865 5.41 NAS-Port-Type Virtual (5).
SERVICE_TYPE_FRAMED = 2
NAS_PORT_TYPE_VIRTUAL = 5
# RFC 2866 5.1 Acct-Status-Type.
ACCT_STATUS = {"start": 1, "stop": 2, "interim": 3}
# RFC 2866 5.6 Acct-Authentic: RADIUS (1) or Local (2).
ACCT_AUTHENTIC = {"radius": 1, "local": 2}
# RFC 2866 5.10 Acct-Terminate-Cause values the gateway reports.
TERMINATE_CAUSE = {
    "user-request": 1,  # the client deleted its SAs
    "lost-carrier": 2,  # DPD declared the peer dead
    "idle-timeout": 4,
    "session-timeout": 5,  # the phase 1 expired
    "admin-reset": 6,  # ipsec clear sa
    "nas-error": 9,
    "nas-reboot": 11,  # the daemon stops
}
_OCTETS = 1 << 32  # RFC 2869 5.1 / 5.2: octets above 2^32 go to the Gigawords attributes
#: RFC 2869 5.16: an Acct-Interim-Interval MUST NOT be below 60 seconds.
MIN_INTERIM_INTERVAL = 60


class RadiusTimeout(Exception):
    """No configured server answered (after every retransmission to each)."""


@dataclass(frozen=True)
class RadiusServer:
    """`radius authentication|accounting server ADDRESS` with its settings."""

    address: str
    secret: bytes
    port: int
    timeout: float = 3.0
    retransmit: int = 3  # retransmissions after the first try
    vr: str | None = None  # the VR its requests leave from; None: the client's

    def __repr__(self) -> str:  # the secret never reaches a log
        return f"RadiusServer({self.address}:{self.port})"


@dataclass(frozen=True)
class AuthReply:
    """What a server said about a user (RFC 2865 4.2 / 4.3)."""

    accepted: bool
    server: str
    framed_address: str | None = None  # Framed-IP-Address (RFC 2865 5.8)
    framed_netmask: str | None = None  # Framed-IP-Netmask (RFC 2865 5.9)
    message: str | None = None  # Reply-Message (RFC 2865 5.18)
    class_: bytes | None = None  # Class (RFC 2865 5.25): echoed in accounting
    #: Acct-Interim-Interval (RFC 2869 5.16), seconds, raised to MIN_INTERIM_INTERVAL
    interim_interval: int | None = None


@dataclass(frozen=True)
class AccountingRecord:
    """One Accounting-Request (RFC 2866 4.1)."""

    status: Literal["start", "stop", "interim"]
    session_id: str
    username: str
    framed_address: str | None = None
    calling_station: str | None = None  # the client's address:port
    input_octets: int = 0  # from the client (inbound at the gateway)
    output_octets: int = 0
    input_packets: int = 0
    output_packets: int = 0
    session_time: int = 0
    authentic: Literal["radius", "local"] = "radius"
    terminate_cause: str | None = None  # a key of TERMINATE_CAUSE, for "stop"
    class_: bytes | None = None


class _Answer(asyncio.DatagramProtocol):
    """One request's socket: the first datagram that fits is the answer."""

    def __init__(self, request: rp.Packet) -> None:
        self.request = request
        self.reply: asyncio.Future[rp.Packet] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.reply.done():
            return
        try:
            reply = rp.Packet(packet=data, dict=DICTIONARY, secret=self.request.secret)
        except Exception as exc:  # pyrad raises PacketError and struct/unicode errors
            log.warning("RADIUS: malformed answer from %s dropped: %s", addr[0], exc)
            return
        # Response Authenticator and Message-Authenticator (RFC 2865 3, RFC 2869 5.14):
        # a packet that fails them is silently discarded (RFC 2865 3, "Response Authenticator").
        if not self.request.VerifyReply(reply, data):
            log.warning("RADIUS: answer from %s failed verification (wrong secret?); dropped",
                        addr[0])
            return
        self.reply.set_result(reply)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: the server is not running. Keep waiting;
        # the timeout decides (a later retransmission may find it up).
        log.debug("RADIUS: %s", exc)


class RadiusClient:
    """Sends requests to servers in order, each from its VR (`RadiusServer.vr`, else the
    client's `vr`) and source address `bind`, if given."""

    def __init__(self, *, nas_identifier: str = "ipsecgw", bind: str | None = None,
                 vr: str = DEFAULT_VR) -> None:
        self.nas_identifier = nas_identifier
        self.bind = bind
        self.vr = vr  # the virtual router (network namespace) the requests leave from
        self.timeouts = 0  # requests no server answered (`show ipsec statistics`)

    async def authenticate(
        self, servers: tuple[RadiusServer, ...], username: str, password: str,
        *, calling_station: str | None = None,
    ) -> AuthReply:
        """Access-Request with User-Name and User-Password; RadiusTimeout if no one answers."""

        def build(server: RadiusServer) -> rp.Packet:
            request = rp.AuthPacket(code=rp.AccessRequest, secret=server.secret,
                                    dict=DICTIONARY, message_authenticator=True)
            request["User-Name"] = username
            # RFC 2865 5.2: hidden with MD5(secret + Request Authenticator).
            request["User-Password"] = request.PwCrypt(password)
            request["Service-Type"] = SERVICE_TYPE_FRAMED
            request["NAS-Port-Type"] = NAS_PORT_TYPE_VIRTUAL
            self._common(request, calling_station)
            return request

        server, reply = await self._exchange(servers, build)
        accepted = reply.code == rp.AccessAccept
        if reply.code not in (rp.AccessAccept, rp.AccessReject):
            # Access-Challenge (RFC 2865 4.4): XAUTH has no second round here.
            accepted = False
        return AuthReply(
            accepted=accepted,
            server=server.address,
            framed_address=_first(reply, "Framed-IP-Address"),
            framed_netmask=_first(reply, "Framed-IP-Netmask"),
            message=_first(reply, "Reply-Message"),
            class_=_first_bytes(reply, 25),
            interim_interval=_interim(reply),
        )

    async def account(self, servers: tuple[RadiusServer, ...], record: AccountingRecord) -> str:
        """Accounting-Request; the address of the server that acknowledged it."""

        def build(server: RadiusServer) -> rp.Packet:
            request = rp.AcctPacket(code=rp.AccountingRequest, secret=server.secret,
                                    dict=DICTIONARY)
            request["Acct-Status-Type"] = ACCT_STATUS[record.status]
            request["Acct-Session-Id"] = record.session_id
            request["User-Name"] = record.username
            request["Acct-Authentic"] = ACCT_AUTHENTIC[record.authentic]
            if record.framed_address is not None:
                request["Framed-IP-Address"] = record.framed_address
            if record.class_ is not None:
                request[25] = record.class_
            if record.status != "start":
                # RFC 2866 5.3-5.8; RFC 2869 5.1-5.2 for counts beyond 32 bits.
                request["Acct-Input-Octets"] = record.input_octets % _OCTETS
                request["Acct-Output-Octets"] = record.output_octets % _OCTETS
                request["Acct-Input-Gigawords"] = record.input_octets // _OCTETS
                request["Acct-Output-Gigawords"] = record.output_octets // _OCTETS
                request["Acct-Input-Packets"] = record.input_packets % _OCTETS
                request["Acct-Output-Packets"] = record.output_packets % _OCTETS
                request["Acct-Session-Time"] = record.session_time
            if record.status == "stop" and record.terminate_cause is not None:
                request["Acct-Terminate-Cause"] = TERMINATE_CAUSE[record.terminate_cause]
            self._common(request, record.calling_station)
            return request

        server, reply = await self._exchange(servers, build)
        if reply.code != rp.AccountingResponse:
            log.warning("RADIUS: server %s answered accounting with code %d",
                        server.address, reply.code)
        return server.address

    def _common(self, request: rp.Packet, calling_station: str | None) -> None:
        request["NAS-Identifier"] = self.nas_identifier
        if self.bind is not None:
            request["NAS-IP-Address"] = self.bind
        if calling_station is not None:
            request["Calling-Station-Id"] = calling_station

    async def _exchange(
        self, servers: tuple[RadiusServer, ...], build: Callable[[RadiusServer], rp.Packet],
    ) -> tuple[RadiusServer, rp.Packet]:
        for server in servers:
            try:
                reply = await self._ask(server, build(server))
            except NetnsError as exc:  # its VR has no namespace (yet): as if silent
                log.warning("RADIUS server %s:%d not asked: %s", server.address, server.port,
                            exc)
                continue
            if reply is not None:
                return server, reply
            log.warning("RADIUS server %s:%d did not answer (%d tries, %.1f s each)",
                        server.address, server.port, server.retransmit + 1, server.timeout)
        self.timeouts += 1
        raise RadiusTimeout(
            "no RADIUS server answered" if servers else "no RADIUS server configured")

    async def _ask(self, server: RadiusServer, request: rp.Packet) -> rp.Packet | None:
        loop = asyncio.get_running_loop()
        data = request.RequestPacket()
        family = socket.AF_INET6 if ":" in server.address else socket.AF_INET
        with in_vr(server.vr or self.vr):
            sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if self.bind is not None:
                sock.bind((self.bind, 0))
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Answer(request), sock=sock)
        except BaseException:
            sock.close()
            raise
        try:
            for _ in range(server.retransmit + 1):
                # RFC 2865 2.5: a retransmission is the same packet (same
                # Identifier and Authenticator).
                transport.sendto(data, (server.address, server.port))
                try:
                    return await asyncio.wait_for(asyncio.shield(protocol.reply),
                                                  server.timeout)
                except TimeoutError:
                    continue
            return None
        finally:
            transport.close()


def _first(reply: rp.Packet, name: str) -> str | None:
    values = reply.get(name)
    return str(values[0]) if values else None


def _interim(reply: rp.Packet) -> int | None:
    values = reply.get("Acct-Interim-Interval")
    return max(MIN_INTERIM_INTERVAL, int(values[0])) if values else None


def _first_bytes(reply: rp.Packet, code: int) -> bytes | None:
    values = reply.get(code)
    return bytes(values[0]) if values else None
