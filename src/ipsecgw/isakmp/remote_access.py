"""The client side of XAUTH and Mode Config: a tunnel that logs in to a tunnel profile.

For a tunnel with `TunnelPolicy.remote_access` (the load generator's
subscribers, tests): once our phase 1 is up, the gateway's XAUTH REQUEST is
answered with the configured user name and password and its SET
acknowledged; then (or at once, when no user name is configured) our Mode
Config REQUEST pulls the address, which the tunnel's Quick Mode then offers
as address/32 (vpnc's order: XAUTH, Mode Config, Quick Mode).  Like
subscribers.py this part only sends through the outbox and returns what the
engine must do: a `ClientOutcome`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from . import transaction
from .codec import Attribute, AttributePayload, Message
from .constants import CfgType, ConfigAttribute, XauthType
from .errors import MessageRejected
from .outbox import Outbox
from .policy import Address, RemoteAccess
from .sa import Flight, IkeSa

_LOG = logging.getLogger("ipsecgw.ike")

#: What we ask the gateway for.
REQUESTED = (ConfigAttribute.INTERNAL_IP4_ADDRESS, ConfigAttribute.INTERNAL_IP4_NETMASK,
             ConfigAttribute.INTERNAL_IP4_DNS)

FlightFactory = Callable[[bytes, Address, Address, float], Flight]
Retransmit = Callable[[Flight, float], bool]


@dataclass(eq=False)
class Login:
    """One phase 1's login: its Transaction chains and our Mode Config request."""

    ike: IkeSa
    credentials: RemoteAccess
    chains: transaction.Chains = field(default_factory=transaction.Chains)
    request_id: int = 0  # message ID of our Mode Config REQUEST
    flight: Flight | None = None
    address: str | None = None


@dataclass(frozen=True)
class ClientOutcome:
    replies: tuple[bytes, ...] = ()
    address: str | None = None  # Mode Config gave us this: negotiate for it
    failed: str | None = None  # delete the phase 1 (the tunnel retries after its back-off)


class RemoteAccessClients:
    def __init__(self, outbox: Outbox, rng: Callable[[int], bytes],
                 touch: Callable[[Login], None], flight: FlightFactory,
                 retransmit: Retransmit) -> None:
        self._outbox = outbox
        self._rng = rng
        self._touch = touch
        self._flight = flight
        self._retransmit = retransmit
        self._logins: dict[bytes, Login] = {}

    def of_ike(self, ike: IkeSa) -> Login | None:
        return self._logins.get(ike.cookies)

    def live(self, login: Login) -> bool:
        return self._logins.get(login.ike.cookies) is login

    def address(self, ike: IkeSa) -> str | None:
        login = self._logins.get(ike.cookies)
        return None if login is None else login.address

    def phase1_up(self, ike: IkeSa, credentials: RemoteAccess, now: float) -> None:
        login = Login(ike, credentials)
        self._logins[ike.cookies] = login
        if credentials.username is None:
            self._pull(login, now)  # no XAUTH expected

    def receive(self, login: Login, message: Message, now: float) -> ClientOutcome:
        """A Transaction message from the gateway; raises DecodeError /
        MessageRejected for one to drop."""
        payload = transaction.open_message(login.ike, login.chains, message)
        mid = message.message_id
        if payload.cfg_type == CfgType.REQUEST:
            return ClientOutcome(replies=(self._xauth_reply(login, mid, payload),))
        if payload.cfg_type == CfgType.SET:
            ack = AttributePayload(CfgType.ACK, payload.identifier, payload.attributes)
            reply = transaction.seal(login.ike, login.chains, mid, ack)
            login.chains.forget(mid)
            status = payload.find(ConfigAttribute.XAUTH_STATUS)
            if status is None or status.as_int() != 1:
                return ClientOutcome(replies=(reply,), failed="XAUTH refused by the gateway")
            self._pull(login, now)
            return ClientOutcome(replies=(reply,))
        if payload.cfg_type == CfgType.REPLY and mid == login.request_id:
            login.flight = None
            self._touch(login)
            attribute = payload.find(ConfigAttribute.INTERNAL_IP4_ADDRESS)
            if attribute is None or not isinstance(attribute.value, bytes) or \
                    len(attribute.value) != 4:
                return ClientOutcome(failed="Mode Config REPLY without an address")
            login.address = str(ipaddress.IPv4Address(attribute.value))
            login.ike.log.info("Mode Config: we are %s", login.address)
            return ClientOutcome(address=login.address)
        raise MessageRejected("unexpected", f"Transaction type {payload.cfg_type} for a client")

    def deadline(self, login: Login) -> float | None:
        if not self.live(login) or login.flight is None:
            return None
        return login.flight.next_at

    def fire(self, login: Login, now: float) -> ClientOutcome:
        if login.flight is None or now < login.flight.next_at or \
                self._retransmit(login.flight, now):
            return ClientOutcome()
        login.flight = None
        return ClientOutcome(failed="no Mode Config REPLY from the gateway")

    def gone(self, ike: IkeSa) -> None:
        login = self._logins.pop(ike.cookies, None)
        if login is not None:
            login.flight = None
            self._touch(login)

    def _xauth_reply(self, login: Login, mid: int, request: AttributePayload) -> bytes:
        credentials = login.credentials
        answer = [Attribute(ConfigAttribute.XAUTH_TYPE, XauthType.GENERIC, True)]
        for attribute in request.attributes:
            if attribute.type == ConfigAttribute.XAUTH_USER_NAME:
                answer.append(Attribute(attribute.type,
                                        (credentials.username or "").encode(), False))
            elif attribute.type == ConfigAttribute.XAUTH_USER_PASSWORD:
                answer.append(Attribute(attribute.type,
                                        (credentials.password or "").encode(), False))
        reply = AttributePayload(CfgType.REPLY, request.identifier, tuple(answer))
        datagram = transaction.seal(login.ike, login.chains, mid, reply)
        login.chains.forget(mid)  # a new REQUEST (a retry) may reuse nothing of it
        return datagram

    def _pull(self, login: Login, now: float) -> None:
        login.request_id = 0
        while login.request_id == 0:
            login.request_id = int.from_bytes(self._rng(4), "big")
        request = AttributePayload(CfgType.REQUEST, int.from_bytes(self._rng(2), "big"), tuple(
            Attribute(kind, b"", False) for kind in REQUESTED))
        datagram = transaction.seal(login.ike, login.chains, login.request_id, request)
        login.flight = self._flight(datagram, login.ike.local, login.ike.remote, now)
        self._touch(login)
