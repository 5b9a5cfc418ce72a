"""The sans-IO IKEv1 engine: demultiplexes datagrams by cookie pair and drives every SA.

It never reads the clock, opens a socket or touches the kernel (DESIGN.md 1):
the runtime feeds it `receive_datagram(..., now)`, sends what
`datagrams_to_send()` returns, acts on `next_event()`, and calls
`handle_timer(now)` at `get_timer()`.  One engine serves one transport virtual
router.  See docs/INTERNALS.md section 3 for the contract.

Errors a peer can provoke are handled at exactly one boundary per message
kind (`_phase1`, `_quick_mode`, `_informational`): decode, decrypt and
integrity failures are dropped and counted (`dropped_<reason>`), negotiation
errors end that negotiation and may send a Notify; nothing a peer sends ever
raises out of the engine or disturbs an established SA.  A peer's first
Main, Aggressive or Quick Mode message that meets our own attempt at the same
negotiation is settled by the rules of collisions.py before any state is
created for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import collisions, crypto, informational, phase1, quickmode
from .codec import DecodeError, Delete, Identification, Message, Notification
from .constants import HEADER_LENGTH, NAT_T_PORT, ExchangeType, Flags, NotifyType, ProtocolId
from .errors import MessageRejected, NegotiationError
from .events import (
    Event,
    InvalidCookieReceived,
    InvalidCookieSent,
    IpsecSaDeleted,
    IpsecSaEstablished,
    Phase1Deleted,
    Phase1Established,
    Phase1Failed,
)
from .lifecycle import Lifecycle, network_contains
from .phase1 import Credentials, identity_matches, identity_string
from .policy import Address, EnginePolicy, Identity, TunnelPolicy
from .proposals import initiator_exchange, initiator_suites
from .registry import ike_peer
from .sa import Flight, IkeSa, IpsecSa, P1State, QuickMode, Role

_LOG = logging.getLogger("ipsecgw.ike")
_ZERO_COOKIE = bytes(8)
_ENCRYPTED = int(Flags.ENCRYPTION)  # a plain int: no IntFlag arithmetic per datagram
_REPLY_CACHE_SIZE = 4096
_REPLY_CACHE_TTL = 120.0
#: A phase 1 responder waits this long for the peer's own Quick Mode before
#: starting one for its tunnels (avoids duplicate IPsec SAs).
PEER_QUICK_MODE_GRACE = 2.0

STATISTICS = (
    "messages_received", "messages_sent", "retransmits", "invalid_cookie_sent",
    "invalid_cookie_suppressed", "invalid_cookie_received", "dpd_sent", "dpd_ack_received",
    "peers_dead", "phase1_established", "phase1_failed", "phase2_established",
    "phase2_failed", "unknown_cookie", "dropped_malformed", "dropped_decrypt_failed",
    "dropped_hash_mismatch", "dropped_unexpected", "dropped_duplicate",
    "dropped_half_open_limit", "dropped_unprotected", "dropped_internal_error",
    "phase1_collisions", "phase2_collisions",
)


@dataclass(frozen=True)
class Datagram:
    """A bare ISAKMP message to send from `local` to `remote`."""

    data: bytes
    local: Address
    remote: Address


class Engine(Lifecycle):
    """IKEv1 for one transport virtual router; see the module docstring."""

    def __init__(self, policy: EnginePolicy, *,
                 rng: Callable[[int], bytes] = os.urandom) -> None:
        super().__init__(policy)
        self._rng = rng
        self._out: list[Datagram] = []
        self._events: deque[Event] = deque()
        self._stats: Counter[str] = Counter({key: 0 for key in STATISTICS})
        # SHA-256 of a request -> (our replies, until when, the request's cookie pair)
        self._replies: OrderedDict[bytes, tuple[tuple[Datagram, ...], float, bytes]] = \
            OrderedDict()
        self._reply_cookies: Counter[bytes] = Counter()  # cookie pairs in `_replies`
        self._limiter = informational.InvalidCookieLimiter(policy)
        self._credentials: Credentials | None = None
        self._credentials_loaded = False

    # --- public entry points --------------------------------------------------

    def receive_datagram(self, data: bytes, local: Address, remote: Address,
                         now: float) -> None:
        self._now = now
        self._stats["messages_received"] += 1
        try:
            self._receive(bytes(data), local, remote, now)
        except Exception:  # noqa: BLE001 - a bug must not let a peer kill the daemon
            self._stats["dropped_internal_error"] += 1
            _LOG.exception("internal error on a datagram from %s:%d", *remote)

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        self._now = now
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def statistics(self) -> dict[str, int]:
        return dict(self._stats)

    def update_policy(self, policy: EnginePolicy, now: float) -> None:
        self._now = now
        self._limiter = informational.InvalidCookieLimiter(policy)
        self._credentials_loaded = False
        self._apply_policy(policy, now)

    # --- services for phase1 / quickmode (their Context protocols) -------------

    def random(self, size: int) -> bytes:
        return self._rng(size)

    def preshared_key(self, ike: IkeSa, peer_id: Identification | None) -> bytes | None:
        keys = self.policy.preshared_keys
        tunnel = self._tunnel_of(ike)
        candidates: list[str] = []
        if tunnel is not None:
            candidates.append(tunnel.peer_address)
            if tunnel.peer_identity is not None:
                candidates.append(tunnel.peer_identity.value)
        if peer_id is not None:
            candidates.append(identity_string(peer_id))
        candidates += [ike.remote[0], "0.0.0.0"]
        for candidate in candidates:
            if candidate in keys:
                return keys[candidate]
        return None

    def local_identity(self, ike: IkeSa) -> Identification:
        tunnel = self._tunnel_of(ike)
        if tunnel is not None and tunnel.local_identity is not None:
            return _identification(tunnel.local_identity)
        credentials = self.credentials()
        if ike.suite is not None and ike.suite.authentication == "rsa-sig" and credentials:
            return Identification.der_asn1_dn(crypto.subject_der(credentials.certificate))
        return Identification.address(ike.local[0])

    def expected_peer_identity(self, ike: IkeSa) -> Identity | None:
        tunnel = self._tunnel_of(ike)
        return tunnel.peer_identity if tunnel is not None else None

    def credentials(self) -> Credentials | None:
        if not self._credentials_loaded:
            self._credentials_loaded = True
            self._credentials = _load_credentials(self.policy)
        return self._credentials

    def allocate_spi(self) -> bytes:
        while True:
            spi = self._rng(4)
            if int.from_bytes(spi, "big") >= 256 and spi not in self._spis:
                self._spis.add(spi)
                return spi

    def responder_tunnel(self, ike: IkeSa, initiator_network: str,
                         responder_network: str) -> TunnelPolicy | None:
        """The enabled tunnel a peer's Quick Mode is for: one configured for the
        peer's address (an index lookup), else one configured for its phase 1
        identity (a peer behind a NAT or with a dynamic address; only then are
        all tunnels scanned)."""
        def selects(tunnel: TunnelPolicy) -> bool:
            return tunnel.enabled and network_contains(tunnel.remote_network, initiator_network) \
                and network_contains(tunnel.local_network, responder_network)

        key = ike_peer(ike)
        for runtime in self._tunnels_selecting(key, initiator_network, responder_network) + \
                self._tunnels_of(key):
            if selects(runtime.policy):
                return runtime.policy
        if ike.peer_id is None:
            return None
        for runtime in self._tunnels.values():
            tunnel = runtime.policy
            if tunnel.peer_identity is not None and tunnel.local_address == ike.local[0] and \
                    tunnel.peer_address != ike.remote[0] and \
                    identity_matches(tunnel.peer_identity, ike.peer_id) and selects(tunnel):
                return tunnel
        return None

    # --- output helpers used by Lifecycle ----------------------------------------

    def _send(self, data: bytes, local: Address, remote: Address) -> None:
        self._stats["messages_sent"] += 1
        self._out.append(Datagram(data, local, remote))

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _count(self, key: str) -> None:
        self._stats[key] += 1

    def _flight(self, data: bytes, local: Address, remote: Address, now: float) -> Flight:
        self._send(data, local, remote)
        initial = self.policy.retransmit.initial
        return Flight(data, local, remote, now + self._retransmit_wait(initial), initial)

    def _remember_reply(self, request: bytes, replies: tuple[Datagram, ...], now: float) -> None:
        key = hashlib.sha256(request).digest()
        cookies = request[:16]
        if key not in self._replies:
            self._reply_cookies[cookies] += 1
        self._replies[key] = (replies, now + _REPLY_CACHE_TTL, cookies)
        self._replies.move_to_end(key)
        while len(self._replies) > _REPLY_CACHE_SIZE:
            _, (_, _, evicted) = self._replies.popitem(last=False)
            self._reply_cookies[evicted] -= 1
            if not self._reply_cookies[evicted]:
                del self._reply_cookies[evicted]

    # --- demultiplexing -------------------------------------------------------

    def _receive(self, data: bytes, local: Address, remote: Address, now: float) -> None:
        if self._unknown_pair(data):
            # A flood of made-up cookie pairs must cost little (SPEC 1.2; in the
            # cookie-flood benchmark the hash and the full decode dominated):
            # the header decides, except for a clear Informational, whose
            # payloads may be an INVALID-COOKIE to count.
            try:
                header = Message.decode_header(data)
            except DecodeError:
                self._count("dropped_malformed")
                return
            if header.exchange_type != ExchangeType.INFORMATIONAL or header.flags & _ENCRYPTED:
                self._unknown_cookie(header, data, local, remote, now)
                return
        cached = self._replies.get(hashlib.sha256(data).digest())
        if cached is not None and cached[1] > now:
            # RFC 2408 5 / DESIGN 6: a retransmitted request gets the same answer.
            for reply in cached[0]:
                self._count("retransmits")
                self._send(reply.data, local, remote)
            if not cached[0]:
                self._count("dropped_duplicate")
            return
        try:
            message = Message.decode(data)
        except DecodeError as exc:
            self._count("dropped_malformed")
            _LOG.debug("malformed datagram from %s:%d: %s", remote[0], remote[1], exc)
            return
        exchange = message.exchange_type
        if message.responder_cookie == _ZERO_COOKIE:
            self._receive_first(message, data, local, remote, now)
            return
        ike = self._sas.ike.get(message.initiator_cookie + message.responder_cookie)
        if ike is None:
            ike = self._adopt_responder_cookie(message, remote)
        if ike is None or ike.remote[0] != remote[0]:
            self._unknown_cookie(message, data, local, remote, now)
            return
        self._touch(ike)
        if exchange == ExchangeType.INFORMATIONAL:
            self._informational(ike, message, local, remote, now)
        elif exchange == ExchangeType.QUICK_MODE:
            self._quick_mode(ike, message, data, local, remote, now)
        elif exchange in (ExchangeType.IDENTITY_PROTECTION, ExchangeType.AGGRESSIVE):
            self._phase1(ike, message, data, local, remote, now)
        else:
            self._count("dropped_unexpected")

    def _unknown_pair(self, data: bytes) -> bool:
        """Whether `data` names a cookie pair with a non-zero responder cookie that
        no SA, no SA waiting for its responder cookie and no cached reply knows:
        nothing but the invalid-cookie path can come of it."""
        cookies = data[:16]
        return len(data) >= HEADER_LENGTH and cookies[8:] != _ZERO_COOKIE and \
            cookies not in self._sas.ike and cookies[:8] + _ZERO_COOKIE not in self._sas.ike \
            and cookies not in self._reply_cookies

    def _adopt_responder_cookie(self, message: Message, remote: Address) -> IkeSa | None:
        """MM2 / AM2: the responder's cookie completes our half of the pair."""
        ike = self._sas.ike.get(message.initiator_cookie + _ZERO_COOKIE)
        if ike is None or ike.state not in (P1State.MM_I1, P1State.AM_I1) or \
                ike.remote[0] != remote[0] or message.exchange_type not in (
                    ExchangeType.IDENTITY_PROTECTION, ExchangeType.AGGRESSIVE,
                    ExchangeType.INFORMATIONAL):
            return None
        self._sas.set_responder_cookie(ike, message.responder_cookie)
        return ike

    def _receive_first(self, message: Message, data: bytes, local: Address, remote: Address,
                       now: float) -> None:
        exchange = message.exchange_type
        if exchange == ExchangeType.INFORMATIONAL and not message.flags & Flags.ENCRYPTION:
            ike = self._sas.ike.get(message.initiator_cookie + _ZERO_COOKIE)
            self._unprotected_informational(ike, message, remote, now)
            return
        if exchange not in (ExchangeType.IDENTITY_PROTECTION, ExchangeType.AGGRESSIVE) or \
                message.flags & Flags.ENCRYPTION:
            self._count("dropped_unexpected")
            return
        if self._sas.responder_sa(message.initiator_cookie, remote[0]) is not None:
            self._count("dropped_duplicate")
            return
        if self._sas.half_open_count() >= self.policy.half_open_limit:
            self._count("dropped_half_open_limit")
            return
        exchange_name = "main" if exchange == ExchangeType.IDENTITY_PROTECTION else "aggressive"
        ike = IkeSa(message.initiator_cookie, self._new_cookie(), Role.RESPONDER, exchange_name,
                    P1State.MM_R1, local, remote, now)
        start = phase1.main_mode_r1 if exchange_name == "main" else phase1.aggressive_mode_r1
        try:
            step = start(self, ike, message)
        except (DecodeError, crypto.CryptoError, MessageRejected) as exc:
            self._count("dropped_malformed")
            ike.log.debug("first message unusable: %s", exc)
            return
        except NegotiationError as exc:
            ike.log.info("refusing %s mode from %s: %s", exchange_name, remote[0], exc.reason)
            self._count("phase1_failed")
            self._emit(Phase1Failed(None, remote, exc.reason))
            reply = informational.unprotected(ike, exc.notify_type, self._rng)
            self._send(reply, local, remote)
            self._remember_reply(data, (Datagram(reply, local, remote),), now)
            return
        if self._phase1_collision(ike, now):
            return
        ike.log.info("%s is initiating %s mode", remote[0], exchange_name)
        self._add_ike(ike)
        self._after_step(ike, step, data, now)

    def _new_cookie(self) -> bytes:
        while True:
            cookie = self._rng(8)
            if cookie != _ZERO_COOKIE:
                return cookie

    # --- phase 1 ----------------------------------------------------------------

    def _phase1(self, ike: IkeSa, message: Message, data: bytes, local: Address,
                remote: Address, now: float) -> None:
        handler = phase1.TRANSITIONS.get((ike.state, message.exchange_type))
        encrypted = bool(message.flags & Flags.ENCRYPTION)
        if handler is None or (ike.state in phase1.ENCRYPTED_STATES) != encrypted and \
                ike.exchange == "main":
            self._count("dropped_unexpected")
            return
        if ike.send_initial_contact and not collisions.may_claim_initial_contact(self._sas, ike):
            ike.send_initial_contact = False  # decided when sent (collisions.py)
        try:
            step = handler(self, ike, message)
        except (DecodeError, crypto.CryptoError, MessageRejected) as exc:
            if encrypted and ike.state in phase1.ENCRYPTED_STATES:
                # The first encrypted message does not decrypt to payloads:
                # almost always a pre-shared key that differs between the peers.
                self._phase1_failed(ike, f"cannot decrypt the peer's message ({exc}): "
                                    "pre-shared key mismatch?", now,
                                    NotifyType.AUTHENTICATION_FAILED)
            else:
                self._count("dropped_" + _drop_reason(exc))
            return
        except NegotiationError as exc:
            self._phase1_failed(ike, exc.reason, now, exc.notify_type)
            return
        if encrypted or step.established:
            self._peer_moved(ike, local, remote)
        self._after_step(ike, step, data, now)

    def _after_step(self, ike: IkeSa, step: phase1.Step, request: bytes, now: float) -> None:
        replies: tuple[Datagram, ...] = ()
        ike.flight = None
        if step.reply is not None:
            replies = (Datagram(step.reply, ike.local, ike.remote),)
            if step.expect_reply:
                ike.flight = self._flight(step.reply, ike.local, ike.remote, now)
            else:
                self._send(step.reply, ike.local, ike.remote)
        self._remember_reply(request, replies, now)
        if step.established:
            self._phase1_established(ike, now, step.initial_contact)

    def _peer_moved(self, ike: IkeSa, local: Address, remote: Address) -> None:
        """RFC 3947 4: follow the peer to the address it now uses (authenticated only).

        Once on port 4500 an SA never goes back to 500 (a late or retransmitted
        message on 500 must not undo the float).  Only ports move: the peer
        address is checked by the demultiplexer, and our own address is what the
        SA is indexed by (registry.py).
        """
        if (ike.local[1] == NAT_T_PORT and local[1] != NAT_T_PORT) or local[0] != ike.local[0]:
            return
        if (ike.local, ike.remote) != (local, remote):
            ike.log.debug("peer now at %s:%d (local %s:%d)", remote[0], remote[1], *local)
            ike.local, ike.remote = local, remote

    def _phase1_failed(self, ike: IkeSa, reason: str, now: float,
                       notify_type: int | None = None) -> None:
        if notify_type is not None:
            if ike.keys is not None:
                data = informational.protect(ike, [informational.ike_notify(ike, notify_type)],
                                             self._rng)
            else:
                data = informational.unprotected(ike, notify_type, self._rng)
            self._send(data, ike.local, ike.remote)
        ike.log.info("phase 1 with %s failed: %s", ike.remote[0], reason)
        self._count("phase1_failed")
        self._emit(Phase1Failed(ike.tunnel, ike.remote, reason))
        self._forget_ike(ike)
        self._negotiation_failed(ike.local[0], ike.remote[0], ike.tunnel, reason, now)

    def _phase1_established(self, ike: IkeSa, now: float, initial_contact: bool) -> None:
        suite = ike.require_suite()
        ike.established_at = now
        ike.expires_at = now + suite.lifetime_seconds
        ike.soft_at = now + suite.lifetime_seconds * self._soft_fraction(ike.role)
        ike.dh = None
        self._established(ike)
        self._touch_peer(ike_peer(ike))
        self._count("phase1_established")
        ike.log.info("phase 1 (%s mode, %s) established with %s:%d%s", ike.exchange,
                     ike.role.value, ike.remote[0], ike.remote[1],
                     ", NAT detected" if ike.nat_detected else "")
        self._emit(Phase1Established(
            ike.tunnel, ike.remote, ike.local, ike.cookies, ike.role.value, ike.exchange,
            ike.nat_detected, ike.remote[1],
            ike.nat.local_behind_nat if ike.nat is not None else False,
            ike.require_keys().encryption_key))
        self._heard_from(ike, now)
        if initial_contact:
            self._initial_contact(ike, now)
        if ike.exchange == "aggressive" and ike.send_initial_contact:
            # Aggressive Mode has no encrypted message to carry it (phase1.py).
            notify = informational.ike_notify(ike, NotifyType.INITIAL_CONTACT)
            self._send(informational.protect(ike, [notify], self._rng), ike.local, ike.remote)
        if ike.role is Role.RESPONDER:
            self._delay_tunnels_of(ike, now + PEER_QUICK_MODE_GRACE)
        self._service_peer(ike_peer(ike), now)
        self._retire_replaced(ike_peer(ike), now)

    def initiate_phase1(self, tunnel: TunnelPolicy, now: float, *, rekey: bool,
                        path: tuple[Address, Address] | None = None) -> IkeSa | None:
        """Start phase 1 for `tunnel`; `path` (local, remote) replaces the configured
        addresses and port 500 when renewing a phase 1 that a NAT may have moved to
        4500 (RFC 3947 4: a NAT mapping exists for that port only)."""
        rules = self.policy.rules_by_priority()
        exchange = initiator_exchange(rules, rekey=rekey)
        suites = initiator_suites(rules, exchange)
        local, remote = path or ((tunnel.local_address, 500), (tunnel.peer_address, 500))
        ike = IkeSa(self._new_cookie(), _ZERO_COOKIE, Role.INITIATOR, exchange,
                    P1State.MM_I1, local, remote, now, tunnel=tunnel.name, offered=tuple(suites))
        if not suites:
            self._negotiation_failed(local[0], remote[0], tunnel.name,
                                     f"no IKE rule allows {exchange} mode", now)
            return None
        ike.send_initial_contact = not self._knows_peer(local[0], remote[0])
        start = phase1.main_mode_start if exchange == "main" else phase1.aggressive_mode_start
        try:
            step = start(self, ike)
        except NegotiationError as exc:
            self._negotiation_failed(local[0], remote[0], tunnel.name, exc.reason, now)
            return None
        ike.log.info("initiating %s mode to %s for tunnel %s%s", exchange, remote[0],
                     tunnel.name, " (rekey)" if rekey else "")
        self._add_ike(ike)
        if step.reply is not None:
            ike.flight = self._flight(step.reply, ike.local, ike.remote, now)
        return ike

    # --- Quick Mode ---------------------------------------------------------------

    def _quick_mode(self, ike: IkeSa, message: Message, data: bytes, local: Address,
                    remote: Address, now: float) -> None:
        if not ike.established or not message.flags & Flags.ENCRYPTION:
            self._count("dropped_unexpected")
            return
        qm = ike.quick_modes.get(message.message_id)
        try:
            if qm is None:
                qm, reply = quickmode.responder_start(self, ike, message, now)
                self._heard_from(ike, now)  # HASH(1) verified, even if dropped below
                if self._quick_mode_collision(qm, now):
                    self._end_quick_mode(ike, qm)
                    return
                self._start_quick_mode(ike, qm)
                self._peer_moved(ike, local, remote)
                qm.flight = self._flight(reply, ike.local, ike.remote, now)
                self._remember_reply(data, (Datagram(reply, ike.local, ike.remote),), now)
                ike.log.debug("Quick Mode %08x from %s for tunnel %s", qm.message_id,
                              remote[0], qm.tunnel)
                return
            final, negotiated = quickmode.TRANSITIONS[qm.state](self, ike, qm, message)
        except (DecodeError, crypto.CryptoError, MessageRejected) as exc:
            self._count("dropped_" + _drop_reason(exc))
            return
        except NegotiationError as exc:
            # Raised only once the message's HASH has verified: a refusal of
            # ours still proves the peer alive (RFC 3706: any traffic from it does).
            self._heard_from(ike, now)
            self._quick_mode_failed(ike, qm, exc.reason, now, exc.notify_type)
            self._remember_reply(data, (), now)
            return
        self._peer_moved(ike, local, remote)
        self._heard_from(ike, now)
        replies: tuple[Datagram, ...] = ()
        if final is not None:
            replies = (Datagram(final, ike.local, ike.remote),)
            self._send(final, ike.local, ike.remote)
        self._remember_reply(data, replies, now)
        self._end_quick_mode(ike, qm)
        if negotiated is not None:
            self._install(ike, qm, negotiated, now)

    def initiate_quick_mode(self, ike: IkeSa, tunnel: TunnelPolicy, now: float,
                            rekey_of: bytes | None) -> None:
        try:
            qm, datagram = quickmode.start(self, ike, tunnel, now, rekey_of)
        except NegotiationError as exc:
            self._negotiation_failed(ike.local[0], ike.remote[0], tunnel.name, exc.reason, now)
            return
        self._start_quick_mode(ike, qm)
        qm.flight = self._flight(datagram, ike.local, ike.remote, now)
        ike.log.info("Quick Mode %08x for tunnel %s%s", qm.message_id, tunnel.name,
                     " (rekey)" if rekey_of else "")

    def _quick_mode_failed(self, ike: IkeSa, qm: QuickMode | None, reason: str, now: float,
                           notify_type: int | None) -> None:
        if notify_type is not None:
            notify = Notification(1, ProtocolId.ISAKMP, notify_type, ike.cookies)
            self._send(informational.protect(ike, [notify], self._rng), ike.local, ike.remote)
        if qm is not None:
            self._end_quick_mode(ike, qm)
        tunnel = qm.tunnel if qm is not None and qm.role is Role.INITIATOR else None
        ike.log.info("Quick Mode with %s failed: %s", ike.remote[0], reason)
        self._count("phase2_failed")
        if tunnel:
            self._negotiation_failed(ike.local[0], ike.remote[0], tunnel, reason, now)

    # --- Informational -------------------------------------------------------------

    def _unprotected_informational(self, ike: IkeSa | None, message: Message, remote: Address,
                                   now: float) -> None:
        notifies = message.find_all(Notification)
        if self._count_invalid_cookies(notifies, remote, protected=False):
            return
        errors = [n for n in notifies if n.notify_type < NotifyType.CONNECTED]
        if ike is not None and ike.keys is None and errors and ike.remote[0] == remote[0]:
            # RFC 2408 5: before keys exist the peer can only refuse in the clear.
            self._phase1_failed(ike, f"peer refused: {_notify_name(errors[0].notify_type)}", now)
            return
        self._count("dropped_unprotected")

    def _count_invalid_cookies(self, notifies: Iterable[Notification], remote: Address,
                               protected: bool) -> bool:
        """SPEC 1.2: an INVALID-COOKIE notify is logged and counted, nothing else."""
        seen = False
        for notify in notifies:
            if notify.notify_type == NotifyType.INVALID_COOKIE:
                seen = True
                self._count("invalid_cookie_received")
                _LOG.info("INVALID-COOKIE from %s (%s) for %s: ignored", remote[0],
                          "protected" if protected else "unprotected", notify.spi.hex())
                self._emit(InvalidCookieReceived(remote, protected))
        return seen

    def _informational(self, ike: IkeSa, message: Message, local: Address, remote: Address,
                       now: float) -> None:
        if not message.flags & Flags.ENCRYPTION:
            self._unprotected_informational(ike, message, remote, now)
            return
        if ike.keys is None:
            self._count("dropped_unexpected")
            return
        try:
            payloads = informational.open_protected(ike, message)
        except (DecodeError, crypto.CryptoError, MessageRejected) as exc:
            if ike.state is P1State.MM_I3:
                self._phase1_failed(ike, "peer could not authenticate us (its notify does not "
                                    "decrypt): pre-shared key mismatch?", now)
            else:
                self._count("dropped_" + _drop_reason(exc))
            return
        self._heard_from(ike, now)
        if ike.established:
            self._peer_moved(ike, local, remote)
        for payload in payloads:
            if isinstance(payload, Notification):
                self._notification(ike, payload, now)
            elif isinstance(payload, Delete):
                self._delete(ike, payload, now)
            if self._sas.ike.get(ike.cookies) is not ike:
                return

    def _notification(self, ike: IkeSa, notify: Notification, now: float) -> None:
        kind = notify.notify_type
        if self._count_invalid_cookies((notify,), ike.remote, protected=True):
            return
        if kind == NotifyType.R_U_THERE and ike.established and len(notify.data) == 4:
            ack = informational.dpd_notify(ike, True, int.from_bytes(notify.data, "big"))
            self._send(informational.protect(ike, [ack], self._rng), ike.local, ike.remote)
        elif kind == NotifyType.R_U_THERE_ACK and len(notify.data) == 4:
            self._dpd_ack(ike, int.from_bytes(notify.data, "big"), now)
        elif kind == NotifyType.INITIAL_CONTACT and ike.established:
            self._initial_contact(ike, now)
        elif kind < NotifyType.CONNECTED:
            reason = f"peer sent {_notify_name(kind)}"
            if not ike.established:
                self._phase1_failed(ike, reason, now)
                return
            ike.log.info("%s", reason)
            for qm in [q for q in ike.quick_modes.values() if q.role is Role.INITIATOR]:
                self._quick_mode_failed(ike, qm, reason, now, None)
        else:
            ike.log.debug("notify %s ignored", _notify_name(kind))

    def _delete(self, ike: IkeSa, delete: Delete, now: float) -> None:
        if delete.protocol_id == ProtocolId.ISAKMP:
            # RFC 2409 leaves the IPsec SAs in place.  A tunnel that initiates
            # gets a new phase 1 soon and renews its SA on it (lifecycle), but
            # first gives the peer, which may be clearing and re-initiating,
            # the time to start that phase 1 itself (no duplicate SAs).
            for cookies in delete.spis:
                victim = self._sas.ike.get(cookies)
                if victim is not None and victim.remote[0] == ike.remote[0]:
                    self._delete_ike(victim, "deleted by peer", now, notify_peer=False)
            self._delay_tunnels_of(ike, now + PEER_QUICK_MODE_GRACE)
            return
        for spi in delete.spis:
            child = self._sas.child_by_outbound(ike_peer(ike), spi)
            if child is not None:
                self._delete_child(child, "deleted by peer", now, notify_peer=False)

    # --- invalid cookies ------------------------------------------------------------

    def _unknown_cookie(self, message: Message, data: bytes, local: Address, remote: Address,
                        now: float) -> None:
        self._count("unknown_cookie")
        if message.exchange_type == ExchangeType.INFORMATIONAL:
            if not message.flags & Flags.ENCRYPTION and \
                    self._count_invalid_cookies(message.find_all(Notification), remote, False):
                return
            return  # never answer an Informational with a notify (RFC 2408 5)
        if not self.policy.tx_invalid_cookie:
            return
        if not self._limiter.allow(remote[0], len(data), informational.INVALID_COOKIE_REPLY_LENGTH,
                                   now):
            self._count("invalid_cookie_suppressed")
            return
        reply = informational.invalid_cookie_reply(message, self._rng)
        self._count("invalid_cookie_sent")
        _LOG.info("INVALID-COOKIE sent to %s for %s%s", remote[0],
                  message.initiator_cookie.hex(), message.responder_cookie.hex())
        self._send(reply, local, remote)
        self._emit(InvalidCookieSent(remote))

    # --- installing SAs -----------------------------------------------------------

    def _install(self, ike: IkeSa, qm: QuickMode, negotiated: quickmode.Negotiated,
                 now: float) -> None:
        runtime = self._tunnels.get(negotiated.tunnel)
        if runtime is None or not runtime.policy.enabled:
            notify_delete = informational.delete_ipsec(negotiated.suite.protocol,
                                                       (negotiated.inbound.spi,))
            self._send(informational.protect(ike, [notify_delete], self._rng), ike.local,
                       ike.remote)
            self._spis.discard(negotiated.inbound.spi)
            return
        rekey_of = negotiated.rekey_of
        # A new SA replaces the tunnel's SAs for the same traffic selectors (a
        # rekey, either side's); SAs for other selectors inside a wide remote
        # network (peers behind it, each with its own /32) stay.
        selectors = (negotiated.local_network, negotiated.remote_network)
        previous = [c for c in self._sas.children_of_tunnel(negotiated.tunnel)
                    if not c.superseded and ((c.local_network, c.remote_network) == selectors
                                             or c.inbound_spi == rekey_of)]
        if previous and rekey_of is None:
            rekey_of = previous[-1].inbound_spi
        for old in previous:
            old.superseded = True
            old.delete_at = min(old.expires_at, now + self.policy.rekey_grace)
            self._touch(old)
        lifetime = negotiated.lifetime_seconds
        fraction = self._soft_fraction(qm.role)
        child = IpsecSa(
            tunnel=negotiated.tunnel, ike_cookies=ike.cookies, role=qm.role,
            protocol=negotiated.suite.protocol, transform=negotiated.suite.name,
            inbound_spi=negotiated.inbound.spi, outbound_spi=negotiated.outbound.spi,
            local=ike.local, peer=ike.remote, encapsulation=negotiated.encapsulation,
            local_network=negotiated.local_network, remote_network=negotiated.remote_network,
            pfs_group=negotiated.pfs_group, lifetime_seconds=lifetime,
            lifetime_kilobytes=negotiated.lifetime_kilobytes, created_at=now,
            soft_at=now + lifetime * fraction, expires_at=now + lifetime,
            soft_kilobytes=int(negotiated.lifetime_kilobytes * fraction),
            inbound_at_start=runtime.inbound_bytes, outbound_at_start=runtime.outbound_bytes,
            peer_id=ike.peer_id)
        self._add_child(child)
        runtime.installed(now)
        self._count("phase2_established")
        ike.log.info("IPsec SA %s established for tunnel %s: in %s out %s, %s, %s", child.protocol,
                     child.tunnel, child.inbound_spi.hex(), child.outbound_spi.hex(),
                     child.transform, child.encapsulation)
        self._emit(IpsecSaEstablished(
            negotiated.tunnel, ike.remote, ike.local, negotiated.inbound, negotiated.outbound,
            "esp" if negotiated.suite.protocol == "esp" else "ah",
            "udp-tunnel" if negotiated.encapsulation == "udp-tunnel" else "tunnel",
            negotiated.local_network, negotiated.remote_network, lifetime,
            negotiated.lifetime_kilobytes, rekey_of, ike.cookies))
        self._retire_replaced(ike_peer(ike), now)

    # --- deletion ------------------------------------------------------------------

    def _delete_child(self, child: IpsecSa, reason: str, now: float, *,
                      notify_peer: bool) -> None:
        if notify_peer:
            ike = self._best_ike(child.local[0], child.peer[0])
            if ike is not None:
                delete = informational.delete_ipsec(child.protocol, (child.inbound_spi,))
                self._send(informational.protect(ike, [delete], self._rng), ike.local,
                           ike.remote)
        self._remove_child(child)
        _LOG.info("IPsec SA %s/%s of tunnel %s with %s deleted: %s", child.inbound_spi.hex(),
                  child.outbound_spi.hex(), child.tunnel, child.peer[0], reason)
        self._emit(IpsecSaDeleted(child.tunnel, child.inbound_spi, child.outbound_spi, reason))
        self._child_gone(child, now)

    def _delete_ike(self, ike: IkeSa, reason: str, now: float, *, notify_peer: bool) -> None:
        if notify_peer and ike.keys is not None:
            delete = informational.delete_ike(ike)
            self._send(informational.protect(ike, [delete], self._rng), ike.local, ike.remote)
        self._forget_ike(ike)
        if ike.established:
            ike.log.info("phase 1 with %s deleted: %s", ike.remote[0], reason)
            self._emit(Phase1Deleted(ike.remote, ike.cookies, reason))
        else:
            self._count("phase1_failed")
            self._emit(Phase1Failed(ike.tunnel, ike.remote, reason))
        self._ike_gone(ike, now)

    def _forget_ike(self, ike: IkeSa) -> None:
        self._remove_ike(ike)
        ike.flight = None


def _identification(identity: Identity) -> Identification:
    if identity.kind == "address":
        return Identification.address(identity.value)
    if identity.kind == "domain-name":
        return Identification.fqdn(identity.value)
    if identity.kind == "user-fqdn":
        return Identification.user_fqdn(identity.value)
    from cryptography import x509

    return Identification.der_asn1_dn(x509.Name.from_rfc4514_string(identity.value).public_bytes())


def _load_credentials(policy: EnginePolicy) -> Credentials | None:
    if policy.local_certificate is None or policy.local_private_key is None:
        return None
    try:
        certificate = policy.local_certificate
        if isinstance(certificate, bytes):
            certificate = crypto.load_certificate(certificate)
        key = policy.local_private_key
        if isinstance(key, bytes):
            key = crypto.load_private_key(key)
        cas = tuple(crypto.load_certificate(ca) if isinstance(ca, bytes) else ca
                    for ca in policy.ca_certificates)
    except crypto.CryptoError as exc:
        _LOG.error("cannot load the local certificate or key: %s", exc)
        return None
    return Credentials(certificate, key, cas)


def _drop_reason(exc: Exception) -> str:
    if isinstance(exc, MessageRejected):
        return exc.reason
    if isinstance(exc, crypto.CryptoError):
        return "decrypt_failed"
    return "malformed"


def _notify_name(notify_type: int) -> str:
    try:
        return NotifyType(notify_type).name.replace("_", "-")
    except ValueError:
        return f"notify {notify_type}"


__all__ = ["Datagram", "Engine"]
