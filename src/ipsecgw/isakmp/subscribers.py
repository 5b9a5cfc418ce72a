"""Dynamic IPSec subscribers (issue 16): XAUTH, Mode Config and a tunnel per client.

A phase 1 accepted through a `TunnelProfile` (the engine picks the profile,
engine.py `_choose_profile`) belongs to a subscriber once it is up.  This
part owns the subscribers and drives, per subscriber, the Transaction
exchanges after phase 1 (the server side of draft-beaulieu-ike-xauth-02 and
draft-dukes-ike-mode-cfg-02):

    XAUTH           REQUEST -> REPLY           -> SubscriberLoginRequested
    (daemon)        Engine.subscriber_login_result(accepted, assignment)
                    -> dynamic tunnel "PROFILE:N", SubscriberUp
    XAUTH           SET (STATUS=1|0) -> ACK    (refused: the phase 1 goes after the ACK)
    Mode Config     client's REQUEST (pull)    -> REPLY (held until the login result)
    Mode Config     SET (push, after XAUTH)    -> client's ACK   (profile `mode_config`)

A profile with `xauth=False` asks the daemon as soon as phase 1 is up.
A REPLY that carries no usable credentials gets a new REQUEST, up to
`XAUTH_ATTEMPTS` in all; a client that has not answered within
`XAUTH_TIMEOUT` loses its phase 1.  A pushed SET that the client neither
ACKs nor makes moot by pulling (a REQUEST) within our retransmissions
loses it too: the client never took its address.  Like dpd.py, this part sends and emits
through the outbox and tells the engine, by an `Outcome`, what only the
engine may change (add the dynamic tunnel, delete the phase 1); it never
calls back into it.  The dynamic tunnel is responder-only: the client
negotiates (and rekeys) its IPsec SAs, for its address/32 to 0.0.0.0/0 or
any part of it (docs/DECISIONS.md "Subscriber selectors"); only the
subscriber's own phase 1 may use it (`owner`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from ipsecgw.status import SubscriberStatus

from . import mode_config, transaction, xauth
from .codec import AttributePayload, Message
from .constants import CfgType
from .errors import MessageRejected
from .events import (
    SubscriberAssignment,
    SubscriberDown,
    SubscriberLoginFailed,
    SubscriberLoginRequested,
    SubscriberUp,
)
from .outbox import Outbox
from .policy import Address, TunnelPolicy, TunnelProfile
from .sa import Flight, IkeSa

_LOG = logging.getLogger("ipsecgw.ike")

#: A client that has not answered XAUTH by then loses its phase 1 (issue 16).
XAUTH_TIMEOUT = 30.0
#: REPLYs without usable credentials tolerated, the first REQUEST included.
XAUTH_ATTEMPTS = 3

FlightFactory = Callable[[bytes, Address, Address, float], Flight]
Retransmit = Callable[[Flight, float], bool]


class SubscriberState(StrEnum):
    XAUTH = "xauth"  # REQUEST sent, waiting for the REPLY
    AUTHENTICATING = "authenticating"  # waiting for the daemon's login result
    XAUTH_STATUS = "xauth-status"  # SET STATUS=1 sent, waiting for the ACK
    MODE_CONFIG = "mode-config"  # Mode Config SET pushed, waiting for the ACK
    UP = "up"
    REFUSED = "refused"  # SET STATUS=0 sent; the phase 1 goes after the ACK


@dataclass
class HeldRequest:
    """A Mode Config REQUEST that came before the login result."""

    message_id: int
    request: AttributePayload
    datagram: bytes


@dataclass(eq=False)
class Subscriber:
    number: int
    profile: TunnelProfile
    ike: IkeSa
    identity: str
    created_at: float
    state: SubscriberState
    since: float
    username: str | None = None
    assignment: SubscriberAssignment | None = None
    tunnel: str | None = None
    chains: transaction.Chains = field(default_factory=transaction.Chains)
    flight: Flight | None = None
    exchange_id: int = 0  # message ID of our open REQUEST or SET
    attempts: int = 0
    held: HeldRequest | None = None
    pulled: bool = False  # a REQUEST of its own was answered: nothing to push
    refusal: str = ""

    @property
    def logging_in(self) -> bool:
        """Before the login result: its phase 1 still counts as half-open."""
        return self.state in (SubscriberState.XAUTH, SubscriberState.AUTHENTICATING)


@dataclass(frozen=True)
class Outcome:
    """What the engine does after a subscriber step.

    `replies`: datagrams answering the message just received (sent and kept
    in the reply cache); `cache` False when the message is held unanswered.
    `answered`: (request datagram, reply) pairs for requests held until now.
    `tunnel`: add this dynamic tunnel.  `delete_phase1`: delete the
    subscriber's phase 1 (with a Delete), for this reason.
    """

    replies: tuple[bytes, ...] = ()
    cache: bool = True
    answered: tuple[tuple[bytes, bytes], ...] = ()
    tunnel: TunnelPolicy | None = None
    delete_phase1: str | None = None


class Subscribers:
    def __init__(self, outbox: Outbox, rng: Callable[[int], bytes],
                 touch: Callable[[Subscriber], None], flight: FlightFactory,
                 retransmit: Retransmit) -> None:
        self._outbox = outbox
        self._rng = rng
        self._touch = touch
        self._flight = flight
        self._retransmit = retransmit
        self._by_cookies: dict[bytes, Subscriber] = {}
        self._by_number: dict[int, Subscriber] = {}
        self._by_tunnel: dict[str, Subscriber] = {}
        self._per_profile: Counter[str] = Counter()
        self._next_number = 1

    def __iter__(self) -> Iterator[Subscriber]:
        return iter(list(self._by_number.values()))

    def live(self, subscriber: Subscriber) -> bool:
        return self._by_number.get(subscriber.number) is subscriber

    def of_ike(self, ike: IkeSa) -> Subscriber | None:
        return self._by_cookies.get(ike.cookies)

    def get(self, number: int) -> Subscriber | None:
        return self._by_number.get(number)

    def owner(self, tunnel: str) -> Subscriber | None:
        """The subscriber a dynamic tunnel belongs to (None: a configured tunnel)."""
        return self._by_tunnel.get(tunnel)

    def full(self, profile: TunnelProfile) -> bool:
        """`max-interfaces` reached: no new phase 1 for the profile."""
        return bool(profile.max_interfaces) and \
            self._per_profile[profile.name] >= profile.max_interfaces

    # --- steps ---------------------------------------------------------------------

    def phase1_up(self, ike: IkeSa, identity: str, now: float) -> Outcome:
        profile = ike.profile
        assert profile is not None
        if self.full(profile):
            self._outbox.count("subscribers_refused_max")
            ike.log.info("tunnel profile %s: max-interfaces %d reached, refusing %s",
                         profile.name, profile.max_interfaces, ike.remote[0])
            return Outcome(delete_phase1="max-interfaces reached")
        subscriber = Subscriber(self._next_number, profile, ike, identity, now,
                                SubscriberState.AUTHENTICATING, now)
        self._next_number += 1
        self._by_cookies[ike.cookies] = subscriber
        self._by_number[subscriber.number] = subscriber
        self._per_profile[profile.name] += 1
        ike.log.info("subscriber %d of tunnel profile %s from %s:%d (identity %s)",
                     subscriber.number, profile.name, ike.remote[0], ike.remote[1], identity)
        if profile.xauth:
            subscriber.state = SubscriberState.XAUTH
            self._send(subscriber, xauth.request(self._identifier()), now)
        else:
            self._request_login(subscriber, None, None)
        self._touch(subscriber)
        return Outcome()

    def receive(self, subscriber: Subscriber, message: Message, datagram: bytes,
                now: float) -> Outcome:
        """A Transaction message from the subscriber; raises DecodeError /
        MessageRejected for one to drop."""
        if subscriber.held is not None and subscriber.held.message_id == message.message_id:
            return Outcome(cache=False)  # a copy of the request we hold: still held
        payload = transaction.open_message(subscriber.ike, subscriber.chains, message)
        message_id = message.message_id
        state = subscriber.state
        if message_id == subscriber.exchange_id and state is SubscriberState.XAUTH:
            return self._xauth_reply(subscriber, payload, now)
        if message_id == subscriber.exchange_id and payload.cfg_type == CfgType.ACK and \
                state in (SubscriberState.XAUTH_STATUS, SubscriberState.REFUSED):
            return self._xauth_ack(subscriber, now)
        if message_id == subscriber.exchange_id and payload.cfg_type == CfgType.ACK and \
                state is SubscriberState.MODE_CONFIG:
            subscriber.flight = None
            subscriber.ike.log.info("Mode Config: subscriber %d took %s (ACK)", subscriber.number,
                                    subscriber.assignment.address if subscriber.assignment else "-")
            self._set_state(subscriber, SubscriberState.UP, now)
            return Outcome()
        if payload.cfg_type == CfgType.REQUEST and message_id != subscriber.exchange_id:
            if subscriber.assignment is not None and state is not SubscriberState.REFUSED:
                if state is SubscriberState.MODE_CONFIG:
                    # A client that pulls although we push (vpnc does): the
                    # REPLY gives it all, our SET need not be repeated.
                    subscriber.flight = None
                    self._set_state(subscriber, SubscriberState.UP, now)
                return Outcome(replies=(self._config_reply(subscriber, message_id, payload),))
            subscriber.held = HeldRequest(message_id, payload, datagram)
            subscriber.ike.log.debug("Mode Config REQUEST held until the login result")
            return Outcome(cache=False)
        raise MessageRejected("unexpected", f"Transaction type {payload.cfg_type} in state "
                              f"{state}")

    def login_result(self, subscriber: Subscriber, now: float, *, accepted: bool,
                     assignment: SubscriberAssignment | None, reason: str) -> Outcome:
        ike, profile = subscriber.ike, subscriber.profile
        if subscriber.state is not SubscriberState.AUTHENTICATING:
            _LOG.warning("login result for subscriber %d in state %s ignored",
                         subscriber.number, subscriber.state)
            return Outcome()
        if accepted and assignment is None:
            accepted, reason = False, "no address to assign"
        if not accepted or assignment is None:
            reason = reason or "login refused"
            self._outbox.count("xauth_failed")
            ike.log.info("subscriber %d (%s) refused: %s", subscriber.number,
                         subscriber.username or subscriber.identity, reason)
            subscriber.refusal = reason
            if not profile.xauth:
                return Outcome(delete_phase1=reason)
            subscriber.state = SubscriberState.REFUSED
            self._send(subscriber, xauth.status(self._identifier(), False), now)
            return Outcome()
        if profile.xauth:
            self._outbox.count("xauth_succeeded")
        subscriber.assignment = assignment
        subscriber.tunnel = f"{profile.name}:{subscriber.number}"
        ike.tunnel = subscriber.tunnel  # what it serves (status, `TunnelTable.serving`)
        self._by_tunnel[subscriber.tunnel] = subscriber
        ike.log.info("subscriber %d (%s) accepted: address %s, tunnel %s", subscriber.number,
                     subscriber.username or subscriber.identity, assignment.address,
                     subscriber.tunnel)
        self._outbox.emit(SubscriberUp(subscriber.number, subscriber.tunnel, profile.name,
                                       ike.remote, ike.local, subscriber.identity,
                                       subscriber.username, assignment.address))
        answered: tuple[tuple[bytes, bytes], ...] = ()
        held, subscriber.held = subscriber.held, None
        if held is not None:  # answered after what `_send` sends below (Outcome.answered)
            answer = self._config_reply(subscriber, held.message_id, held.request)
            answered = ((held.datagram, answer),)
        if profile.xauth:
            subscriber.state = SubscriberState.XAUTH_STATUS
            self._send(subscriber, xauth.status(self._identifier(), True), now)
        else:
            self._logged_in(subscriber, now)
        return Outcome(answered=answered, tunnel=self._tunnel_policy(subscriber, assignment))

    def deadline(self, subscriber: Subscriber) -> float | None:
        if not self.live(subscriber):
            return None
        times = [subscriber.flight.next_at] if subscriber.flight is not None else []
        if subscriber.state is SubscriberState.XAUTH:
            times.append(subscriber.created_at + XAUTH_TIMEOUT)
        return min(times, default=None)

    def fire(self, subscriber: Subscriber, now: float) -> Outcome:
        if subscriber.state is SubscriberState.XAUTH and \
                now >= subscriber.created_at + XAUTH_TIMEOUT:
            return self._failed(subscriber, f"no XAUTH answer within {XAUTH_TIMEOUT:.0f} s")
        flight = subscriber.flight
        if flight is None or now < flight.next_at or self._retransmit(flight, now):
            return Outcome()
        subscriber.flight = None
        if subscriber.state is SubscriberState.REFUSED:
            return Outcome(delete_phase1=subscriber.refusal)
        if subscriber.state is SubscriberState.XAUTH_STATUS:
            # Our SET was heard or not; the client shows which by its Quick Mode.
            self._logged_in(subscriber, now)
            return Outcome()
        if subscriber.state is SubscriberState.MODE_CONFIG:
            self._outbox.count("mode_config_unanswered")
            reason = "no answer to the Mode Config SET (retransmission limit)"
            subscriber.refusal = reason
            subscriber.ike.log.info("subscriber %d: %s", subscriber.number, reason)
            return Outcome(delete_phase1=reason)
        return self._failed(subscriber, "no XAUTH answer (retransmission limit)")

    def gone(self, ike: IkeSa, reason: str) -> str | None:
        """The subscriber's phase 1 is gone: forget it, emit SubscriberDown or
        SubscriberLoginFailed; returns its dynamic tunnel (for the engine to remove)."""
        subscriber = self._by_cookies.pop(ike.cookies, None)
        if subscriber is None:
            return None
        del self._by_number[subscriber.number]
        self._per_profile[subscriber.profile.name] -= 1
        subscriber.flight = None
        self._touch(subscriber)
        profile = subscriber.profile.name
        if subscriber.tunnel is None:
            self._outbox.emit(SubscriberLoginFailed(subscriber.number, profile, ike.remote,
                                                    subscriber.username,
                                                    subscriber.refusal or reason))
            return None
        del self._by_tunnel[subscriber.tunnel]
        address = subscriber.assignment.address if subscriber.assignment else None
        ike.log.info("subscriber %d (tunnel %s) down: %s", subscriber.number, subscriber.tunnel,
                     subscriber.refusal or reason)
        self._outbox.emit(SubscriberDown(subscriber.number, subscriber.tunnel, profile, address,
                                         subscriber.refusal or reason))
        return subscriber.tunnel

    def status(self, now: float) -> list[SubscriberStatus]:
        return [SubscriberStatus(
            subscriber=s.number, profile=s.profile.name, tunnel=s.tunnel, peer=s.ike.remote,
            identity=s.identity, username=s.username,
            address=s.assignment.address if s.assignment else None, state=str(s.state),
            since=s.since, uptime=now - s.created_at) for s in self._by_number.values()]

    # --- pieces ----------------------------------------------------------------------

    def _xauth_reply(self, subscriber: Subscriber, payload: AttributePayload,
                     now: float) -> Outcome:
        subscriber.flight = None
        subscriber.attempts += 1
        try:
            username, password = xauth.credentials(payload)
        except MessageRejected as exc:
            subscriber.ike.log.info("subscriber %d: %s (attempt %d of %d)", subscriber.number,
                                    exc, subscriber.attempts, XAUTH_ATTEMPTS)
            if subscriber.attempts >= XAUTH_ATTEMPTS:
                return self._failed(subscriber, f"{exc} ({XAUTH_ATTEMPTS} attempts)")
            self._send(subscriber, xauth.request(self._identifier()), now)
            return Outcome()
        subscriber.username = username
        self._set_state(subscriber, SubscriberState.AUTHENTICATING, now)
        self._request_login(subscriber, username, password)
        return Outcome()

    def _xauth_ack(self, subscriber: Subscriber, now: float) -> Outcome:
        subscriber.flight = None
        self._touch(subscriber)
        if subscriber.state is SubscriberState.REFUSED:
            return Outcome(delete_phase1=subscriber.refusal)
        self._logged_in(subscriber, now)
        return Outcome()

    def _logged_in(self, subscriber: Subscriber, now: float) -> None:
        """XAUTH is over (or was not asked) and the login accepted: up, after
        pushing the configuration where the profile says the client waits
        for it."""
        if subscriber.profile.mode_config != "push" or subscriber.assignment is None or \
                subscriber.pulled:
            self._set_state(subscriber, SubscriberState.UP, now)
            return
        subscriber.state, subscriber.since = SubscriberState.MODE_CONFIG, now
        subscriber.ike.log.info("Mode Config: pushing %s to subscriber %d",
                                subscriber.assignment.address, subscriber.number)
        self._send(subscriber, mode_config.push(self._identifier(), subscriber.assignment,
                                                subscriber.profile), now)

    def _failed(self, subscriber: Subscriber, reason: str) -> Outcome:
        self._outbox.count("xauth_failed")
        subscriber.refusal = reason
        subscriber.flight = None
        subscriber.ike.log.info("subscriber %d: XAUTH failed: %s", subscriber.number, reason)
        return Outcome(delete_phase1=reason)

    def _request_login(self, subscriber: Subscriber, username: str | None,
                       password: str | None) -> None:
        ike = subscriber.ike
        self._outbox.emit(SubscriberLoginRequested(
            subscriber.number, subscriber.profile.name, ike.remote, ike.local,
            subscriber.identity, username, password))

    def _set_state(self, subscriber: Subscriber, state: SubscriberState, now: float) -> None:
        subscriber.state, subscriber.since = state, now
        self._touch(subscriber)

    def _identifier(self) -> int:
        return int.from_bytes(self._rng(2), "big")

    def _message_id(self) -> int:
        message_id = 0
        while message_id == 0:
            message_id = int.from_bytes(self._rng(4), "big")
        return message_id

    def _send(self, subscriber: Subscriber, payload: AttributePayload, now: float) -> None:
        """Start a Transaction exchange of ours (a REQUEST or a SET), retransmitted
        until answered."""
        subscriber.chains.forget(subscriber.exchange_id)
        subscriber.exchange_id = self._message_id()
        ike = subscriber.ike
        datagram = transaction.seal(ike, subscriber.chains, subscriber.exchange_id, payload)
        subscriber.flight = self._flight(datagram, ike.local, ike.remote, now)
        self._touch(subscriber)

    def _config_reply(self, subscriber: Subscriber, message_id: int,
                      request: AttributePayload) -> bytes:
        assert subscriber.assignment is not None
        answer = mode_config.reply(request, subscriber.assignment, subscriber.profile)
        subscriber.pulled = True
        subscriber.ike.log.info("Mode Config: subscriber %d gets %s", subscriber.number,
                                subscriber.assignment.address)
        datagram = transaction.seal(subscriber.ike, subscriber.chains, message_id, answer)
        subscriber.chains.forget(message_id)
        return datagram

    @staticmethod
    def _tunnel_policy(subscriber: Subscriber, assignment: SubscriberAssignment) -> TunnelPolicy:
        profile, ike = subscriber.profile, subscriber.ike
        assert subscriber.tunnel is not None
        return TunnelPolicy(
            name=subscriber.tunnel, local_address=ike.local[0], peer_address=ike.remote[0],
            transforms=profile.transforms, pfs_group=profile.pfs_group,
            lifetime_seconds=profile.lifetime_seconds,
            lifetime_kilobytes=profile.lifetime_kilobytes,
            local_identity=profile.local_identity, local_network="0.0.0.0/0",
            remote_network=f"{assignment.address}/32", initiate=False)
