"""The sans-IO IKEv1 engine: demultiplexes datagrams by cookie pair and drives every SA.

Why this module is long: `Engine` is the one object that changes the
engine's tables, so every input (a datagram, a timer, a configuration
change, a command, traffic counters) is followed here from its arrival to
its last consequence, in the order a reader meets them: the public entry
points, the services the exchange steps use, the demultiplexer, phase 1,
Quick Mode, Informational, installing and deleting SAs, then the
clock-driven side (tunnels, rekeys, timers).  Everything else is a part it
composes, each with one job and no way to call back into the engine:

- `Registry` (registry.py): the SAs and their indexes; `TunnelTable`
  (tunnel_table.py): the tunnels and theirs;
- `Outbox` (outbox.py): what goes out (datagrams, events, counters);
- `DeadPeerDetection` (dpd.py), `Admission` (admission.py), `ReplyCache`
  (replies.py), `Schedule` (deadlines.py), `InvalidCookieLimiter`
  (informational.py);
- the exchanges: main_mode.py, aggressive_mode.py (shared pieces in
  phase1.py), quick_mode.py, which see only `StepContext` (step_context.py:
  keys, identities, credentials, SPIs, the tunnel a Quick Mode is for);
  collisions.py decides simultaneous ones; failover.py which destination a
  tunnel with a backup negotiates with; status.py builds snapshots from the
  tables.

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

Keeping tunnels up (SPEC 3.3).  Scale: one engine holds thousands of
tunnels, so nothing per message or per timer scans them all.  Every deadline
of an SA, a tunnel, a peer's DPD and the admission queue sits in one
`Schedule`; whatever changes an object's deadline touches it (`_touch`).

- Tunnels: an enabled tunnel without a live IPsec SA negotiates one: Quick
  Mode on the newest phase 1 with its peer, or a new phase 1 first.  After a
  failure it waits 1, 2, 4 ... 30 s (`reinit_backoff_*`) less up to 20 %.  At
  most `initiator_half_open_limit` phase 1 attempts of ours are in flight
  (admission.py).  A responder-only tunnel (`TunnelPolicy.initiate` False)
  never starts a negotiation nor a rekey; it only answers the peer's (one
  exception below).
- Rekey: an IPsec SA at its soft lifetime (90 % minus up to 5 % jitter for
  the side that initiated it, 95 % minus up to 2.5 % for the responder, so
  the initiator usually goes first) gets a successor by a new Quick Mode; the
  old pair stays installed for `rekey_grace` seconds and is then deleted
  (with a Delete to the peer).  `rekey_grace` is fixed: the data plane
  reports traffic per tunnel, not per SA, so the engine cannot see when the
  peer has moved to the new SA.
- Phase 1 rekey, make before break (as strongSwan's IKEv1 reauthentication):
  a phase 1 at its soft lifetime is marked `rekeyed` and a new one is
  negotiated; the IPsec SAs negotiated under the old one are then renewed by
  Quick Mode on the new one, and only then is the old one deleted (with a
  Delete).  RFC 2409 keeps IPsec SAs independent of their ISAKMP SA, but
  strongSwan and others delete their CHILD_SAs with the ISAKMP SA: deleting
  it first would leave our SAs installed and the traffic black-holed.
- The same renewal follows whenever a phase 1 goes away while IPsec SAs
  negotiated under it remain (peer's Delete, `clear_sa(phase=1)`, expiry):
  the SAs stay installed (RFC 2409), a tunnel that initiates gets a new
  phase 1 at once (DPD and rekeys need one; after a peer's Delete it first
  waits `PEER_QUICK_MODE_GRACE` for the peer's own) and renews its SA on it;
  the old pair then goes at once, not after the rekey grace (the peer holds
  it no more).  Only a phase 1 that goes or that we replace triggers a renewal, never a
  mere second one (both peers would keep moving SAs to their own newest).
- Phase 1 renewal for responder-only tunnels: their peer rekeys, but a peer
  that proposed a longer phase 1 lifetime than ours does not rekey before
  ours ends, and our Delete at expiry makes a peer like strongSwan drop the
  IPsec SAs that we keep (RFC 2409 lets them outlive their phase 1).  Telling
  the peer does not help: strongSwan 5.9 (ikev1/tasks/main_mode.c,
  informational.c) only logs a shorter lifetime in our Main Mode reply and a
  RESPONDER-LIFETIME notify for the ISAKMP SA.  So a phase 1 that reaches
  its soft lifetime with IPsec SAs that outlive it, with a peer none of whose
  tunnels we initiate, is renewed by a phase 1 alone (no Quick Mode, no
  INITIAL-CONTACT) from the addresses and ports it uses, which through a NAT
  is the 4500 mapping that exists.  strongSwan, as Main Mode responder, takes
  that for a reauthentication and adopts its CHILD_SAs onto the new phase 1
  (ike_sa_manager.c `adopt_children`, processing/jobs/adopt_children_job.c);
  an ipsecgw peer renews its SA on it once the old phase 1 goes (above).  Ours
  stay as they are; the old phase 1 goes at its expiry at the latest.
- DPD (RFC 3706): dpd.py, with `DpdPolicy`.
- Dynamic subscribers (issue 16): a first message from an address no tunnel
  names may be for a tunnel profile (`_choose_profile`); its phase 1 then
  belongs to a subscriber of subscribers.py (XAUTH, Mode Config, the login
  result from the daemon), whose responder-only tunnel `PROFILE:N` lives and
  dies with that phase 1 (`_subscriber_gone`).  We never initiate towards a
  subscriber, not even a phase 1 renewal.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import replace

from ipsecgw.status import IkeSaStatus, SubscriberStatus, TunnelState, TunnelStatus

from . import aggressive_mode, collisions, failover, informational, main_mode, quick_mode
from .admission import Admission
from .codec import DecodeError, Delete, Identification, Message, Notification
from .constants import HEADER_LENGTH, NAT_T_PORT, ExchangeType, Flags, NotifyType, ProtocolId
from .deadlines import Schedule
from .dpd import DeadPeerDetection, DpdKey, SubscriberPeer, dpd_key
from .errors import InvalidIdInformation, MessageRejected, NegotiationError
from .events import (
    Event,
    InvalidCookieReceived,
    InvalidCookieSent,
    IpsecSaDeleted,
    IpsecSaEstablished,
    PeerDead,
    Phase1Deleted,
    Phase1Established,
    Phase1Failed,
    SubscriberAssignment,
)
from .identity import identity_string, payload_identity
from .outbox import STATISTICS, Datagram, Outbox
from .phase1 import Handler, Step
from .policy import Address, EnginePolicy, TunnelPolicy, TunnelProfile
from .proposals import initiator_exchange, initiator_suites
from .registry import PeerKey, Registry, child_peer, ike_peer
from .remote_access import ClientOutcome, Login, RemoteAccessClients
from .replies import ReplyCache
from .sa import Flight, IkeSa, IpsecSa, P1State, QuickMode, Role
from .status import ike_sa_status, tunnel_states, tunnel_status
from .step_context import StepContext
from .subscribers import Outcome, Subscriber, Subscribers
from .tunnel_table import TunnelRuntime, TunnelTable
from .turns import QuickModeTurns

_LOG = logging.getLogger("ipsecgw.ike")
_ZERO_COOKIE = bytes(8)
_ENCRYPTED = int(Flags.ENCRYPTION)  # a plain int: no IntFlag arithmetic per datagram
#: A phase 1 responder waits this long for the peer's own Quick Mode before
#: starting one for its tunnels (avoids duplicate IPsec SAs).
PEER_QUICK_MODE_GRACE = 2.0
#: The most by which each retransmission interval is shortened (`RetransmitPolicy`).
RETRANSMIT_JITTER = 0.1
#: The most by which a tunnel's wait after a failed negotiation is shortened.
BACKOFF_JITTER = 0.2
#: handle_timer() runs what fell due, then what that made due at once (a Quick
#: Mode after an SA's soft lifetime), at most this many rounds per call.
_TIMER_ROUNDS = 8

#: Phase 1: (state, exchange type) -> the step that consumes the next message.
#: Anything else is a message this SA does not expect and is dropped.
_PHASE1_STEPS: dict[tuple[P1State, int], Handler] = {
    **{(state, ExchangeType.IDENTITY_PROTECTION): step
       for state, step in main_mode.TRANSITIONS.items()},
    **{(state, ExchangeType.AGGRESSIVE): step
       for state, step in aggressive_mode.TRANSITIONS.items()},
}

#: The errors (errors.py) that drop a message and leave its exchange as it was;
#: every other `IsakmpError` is a `NegotiationError` that ends the exchange
#: and names the Notify for the peer.
_DROPPED = (DecodeError, MessageRejected)

#: What has a deadline: an SA, a tunnel (its next negotiation), a peer (DPD:
#: an address, or a subscriber's phase 1), the tunnels waiting for an
#: initiator slot, a subscriber's login, our own login as a client.
Timed = IkeSa | IpsecSa | TunnelRuntime | DpdKey | Admission | Subscriber | Login

__all__ = ["STATISTICS", "Datagram", "Engine"]


class Engine:
    """IKEv1 for one transport virtual router; see the module docstring."""

    def __init__(self, policy: EnginePolicy, *, rng: Callable[[int], bytes] = os.urandom,
                 wall_offset: float | None = None) -> None:
        self.policy = policy
        self._rng = rng
        self._now = 0.0
        self._outbox = Outbox()
        self._sas = Registry()
        self._tunnels = TunnelTable()
        self._spis: set[bytes] = set()
        self._schedule: Schedule[Timed] = Schedule(self._deadline)
        self._dpd = DeadPeerDetection(policy.dpd, self._sas, self._outbox, rng,
                                      self._schedule.touch)
        self._admission = Admission(policy.initiator_half_open_limit)
        self._turns = QuickModeTurns()
        self._replies = ReplyCache()
        self._limiter = informational.InvalidCookieLimiter(policy)
        self._subscribers = Subscribers(self._outbox, rng, self._schedule.touch, self._flight,
                                        self._retransmit)
        self._clients = RemoteAccessClients(self._outbox, rng, self._schedule.touch,
                                            self._flight, self._retransmit)
        self._steps = StepContext(policy, self._tunnels, self._spis, rng, lambda: self._now,
                                  self._subscribers.owner)
        self._steps.wall_offset = wall_offset
        for tunnel in policy.tunnels:
            self._add_tunnel(TunnelRuntime(tunnel))

    # --- public entry points --------------------------------------------------

    @property
    def wall_offset(self) -> float | None:
        """Wall-clock time (POSIX seconds) minus the runtime's monotonic `now`:
        certificate validity is wall time, and the engine reads no clock.  The
        runtime sets it (and may refresh it after a clock step); while it is
        None no certificate can be checked and RSA signature phase 1 fails."""
        return self._steps.wall_offset

    @wall_offset.setter
    def wall_offset(self, offset: float | None) -> None:
        self._steps.wall_offset = offset

    def receive_datagram(self, data: bytes, local: Address, remote: Address,
                         now: float) -> None:
        self._now = now
        self._count("messages_received")
        try:
            self._receive(bytes(data), local, remote, now)
        except Exception:  # noqa: BLE001 - a bug must not let a peer kill the daemon
            self._count("dropped_internal_error")
            _LOG.exception("internal error on a datagram from %s:%d", *remote)

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        self._now = now
        return self._outbox.take_datagrams()

    def next_event(self) -> Event | None:
        events = self._outbox.events
        return events.popleft() if events else None

    def statistics(self) -> dict[str, int]:
        return dict(self._outbox.stats)

    def get_timer(self) -> float | None:
        return self._schedule.earliest()

    def handle_timer(self, now: float) -> None:
        self._now = now
        for _ in range(_TIMER_ROUNDS):
            due = self._schedule.pop_due(now)
            if not due:
                return
            for item in due:
                self._fire(item, now)
                self._touch(item)

    def update_policy(self, policy: EnginePolicy, now: float) -> None:
        """Live configuration change: tunnels removed, disabled or changed lose their SAs."""
        self._now = now
        self._limiter = informational.InvalidCookieLimiter(policy)
        self._steps.set_policy(policy)
        self.policy = policy
        self._dpd.policy = policy.dpd
        self._admission.limit = policy.initiator_half_open_limit
        new = {tunnel.name: tunnel for tunnel in policy.tunnels}
        changed: list[TunnelRuntime] = []
        for runtime in list(self._tunnels):
            name = runtime.name
            if self._subscribers.owner(name) is not None:
                continue  # a subscriber's tunnel goes with the subscriber
            configured = new.get(name)
            replacement = None if configured is None else \
                failover.active_policy(configured, runtime)
            if replacement == runtime.policy:
                continue
            if replacement is not None and \
                    replace(replacement, initiate=runtime.policy.initiate) == runtime.policy:
                # Only `responder-only` changed: the SAs stay; a tunnel that now
                # initiates rekeys those already past their soft lifetime.
                runtime.policy = replacement
                current = self._current_child(name)
                if runtime.initiates and current is not None and current.soft_at == math.inf:
                    runtime.rekey_of = current.inbound_spi
                changed.append(runtime)
                continue
            self._clear_tunnel_children(name, "policy", now)
            self._remove_tunnel(runtime)
            if replacement is not None:
                runtime.policy = replacement
                runtime.on_backup = runtime.on_backup and replacement.backup_address is not None
                runtime.reset()
                self._add_tunnel(runtime)
                changed.append(runtime)
        for name, tunnel in new.items():
            if name not in self._tunnels:
                runtime = TunnelRuntime(tunnel)
                self._add_tunnel(runtime)
                changed.append(runtime)
        self._touch(self._admission)  # the limit may have changed
        for runtime in changed:
            self._touch(runtime)
            self._service_tunnel(runtime, now)

    def clear_sa(self, tunnels: Iterable[str] | None, phase: int | None, now: float) -> int:
        """SPEC 1.1 `ipsec clear sa`: Delete to the peer, remove locally, renegotiate.

        `tunnels` None means all; `phase` 1, 2 or None (both).  Returns how many
        SAs (phase 1 SAs and IPsec SA pairs) were deleted.

        `phase=1` deletes the tunnels' ISAKMP SAs (with a Delete) and keeps
        their IPsec SAs installed, as the guide says and RFC 2409 allows.  But
        strongSwan and other peers delete their IPsec SAs together with the
        ISAKMP SA, so ours would carry traffic into a void: each tunnel that
        initiates therefore negotiates a new phase 1 at once and, as soon as
        it is up, renews its IPsec SA by Quick Mode on it; the old pair goes
        as soon as the new one is installed (`_install`: no rekey grace for a
        pair whose phase 1 is gone).  A
        responder-only tunnel keeps its SA and leaves the renewal to the peer.
        """
        self._now = now
        names = self._tunnels.names() if tunnels is None else set(tunnels) & self._tunnels.names()
        count = 0
        if phase in (None, 2):
            for name in names:
                count += self._clear_tunnel_children(name, "cleared", now)
        if phase in (None, 1):
            if tunnels is None:
                victims = list(self._sas.ike.values())
            else:
                # A subscriber's tunnel clears its own phase 1, not those of the
                # other subscribers behind the same address.
                owners = {name: self._subscribers.owner(name) for name in names}
                peers = {self._tunnel(name).peer_key for name, owner in owners.items()
                         if owner is None}
                victims = [ike for key in peers for ike in self._sas.ike_of_peer(key)]
                victims += [owner.ike for owner in owners.values()
                            if owner is not None and owner.ike not in victims]
            for ike in victims:
                if ike.established:
                    self._delete_ike(ike, "cleared", now, notify_peer=True)
                    count += 1
                else:
                    self._forget_ike(ike, "cleared")
        for name in sorted(names & self._tunnels.names()):
            runtime = self._tunnel(name)
            runtime.reset()
            self._touch(runtime)
            self._service_tunnel(runtime, now)
        return count

    def traffic(self, tunnel: str, inbound_bytes: int, outbound_bytes: int, now: float) -> None:
        """Cumulative data-plane byte counters of a tunnel: DPD and kilobyte lifetimes."""
        self._now = now
        runtime = self._tunnels.get(tunnel)
        if runtime is None:
            return
        if inbound_bytes > runtime.inbound_bytes:
            runtime.refusals = 0  # the data plane carries the tunnel again
        self._dpd.traffic(self._liveness_key(runtime), inbound_bytes > runtime.inbound_bytes,
                          outbound_bytes > runtime.outbound_bytes, now)
        runtime.inbound_bytes, runtime.outbound_bytes = inbound_bytes, outbound_bytes
        for child in self._sas.children_of_tunnel(tunnel):
            if not child.lifetime_kilobytes:
                continue
            used = max(inbound_bytes - child.inbound_at_start,
                       outbound_bytes - child.outbound_at_start) // 1024
            if used >= child.lifetime_kilobytes:
                self._delete_child(child, "expired", now, notify_peer=True)
            elif used >= child.soft_kilobytes and not child.superseded:
                self._request_rekey(child)
        self._service_tunnel(runtime, now)

    def sa_install_failed(self, tunnel: str, inbound_spi: bytes, outbound_spi: bytes,
                          reason: str, now: float) -> None:
        """The data plane refused the SA pair of an `IpsecSaEstablished` (a TUN
        device it cannot create, an algorithm it lacks).  The engine does not
        count it as up: the pair is deleted, with a Delete so that the peer
        does not carry traffic into a void either, the tunnel shows the reason
        as its last failure, and it negotiates again after a back-off that
        grows while the data plane keeps refusing.  No `IpsecSaDeleted`
        follows: the data plane never had the pair."""
        self._now = now
        child = self._sas.children.get(inbound_spi)
        runtime = self._tunnels.get(tunnel)
        if child is None or child.tunnel != tunnel or child.outbound_spi != outbound_spi or \
                runtime is None:
            return
        reason = f"data plane refused the SA: {reason}"
        runtime.refusals += 1
        self._delete_child(child, reason, now, notify_peer=True, announce=False)
        runtime.failed(reason, now)
        # Until the back-off ends the tunnel also refuses the peer's Quick Mode
        # (`responder_tunnel`), so that the peer, answered INVALID-ID-INFORMATION,
        # backs off too instead of renegotiating at once after our Delete.
        runtime.refused_until = now + self._backoff(runtime.refusals)
        if runtime.initiates:
            runtime.failures = runtime.refusals
            runtime.next_attempt_at = runtime.refused_until
            self._touch(runtime)

    # status snapshots (status.py)

    def ike_sa_status(self, now: float) -> list[IkeSaStatus]:
        """Every ISAKMP SA, negotiating or established (`show ipsec ike-sa`)."""
        return ike_sa_status(self.policy.vr, self._sas, self._tunnels, now)

    def tunnel_status(self, now: float) -> list[TunnelStatus]:
        """Every configured tunnel with its SAs (`show ipsec tunnel`)."""
        return tunnel_status(self.policy.vr, self._sas, self._tunnels, now,
                             lambda runtime, at: self._dpd.status(self._liveness_key(runtime), at))

    def tunnel_states(self) -> dict[str, TunnelState]:
        """Each configured tunnel's state alone (`show ipsec tunnel summary`)."""
        return tunnel_states(self._sas, self._tunnels)

    def subscriber_status(self, now: float) -> list[SubscriberStatus]:
        """Every dynamic subscriber (`show subscribers`)."""
        return self._subscribers.status(now)

    def subscriber_login_result(self, subscriber: int, now: float, *, accepted: bool,
                                assignment: SubscriberAssignment | None = None,
                                reason: str = "") -> None:
        """The daemon's answer to `SubscriberLoginRequested` (subscribers.py).
        An unknown (already gone) subscriber is ignored."""
        self._now = now
        record = self._subscribers.get(subscriber)
        if record is None:
            return
        outcome = self._subscribers.login_result(record, now, accepted=accepted,
                                                 assignment=assignment, reason=reason)
        if not record.logging_in:
            self._sas.logged_in(record.ike)  # half-open no more (registry.py)
        self._apply_to_ike(record.ike, outcome, now)

    # --- output -----------------------------------------------------------------

    def _send(self, data: bytes, local: Address, remote: Address) -> None:
        self._outbox.send(data, local, remote)

    def _emit(self, event: Event) -> None:
        self._outbox.emit(event)

    def _count(self, key: str) -> None:
        self._outbox.count(key)

    def _flight(self, data: bytes, local: Address, remote: Address, now: float) -> Flight:
        self._send(data, local, remote)
        initial = self.policy.retransmit.initial
        return Flight(data, local, remote, now + self._retransmit_wait(initial), initial)

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
        cached = self._replies.get(data, now)
        if cached is not None:
            # RFC 2408 5 / DESIGN 6: a retransmitted request gets the same answer.
            for reply in cached:
                self._count("retransmits")
                self._send(reply.data, local, remote)
            if not cached:
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
        elif exchange == ExchangeType.TRANSACTION:
            self._transaction(ike, message, data, local, remote, now)
        else:
            self._count("dropped_unexpected")

    def _unknown_pair(self, data: bytes) -> bool:
        """Whether `data` names a cookie pair with a non-zero responder cookie that
        no SA, no SA waiting for its responder cookie and no cached reply knows:
        nothing but the invalid-cookie path can come of it."""
        cookies = data[:16]
        return len(data) >= HEADER_LENGTH and cookies[8:] != _ZERO_COOKIE and \
            cookies not in self._sas.ike and cookies[:8] + _ZERO_COOKIE not in self._sas.ike \
            and not self._replies.knows_cookies(cookies)

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
        if not self._may_accept(local[0], remote[0]):
            # No tunnel could ever accept a phase 1 from there: no state, no
            # answer (a spoofed flood costs nothing and reflects nothing).
            self._count("dropped_unknown_peer")
            return
        if self._sas.responder_sa(message.initiator_cookie, remote[0]) is not None:
            self._count("dropped_duplicate")
            return
        if self._sas.half_open_count() >= self.policy.half_open_limit or \
                self._sas.half_open_count(remote[0]) >= self.policy.half_open_per_source_limit:
            self._count("dropped_half_open_limit")
            return
        exchange_name = "main" if exchange == ExchangeType.IDENTITY_PROTECTION else "aggressive"
        ike = IkeSa(message.initiator_cookie, self._new_cookie(), Role.RESPONDER, exchange_name,
                    P1State.INITIAL, local, remote, now)
        start = main_mode.responder_start if exchange_name == "main" else \
            aggressive_mode.responder_start
        try:
            ike.profile = self._choose_profile(message, local[0], remote[0], exchange_name)
            if ike.profile is not None and self._subscribers.full(ike.profile):
                self._count("subscribers_refused_max")
                ike.log.info("tunnel profile %s: max-interfaces %d reached, no phase 1 for %s",
                             ike.profile.name, ike.profile.max_interfaces, remote[0])
                return
            step = start(self._steps, ike, message)
        except _DROPPED as exc:
            self._count("dropped_malformed")
            ike.log.debug("first message unusable: %s", exc)
            return
        except NegotiationError as exc:
            ike.log.info("refusing %s mode from %s: %s", exchange_name, remote[0], exc.reason)
            self._count("phase1_failed")
            self._emit(Phase1Failed(None, remote, exc.reason))
            reply = informational.unprotected(ike, exc.notify_type, self._rng)
            self._send(reply, local, remote)
            self._replies.remember(data, (Datagram(reply, local, remote),), now)
            return
        going_on, giving_way = collisions.settle_phase1(self._sas, ike, now, self._outbox)
        for ours in giving_way:
            self._forget_ike(ours)
        if going_on:
            return
        ike.log.info("%s is initiating %s mode", remote[0], exchange_name)
        self._add_ike(ike)
        self._after_step(ike, step, data, now)

    def _may_accept(self, local_ip: str, remote_ip: str) -> bool:
        """Whether an enabled tunnel could accept a phase 1 from `remote_ip` on
        `local_ip`: one configured for that peer address, or one that knows its
        peer by identity (its address is not known in advance), or a tunnel
        profile there (any address may be a subscriber)."""
        key = (local_ip, remote_ip)
        return self._tunnels.configured_for(key) or \
            local_ip in self._tunnels.by_identity_on() or \
            any(profile.local_address == local_ip for profile in self.policy.profiles)

    def _choose_profile(self, message: Message, local_ip: str, remote_ip: str,
                        exchange: str) -> TunnelProfile | None:
        """The tunnel profile a first message from an address no tunnel names
        comes for (None: a configured tunnel's, as before profiles).

        Aggressive Mode names the peer in its first message (vpnc: ID_KEY_ID,
        the group name): the first profile on `local_ip` whose peer identity
        fits it and that allows Aggressive Mode.  Main Mode must choose the
        pre-shared key before the peer says who it is, so only where exactly
        one profile there allows Main Mode.  Raises InvalidIdInformation when
        profiles exist there but none fits and no tunnel knows peers by identity.
        """
        if self._tunnels.configured_for((local_ip, remote_ip)):
            return None  # a configured tunnel's peer (subscribers' tunnels do not count)
        profiles = [p for p in self.policy.profiles if p.local_address == local_ip]
        if not profiles:
            return None
        if exchange == "aggressive":
            id_payload = message.find(Identification)
            peer = payload_identity(id_payload) if id_payload is not None else None
            for profile in profiles:
                if profile.aggressive_mode != "none" and (
                        profile.peer_identity is None or
                        (peer is not None and profile.peer_identity.matches(peer))):
                    return profile
            what = f"identity {peer}" if peer is not None else "no usable identity"
        else:
            candidates = [p for p in profiles if p.aggressive_mode != "required"]
            if len(candidates) == 1:
                return candidates[0]
            what = f"Main Mode ({len(candidates)} profiles allow it there)"
        if local_ip in self._tunnels.by_identity_on():
            return None
        self._count("subscribers_refused_identity")
        raise InvalidIdInformation(f"no tunnel profile on {local_ip} accepts {what}")

    def _new_cookie(self) -> bytes:
        while True:
            cookie = self._rng(8)
            if cookie != _ZERO_COOKIE:
                return cookie

    # --- phase 1 ----------------------------------------------------------------

    def initiate_phase1(self, tunnel: TunnelPolicy, now: float, *, rekey: bool,
                        path: tuple[Address, Address] | None = None) -> IkeSa | None:
        """Start phase 1 for `tunnel`; `path` (local, remote) replaces the configured
        addresses and port 500 when renewing a phase 1 that a NAT may have moved to
        4500 (RFC 3947 4: a NAT mapping exists for that port only)."""
        rules = self.policy.rules_by_priority()
        exchange = initiator_exchange(rules, rekey=rekey)
        suites = initiator_suites(rules, exchange)
        if tunnel.remote_access is not None and tunnel.remote_access.username is not None:
            # XAUTHInitPreShared & co. (draft-beaulieu-ike-xauth-02 7.2), as vpnc
            # proposes: a strongSwan XAUTH gateway refuses the plain methods.
            suites = [replace(suite, xauth=True) for suite in suites]
        local, remote = path or ((tunnel.local_address, 500), (tunnel.peer_address, 500))
        ike = IkeSa(self._new_cookie(), _ZERO_COOKIE, Role.INITIATOR, exchange,
                    P1State.INITIAL, local, remote, now, tunnel=tunnel.name,
                    offered=tuple(suites))
        if not suites:
            self._negotiation_failed(local[0], remote[0], tunnel.name,
                                     f"no IKE rule allows {exchange} mode", now)
            return None
        ike.send_initial_contact = not self._knows_peer((local[0], remote[0]))
        start = main_mode.initiator_start if exchange == "main" else \
            aggressive_mode.initiator_start
        try:
            step = start(self._steps, ike)
        except NegotiationError as exc:
            self._negotiation_failed(local[0], remote[0], tunnel.name, exc.reason, now)
            return None
        ike.log.info("initiating %s mode to %s for tunnel %s%s", exchange, remote[0],
                     tunnel.name, " (rekey)" if rekey else "")
        self._add_ike(ike)
        if step.reply is not None:
            ike.flight = self._flight(step.reply, ike.local, ike.remote, now)
        return ike

    def _phase1(self, ike: IkeSa, message: Message, data: bytes, local: Address,
                remote: Address, now: float) -> None:
        handler = _PHASE1_STEPS.get((ike.state, message.exchange_type))
        encrypted = bool(message.flags & Flags.ENCRYPTION)
        if handler is None or (ike.state in main_mode.ENCRYPTED_STATES) != encrypted and \
                ike.exchange == "main":
            self._count("dropped_unexpected")
            return
        if ike.send_initial_contact and not collisions.may_claim_initial_contact(self._sas, ike):
            ike.send_initial_contact = False  # decided when sent (collisions.py)
        try:
            step = handler(self._steps, ike, message)
        except _DROPPED as exc:
            if encrypted and ike.state in main_mode.ENCRYPTED_STATES:
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

    def _after_step(self, ike: IkeSa, step: Step, request: bytes, now: float) -> None:
        replies: tuple[Datagram, ...] = ()
        ike.flight = None
        if step.reply is not None:
            replies = (Datagram(step.reply, ike.local, ike.remote),)
            if step.expect_reply:
                ike.flight = self._flight(step.reply, ike.local, ike.remote, now)
            else:
                self._send(step.reply, ike.local, ike.remote)
        self._replies.remember(request, replies, now)
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
        self._forget_ike(ike, reason)
        self._negotiation_failed(ike.local[0], ike.remote[0], ike.tunnel, reason, now)
        if ike.role is Role.INITIATOR:
            self._fail_over((ike.local[0], ike.remote[0]), f"phase 1 failed: {reason}", now)

    def _phase1_established(self, ike: IkeSa, now: float, initial_contact: bool) -> None:
        suite = ike.require_suite()
        ike.established_at = now
        ike.expires_at = now + suite.lifetime_seconds
        ike.soft_at = now + suite.lifetime_seconds * self._soft_fraction(ike.role)
        ike.dh = None
        self._sas.established(ike)
        self._touch(self._admission)  # an initiator slot may have come free
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
        self._dpd.heard_from(ike, now)
        if initial_contact:
            self._initial_contact(ike, now)
        if ike.exchange == "aggressive" and ike.send_initial_contact:
            # Aggressive Mode has no encrypted message to carry it (phase1.py).
            notify = informational.ike_notify(ike, NotifyType.INITIAL_CONTACT)
            self._send(informational.protect(ike, [notify], self._rng), ike.local, ike.remote)
        if ike.role is Role.RESPONDER:
            self._delay_tunnels_of(ike, now + PEER_QUICK_MODE_GRACE)
        ours = self._tunnels.get(ike.tunnel) if ike.role is Role.INITIATOR else None
        if ours is not None and ours.policy.remote_access is not None:
            self._clients.phase1_up(ike, ours.policy.remote_access, now)
        if ike.profile is not None:
            identity = identity_string(ike.peer_id) if ike.peer_id is not None else ike.remote[0]
            self._apply_to_ike(ike, self._subscribers.phase1_up(ike, identity, now), now)
            return
        for runtime in self._tunnels.of_peer(ike_peer(ike)):
            self._service_tunnel(runtime, now)
        self._retire_replaced(ike_peer(ike), now)

    def _initial_contact(self, ike: IkeSa, now: float) -> None:
        """RFC 2407 4.6.3.3: the peer lost its state; drop what predates `ike`
        (collisions.py says which SAs that is).  Not for a subscriber: its
        identity is the group (vpnc: the group name), which every client of
        the profile shares, also behind one NAT address; vpnc sends
        INITIAL-CONTACT on every connect (docs/DECISIONS.md)."""
        if ike.profile is not None:
            ike.log.debug("INITIAL-CONTACT from subscriber %s ignored", ike.remote[0])
            return
        ike.log.info("INITIAL-CONTACT from %s: removing its older SAs", ike.remote[0])
        children, phase1s = collisions.initial_contact_victims(self._sas, ike)
        for child in children:
            self._delete_child(child, "initial contact", now, notify_peer=False)
        for other in phase1s:
            if self._sas.ike.get(other.cookies) is other:
                self._delete_ike(other, "initial contact", now, notify_peer=False)

    # --- Quick Mode ---------------------------------------------------------------

    def initiate_quick_mode(self, ike: IkeSa, tunnel: TunnelPolicy, now: float,
                            rekey_of: bytes | None) -> None:
        try:
            qm, datagram = quick_mode.start(self._steps, ike, tunnel, now, rekey_of)
        except NegotiationError as exc:
            self._negotiation_failed(ike.local[0], ike.remote[0], tunnel.name, exc.reason, now)
            return
        self._start_quick_mode(ike, qm)
        qm.flight = self._flight(datagram, ike.local, ike.remote, now)
        ike.log.info("Quick Mode %08x for tunnel %s%s", qm.message_id, tunnel.name,
                     " (rekey)" if rekey_of else "")

    def _quick_mode(self, ike: IkeSa, message: Message, data: bytes, local: Address,
                    remote: Address, now: float) -> None:
        if not ike.established or not message.flags & Flags.ENCRYPTION:
            self._count("dropped_unexpected")
            return
        qm = ike.quick_modes.get(message.message_id)
        try:
            if qm is None:
                qm, reply = quick_mode.responder_start(self._steps, ike, message, now)
                self._dpd.heard_from(ike, now)  # HASH(1) verified, even if dropped below
                going_on, giving_way = collisions.settle_quick_mode(self._sas, qm, self._outbox)
                for ours, ours_ike in giving_way:
                    self._end_quick_mode(ours_ike, ours)
                if going_on:
                    self._end_quick_mode(ike, qm)
                    return
                self._start_quick_mode(ike, qm)
                self._peer_moved(ike, local, remote)
                qm.flight = self._flight(reply, ike.local, ike.remote, now)
                self._replies.remember(data, (Datagram(reply, ike.local, ike.remote),), now)
                ike.log.debug("Quick Mode %08x from %s for tunnel %s", qm.message_id,
                              remote[0], qm.tunnel)
                return
            final, negotiated = quick_mode.TRANSITIONS[qm.state](self._steps, ike, qm, message)
        except _DROPPED as exc:
            self._count("dropped_" + _drop_reason(exc))
            return
        except NegotiationError as exc:
            # Raised only once the message's HASH has verified: a refusal of
            # ours still proves the peer alive (RFC 3706: any traffic from it does).
            self._dpd.heard_from(ike, now)
            self._quick_mode_failed(ike, qm, exc.reason, now, exc.notify_type)
            self._replies.remember(data, (), now)
            return
        self._peer_moved(ike, local, remote)
        self._dpd.heard_from(ike, now)
        replies: tuple[Datagram, ...] = ()
        if final is not None:
            replies = (Datagram(final, ike.local, ike.remote),)
            self._send(final, ike.local, ike.remote)
        self._replies.remember(data, replies, now)
        self._end_quick_mode(ike, qm)
        if negotiated is not None:
            self._install(ike, qm, negotiated, now)
        if qm.role is Role.INITIATOR and self._sas.ike.get(ike.cookies) is ike:
            self._next_turn(ike, now)  # at once, not at the next timer

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

    # --- Transaction (subscribers.py) ------------------------------------------------

    def _transaction(self, ike: IkeSa, message: Message, data: bytes, local: Address,
                     remote: Address, now: float) -> None:
        """XAUTH and Mode Config of a subscriber (draft-dukes-ike-mode-cfg-02),
        or of our own login as a remote-access client (remote_access.py)."""
        subscriber = self._subscribers.of_ike(ike)
        login = self._clients.of_ike(ike) if subscriber is None else None
        if not message.flags & Flags.ENCRYPTION or (subscriber is None and login is None):
            self._count("dropped_unexpected")
            return
        if subscriber is None:
            assert login is not None
            self._client_transaction(login, message, data, local, remote, now)
            return
        try:
            outcome = self._subscribers.receive(subscriber, message, data, now)
        except _DROPPED as exc:
            self._count("dropped_" + _drop_reason(exc))
            return
        self._dpd.heard_from(ike, now)
        self._peer_moved(ike, local, remote)
        for reply in outcome.replies:
            self._send(reply, ike.local, ike.remote)
        if outcome.cache:
            self._replies.remember(
                data, tuple(Datagram(reply, ike.local, ike.remote) for reply in outcome.replies),
                now)
        self._apply_to_ike(subscriber.ike, outcome, now)

    def _apply_to_ike(self, ike: IkeSa, outcome: Outcome, now: float) -> None:
        """Carry out what subscribers.py decided for the subscriber of `ike`."""
        for request, reply in outcome.answered:
            self._send(reply, ike.local, ike.remote)
            self._replies.remember(request, (Datagram(reply, ike.local, ike.remote),), now)
        if outcome.tunnel is not None:
            self._add_tunnel(TunnelRuntime(outcome.tunnel, subscriber=True))
        if outcome.delete_phase1 is not None and self._sas.ike.get(ike.cookies) is ike:
            self._delete_ike(ike, outcome.delete_phase1, now, notify_peer=True)

    def _client_transaction(self, login: Login, message: Message, data: bytes, local: Address,
                            remote: Address, now: float) -> None:
        ike = login.ike
        try:
            outcome = self._clients.receive(login, message, now)
        except _DROPPED as exc:
            self._count("dropped_" + _drop_reason(exc))
            return
        self._dpd.heard_from(ike, now)
        self._peer_moved(ike, local, remote)
        for reply in outcome.replies:
            self._send(reply, ike.local, ike.remote)
        self._replies.remember(
            data, tuple(Datagram(reply, ike.local, ike.remote) for reply in outcome.replies), now)
        self._client_outcome(login, outcome, now)

    def _client_outcome(self, login: Login, outcome: ClientOutcome, now: float) -> None:
        ike = login.ike
        if outcome.failed is not None and self._sas.ike.get(ike.cookies) is ike:
            ike.log.info("login to %s failed: %s", ike.remote[0], outcome.failed)
            self._delete_ike(ike, outcome.failed, now, notify_peer=True)
            self._negotiation_failed(ike.local[0], ike.remote[0], ike.tunnel, outcome.failed, now)
        elif outcome.address is not None:
            runtime = self._tunnels.get(ike.tunnel)
            if runtime is not None:
                self._touch(runtime)
                self._service_tunnel(runtime, now)

    def _client_policy(self, runtime: TunnelRuntime, ike: IkeSa) -> TunnelPolicy:
        """A remote-access tunnel negotiates for the address its login gave it."""
        address = self._clients.address(ike)
        if runtime.policy.remote_access is None or address is None:
            return runtime.policy
        return replace(runtime.policy, local_network=f"{address}/32")

    def _subscriber_gone(self, ike: IkeSa, reason: str, now: float) -> None:
        """The subscriber's phase 1 is gone, and with it the subscriber: its
        dynamic tunnel and IPsec SAs go too (contract: SubscriberDown)."""
        tunnel = self._subscribers.gone(ike, reason)
        runtime = self._tunnels.get(tunnel)
        if runtime is None:
            return
        self._clear_tunnel_children(runtime.name, reason, now, notify_peer=False)
        self._remove_tunnel(runtime)

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
        except _DROPPED as exc:
            if ike.state is P1State.MM_I3:
                self._phase1_failed(ike, "peer could not authenticate us (its notify does not "
                                    "decrypt): pre-shared key mismatch?", now)
            else:
                self._count("dropped_" + _drop_reason(exc))
            return
        self._dpd.heard_from(ike, now)
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
            self._dpd.ack(ike, int.from_bytes(notify.data, "big"), now)
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
            # gets a new phase 1 soon and renews its SA on it (module
            # docstring), but first gives the peer, which may be clearing and
            # re-initiating, the time to start that phase 1 itself (no
            # duplicate SAs).
            for cookies in delete.spis:
                victim = self._sas.ike.get(cookies)
                if victim is not None and victim.remote[0] == ike.remote[0] and \
                        not self._foreign(ike, victim):
                    self._delete_ike(victim, "deleted by peer", now, notify_peer=False)
            self._delay_tunnels_of(ike, now + PEER_QUICK_MODE_GRACE)
            return
        for spi in delete.spis:
            child = self._sas.child_by_outbound(ike_peer(ike), spi)
            owner = None if child is None else self._subscribers.owner(child.tunnel)
            if child is not None and not (owner is not None and self._foreign(ike, owner.ike)):
                self._delete_child(child, "deleted by peer", now, notify_peer=False)

    def _foreign(self, ike: IkeSa, other: IkeSa) -> bool:
        """Whether `ike` speaks for a different subscriber than `other`: clients
        behind one NAT address share it but not their port (the NAT's mapping),
        and may only delete their own SAs (a client's new phase 1 may delete its
        old one)."""
        return ike.remote != other.remote and \
            (ike.profile is not None or other.profile is not None)

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

    def _install(self, ike: IkeSa, qm: QuickMode, negotiated: quick_mode.Negotiated,
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
        # A replaced pair normally stays `rekey_grace` for packets in flight.
        # One whose phase 1 is gone (cleared, deleted, expired) goes at once:
        # strongSwan and others dropped it with that phase 1, so every packet
        # still sent on it is lost (issue 13.8); a peer that kept it (RFC 2409)
        # is told by our Delete and moves to the new pair as well.
        orphans = [old for old in previous if old.ike_cookies not in self._sas.ike]
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
        for old in orphans:
            self._delete_child(old, "phase 1 gone", now, notify_peer=True)
        self._retire_replaced(ike_peer(ike), now)

    # --- deletion ------------------------------------------------------------------

    def _delete_child(self, child: IpsecSa, reason: str, now: float, *,
                      notify_peer: bool, announce: bool = True) -> None:
        if notify_peer:
            # A subscriber's SA is deleted under its own phase 1: the newest one
            # with its address may be another client's behind the same NAT.
            owner = self._subscribers.owner(child.tunnel)
            ike = owner.ike if owner is not None else self._sas.best_ike(child_peer(child))
            if ike is not None:
                delete = informational.delete_ipsec(child.protocol, (child.inbound_spi,))
                self._send(informational.protect(ike, [delete], self._rng), ike.local,
                           ike.remote)
        self._remove_child(child)
        _LOG.info("IPsec SA %s/%s of tunnel %s with %s deleted: %s", child.inbound_spi.hex(),
                  child.outbound_spi.hex(), child.tunnel, child.peer[0], reason)
        if announce:
            self._emit(IpsecSaDeleted(child.tunnel, child.inbound_spi, child.outbound_spi,
                                      reason))
        self._retire_replaced(child_peer(child), now)
        runtime = self._tunnels.get(child.tunnel)
        if runtime is None:
            return
        if runtime.rekey_of == child.inbound_spi:
            runtime.rekey_of = None
        if self._current_child(child.tunnel) is None:
            runtime.up_since = None
            self._hurry_quick_modes(child.tunnel, now)
        self._dpd.forget_if_unused(child_peer(child))

    def _delete_ike(self, ike: IkeSa, reason: str, now: float, *, notify_peer: bool) -> None:
        if notify_peer and ike.keys is not None:
            delete = informational.delete_ike(ike)
            self._send(informational.protect(ike, [delete], self._rng), ike.local, ike.remote)
        self._forget_ike(ike, reason)
        if ike.established:
            ike.log.info("phase 1 with %s deleted: %s", ike.remote[0], reason)
            self._emit(Phase1Deleted(ike.remote, ike.cookies, reason))
        else:
            self._count("phase1_failed")
            self._emit(Phase1Failed(ike.tunnel, ike.remote, reason))
        self._dpd.forget_if_unused(dpd_key(ike))

    def _forget_ike(self, ike: IkeSa, reason: str = "deleted") -> None:
        for qm in list(ike.quick_modes.values()):
            self._end_quick_mode(ike, qm)
        self._sas.remove_ike(ike)
        for tunnel in self._turns.release(ike.cookies):
            self._touch_tunnel(tunnel)
        if ike.profile is not None:
            self._subscriber_gone(ike, reason, self._now)
        self._clients.gone(ike)
        self._touch(ike)
        self._touch_peer(ike_peer(ike))
        self._touch(dpd_key(ike))
        self._touch(self._admission)
        for child in self._sas.children_of_ike(ike.cookies):
            self._touch_tunnel(child.tunnel)  # it may have to move (module docstring)
        ike.flight = None

    def _clear_tunnel_children(self, name: str, reason: str, now: float, *,
                               notify_peer: bool = True) -> int:
        children = self._sas.children_of_tunnel(name)
        for child in children:
            self._delete_child(child, reason, now, notify_peer=notify_peer)
        for qm, ike in self._sas.quick_modes_of_tunnel(name):
            self._end_quick_mode(ike, qm)
        return len(children)

    def _hurry_quick_modes(self, tunnel: str, now: float) -> None:
        """The tunnel has just lost its last IPsec SA (expiry, a Delete) while a
        Quick Mode of ours for it is still unanswered (a rekey under loss): its
        next retransmission may be 16 s away, all of it an outage, so it is
        retransmitted now on a fresh schedule (same message, same message ID:
        a peer that has it answers from its state)."""
        for qm, ike in self._sas.quick_modes_of_tunnel(tunnel):
            if qm.role is not Role.INITIATOR or qm.flight is None:
                continue
            qm.flight.retransmits = 0
            qm.flight.interval = self.policy.retransmit.initial / 2  # doubled when sent
            qm.flight.next_at = now
            self._touch(ike)

    def _retire_replaced(self, key: PeerKey, now: float) -> None:
        """Delete the peer's phase 1 SAs being replaced once their IPsec SAs have moved.

        A replaced phase 1 goes once a successor is up and no current IPsec SA
        (nor a Quick Mode) uses it any more; a responder-only tunnel's SA keeps
        it until the peer renews that SA or the phase 1 expires.
        """
        replaced = self._sas.replaced_ike(key)
        if not replaced or self._sas.best_ike(key, fresh=True) is None:
            return
        for ike in replaced:
            if ike.quick_modes or any(not child.superseded
                                      for child in self._sas.children_of_ike(ike.cookies)):
                continue
            self._delete_ike(ike, "rekeyed", now, notify_peer=True)

    def _peer_dead(self, key: DpdKey, now: float) -> None:
        """RFC 3706: no answer to our R-U-THEREs; everything with the peer goes."""
        self._count("peers_dead")
        if isinstance(key, SubscriberPeer):
            self._subscriber_dead(key, now)
            return
        tunnels = self._tunnels.of_peer(key)
        first = self._sas.first_ike(key)
        peer = first.remote if first is not None else (key[1], 500)
        ike = self._sas.best_ike(key)
        if ike is not None:
            ike.log.info("peer %s is dead (no answer to %d R-U-THERE)", key[1],
                         self.policy.dpd.retries)
        names: list[str | None] = [r.name for r in tunnels]
        for name in names or [None]:
            self._emit(PeerDead(name, peer))
        for child in self._sas.children_of_peer(key):
            self._delete_child(child, "dead peer", now, notify_peer=False)
        for other in self._sas.ike_of_peer(key):
            self._delete_ike(other, "dead peer", now, notify_peer=False)
        self._dpd.forget(key)
        self._negotiation_failed(key[0], key[1], None, "dead peer", now)
        self._fail_over(key, "dead peer (DPD)", now)

    def _subscriber_dead(self, key: SubscriberPeer, now: float) -> None:
        """A subscriber that no longer answers: its phase 1 and with it the
        subscriber go (SubscriberDown, "dead peer"); the other subscribers
        behind its address are not touched.  Nothing is re-initiated: we
        never initiate towards a subscriber."""
        self._dpd.forget(key)
        ike = self._sas.ike.get(key.cookies)
        if ike is None:
            return
        ike.log.info("subscriber at %s:%d is dead (no answer to %d R-U-THERE)", *ike.remote,
                     self.policy.dpd.retries)
        self._emit(PeerDead(ike.tunnel, ike.remote))
        if ike.tunnel is not None and self._subscribers.owner(ike.tunnel) is not None:
            self._clear_tunnel_children(ike.tunnel, "dead peer", now, notify_peer=False)
        self._delete_ike(ike, "dead peer", now, notify_peer=False)

    def _liveness_key(self, runtime: TunnelRuntime) -> DpdKey:
        """Whose liveness the tunnel's traffic proves: a subscriber's phase 1,
        or the configured peer."""
        owner = self._subscribers.owner(runtime.name) if runtime.subscriber else None
        return dpd_key(owner.ike) if owner is not None else runtime.peer_key

    def _fail_over(self, key: PeerKey, reason: str, now: float) -> None:
        """Tunnel failover (failover.py): the tunnels that negotiate with the
        failed destination `key` and have another one, and are not up with
        SAs negotiated otherwise, move to the other one.  The back-off that
        the failure set stays, so two failing destinations alternate no
        faster than a single one is retried."""
        for runtime in self._tunnels.of_peer(key):
            if not failover.may_switch(runtime) or self._current_child(runtime.name) is not None:
                continue
            self._clear_tunnel_children(runtime.name, reason, now)
            self._remove_tunnel(runtime)
            failover.switch(runtime, reason, now)
            self._add_tunnel(runtime)
            _LOG.info("tunnel %s fails over to %s (%s): %s", runtime.name,
                      runtime.policy.peer_address, "backup" if runtime.on_backup else "primary",
                      reason)
            self._service_tunnel(runtime, now)

    # --- the tables: every change goes through here so that deadlines follow ----

    def _touch(self, item: Timed) -> None:
        self._schedule.touch(item)

    def _touch_peer(self, key: PeerKey) -> None:
        """Something about the phase 1 SAs with a peer changed: its tunnels and DPD."""
        for runtime in self._tunnels.of_peer(key):
            self._touch(runtime)
        self._touch(key)

    def _touch_tunnel(self, name: str) -> None:
        runtime = self._tunnels.get(name)
        if runtime is not None:
            self._touch(runtime)

    def _add_ike(self, ike: IkeSa) -> None:
        self._sas.add_ike(ike)
        self._touch(ike)
        self._touch_peer(ike_peer(ike))
        self._touch(self._admission)

    def _start_quick_mode(self, ike: IkeSa, qm: QuickMode) -> None:
        self._sas.start_quick_mode(ike, qm)
        self._touch(ike)
        self._touch_tunnel(qm.tunnel)

    def _end_quick_mode(self, ike: IkeSa, qm: QuickMode) -> None:
        self._sas.end_quick_mode(ike, qm)
        self._spis.discard(qm.inbound_spi)
        self._touch(ike)
        self._touch_tunnel(qm.tunnel)

    def _add_child(self, child: IpsecSa) -> None:
        self._sas.add_child(child)
        self._touch(child)
        self._touch_tunnel(child.tunnel)

    def _remove_child(self, child: IpsecSa) -> None:
        self._sas.remove_child(child)
        self._spis.discard(child.inbound_spi)
        self._touch(child)
        self._touch_tunnel(child.tunnel)

    def _add_tunnel(self, runtime: TunnelRuntime) -> None:
        self._tunnels.add(runtime)
        self._touch(runtime)

    def _remove_tunnel(self, runtime: TunnelRuntime) -> None:
        self._tunnels.remove(runtime)
        self._admission.leave(runtime)
        self._turns.leave(runtime.name)
        self._touch(runtime)

    def _tunnel(self, name: str) -> TunnelRuntime:
        runtime = self._tunnels.get(name)
        if runtime is None:
            raise KeyError(name)
        return runtime

    def _knows_peer(self, key: PeerKey) -> bool:
        return self._sas.has_children(key) or self._sas.has_established(key)

    def _current_child(self, tunnel: str) -> IpsecSa | None:
        """The tunnel's newest IPsec SA that no rekey has replaced yet."""
        for child in reversed(self._sas.children_of_tunnel(tunnel)):
            if not child.superseded:
                return child
        return None

    def _orphaned(self, child: IpsecSa) -> bool:
        """Its phase 1 is gone or being replaced (see the module docstring)."""
        ike = self._sas.ike.get(child.ike_cookies)
        return ike is None or ike.rekeyed

    def _needs_negotiation(self, runtime: TunnelRuntime) -> bool:
        if not runtime.initiates or self._sas.quick_mode_running(runtime.name):
            return False
        if runtime.policy.remote_access is not None:
            ike = self._sas.best_ike(runtime.peer_key)
            if ike is not None and self._clients.address(ike) is None:
                return False  # logging in: the Quick Mode waits for our address
        current = self._current_child(runtime.name)
        return runtime.rekey_of is not None or current is None or self._orphaned(current)

    # --- tunnels (SPEC 3.3) -------------------------------------------------------------

    def _uniform(self) -> float:
        """A number from 0 to 1 drawn from the engine's random source."""
        return int.from_bytes(self._rng(2), "big") / 0xFFFF

    def _backoff(self, failures: int) -> float:
        """1, 2, 4 ... 30 s (SPEC 3.3), each less up to BACKOFF_JITTER: tunnels that
        failed together (a dead peer, a storm of timeouts) do not retry together."""
        delay = self.policy.reinit_backoff_initial * 2 ** max(0, failures - 1)
        delay = min(self.policy.reinit_backoff_maximum, delay)
        return float(delay * (1.0 - BACKOFF_JITTER * self._uniform()))

    def _soft_fraction(self, role: Role) -> float:
        jitter = self._uniform()
        if role is Role.INITIATOR:
            return 0.90 - 0.05 * jitter
        return 0.95 - 0.025 * jitter

    def _negotiation_failed(self, local_ip: str, remote_ip: str, tunnel: str | None,
                            reason: str, now: float) -> None:
        """Back off every tunnel that waited on this negotiation (SPEC 3.3)."""
        runtimes = self._tunnels.of_peer((local_ip, remote_ip))
        named = self._tunnels.get(tunnel)
        if named is not None and named not in runtimes:
            runtimes.append(named)
        for runtime in runtimes:
            waiting = runtime.peer_key == (local_ip, remote_ip) and \
                self._needs_negotiation(runtime)
            if runtime is named:
                runtime.failed(reason, now)
            if waiting or (runtime is named and runtime.initiates
                           and self._current_child(runtime.name) is None):
                runtime.failed(reason, now)
                runtime.failures += 1
                runtime.next_attempt_at = now + self._backoff(runtime.failures)
                self._touch(runtime)

    def _delay_tunnels_of(self, ike: IkeSa, until: float) -> None:
        for runtime in self._tunnels.of_peer(ike_peer(ike)):
            runtime.next_attempt_at = max(runtime.next_attempt_at, until)
            self._touch(runtime)

    def _service_tunnel(self, runtime: TunnelRuntime, now: float, *,
                        admitted: bool = False) -> None:
        """Start what the tunnel needs (SPEC 3.3) if its back-off allows it now.

        A phase 1 needs an initiator slot (admission.py): without one, or
        while others wait for one, the tunnel joins the queue; it is
        `admitted` from its head as slots come free (`_admit`).
        """
        if not self._needs_negotiation(runtime) or now < runtime.next_attempt_at:
            return
        current = self._current_child(runtime.name)
        moving = current is not None and self._orphaned(current)
        ike = self._sas.best_ike(runtime.peer_key, fresh=moving)
        if ike is not None:
            self._leave_queue(runtime)
            if _our_quick_mode_running(ike):
                self._turns.wait(ike.cookies, runtime.name)  # turns.py
                self._touch(runtime)
                return
            self._turns.leave(runtime.name)
            rekey_of = runtime.rekey_of or (current.inbound_spi if current else None)
            self.initiate_quick_mode(ike, self._client_policy(runtime, ike), now, rekey_of)
        elif not self._sas.phase1_in_progress(runtime.peer_key):
            if not admitted and self._admission.must_wait(self._sas):
                if self._admission.join(runtime):
                    self._touch(runtime)
                    self._touch(self._admission)
                return
            self._leave_queue(runtime)
            self.initiate_phase1(runtime.policy, now, rekey=self._knows_peer(runtime.peer_key))

    def _leave_queue(self, runtime: TunnelRuntime) -> None:
        if self._admission.leave(runtime):
            self._touch(runtime)

    def _admit(self, now: float) -> None:
        """Give the free initiator slots to the tunnels at the head of the queue."""
        while self._admission and self._admission.slot_free(self._sas):
            runtime = self._admission.head()
            self._leave_queue(runtime)
            if self._tunnels.current(runtime):
                self._service_tunnel(runtime, now, admitted=True)

    def _rekey_phase1(self, ike: IkeSa, now: float) -> None:
        key = ike_peer(ike)
        newer = self._sas.best_ike(key)
        if self._sas.phase1_in_progress(key) or (newer is not None and newer is not ike
                                                 and not newer.rekeyed):
            return
        tunnels = [r for r in self._tunnels.of_peer(key) if r.initiates]
        if tunnels:
            if self._admission.must_wait(self._sas):
                # The tunnels whose IPsec SAs it carries now need a phase 1
                # (`_orphaned`) and queue for a slot: the first one admitted rekeys.
                ike.log.info("phase 1 with %s reaches its soft lifetime: rekey waits for "
                             "an initiator slot", ike.remote[0])
                return
            ike.log.info("phase 1 with %s reaches its soft lifetime: rekeying", ike.remote[0])
            self.initiate_phase1(tunnels[0].policy, now, rekey=True)
            return
        if ike.profile is not None:
            return  # a subscriber's client logs in again itself: we never initiate to it
        stranded = [child for child in self._sas.children_of_ike(ike.cookies)
                    if not child.superseded and child.expires_at > (ike.expires_at or 0.0)
                    and (runtime := self._tunnels.get(child.tunnel)) is not None
                    and runtime.policy.enabled]
        if stranded:
            # "Phase 1 renewal for responder-only tunnels" (module docstring).
            ike.log.info("phase 1 with %s reaches its soft lifetime before its IPsec SAs: "
                         "renewing the phase 1 only", ike.remote[0])
            self.initiate_phase1(self._tunnel(stranded[0].tunnel).policy, now, rekey=True,
                                 path=(ike.local, ike.remote))

    def _request_rekey(self, child: IpsecSa) -> None:
        child.soft_at = math.inf
        self._touch(child)
        runtime = self._tunnels.get(child.tunnel)
        if runtime is not None and runtime.initiates and runtime.rekey_of is None:
            runtime.rekey_of = child.inbound_spi
            self._touch(runtime)

    # --- timers -------------------------------------------------------------------

    def _deadline(self, item: Timed) -> float | None:
        if isinstance(item, IkeSa):
            return self._ike_deadline(item) if self._sas.ike.get(item.cookies) is item else None
        if isinstance(item, IpsecSa):
            if self._sas.children.get(item.inbound_spi) is not item:
                return None
            return min(item.expires_at, math.inf if item.superseded else item.soft_at,
                       math.inf if item.delete_at is None else item.delete_at)
        if isinstance(item, TunnelRuntime):
            if not self._tunnels.current(item) or item in self._admission or \
                    self._turns.waiting(item.name) or not self._needs_negotiation(item) or \
                    self._sas.phase1_in_progress(item.peer_key):
                return None
            return item.next_attempt_at
        if isinstance(item, Admission):
            return self._now if item and item.slot_free(self._sas) else None
        if isinstance(item, Subscriber):
            return self._subscribers.deadline(item)
        if isinstance(item, Login):
            return self._clients.deadline(item)
        return self._dpd.due(item, self._now)

    def _ike_deadline(self, ike: IkeSa) -> float:
        deadlines = [qm.flight.next_at for qm in ike.quick_modes.values()
                     if qm.flight is not None]
        if ike.flight is not None:
            deadlines.append(ike.flight.next_at)
        if not ike.established and ike.role is Role.RESPONDER:
            deadlines.append(ike.created_at + self.policy.half_open_timeout)
        if ike.established and ike.expires_at is not None and ike.soft_at is not None:
            deadlines.append(ike.expires_at if ike.rekeyed else ike.soft_at)
        if self._turns.has_waiting(ike.cookies) and not _our_quick_mode_running(ike):
            deadlines.append(self._now)  # the next tunnel's turn (`_next_turn`)
        return min(deadlines, default=math.inf)

    def _fire(self, item: Timed, now: float) -> None:
        if isinstance(item, IkeSa):
            if self._sas.ike.get(item.cookies) is item:
                self._ike_timers(item, now)
            if self._sas.ike.get(item.cookies) is item:
                self._next_turn(item, now)
        elif isinstance(item, IpsecSa):
            if self._sas.children.get(item.inbound_spi) is item:
                self._child_timers(item, now)
        elif isinstance(item, TunnelRuntime):
            if self._tunnels.current(item):
                self._service_tunnel(item, now)
        elif isinstance(item, Admission):
            self._admit(now)
        elif isinstance(item, Login):
            if self._clients.live(item):
                self._client_outcome(item, self._clients.fire(item, now), now)
        elif isinstance(item, Subscriber):
            if self._subscribers.live(item):
                self._apply_to_ike(item.ike, self._subscribers.fire(item, now), now)
        elif self._dpd.probe(item, now):
            self._peer_dead(item, now)

    def _retransmit(self, flight: Flight, now: float) -> bool:
        retransmit = self.policy.retransmit
        if flight.retransmits >= retransmit.retries:
            return False
        flight.retransmits += 1
        self._count("retransmits")
        self._send(flight.datagram, flight.local, flight.remote)
        flight.interval = min(flight.interval * 2, retransmit.maximum)
        flight.next_at = now + self._retransmit_wait(flight.interval)
        return True

    def _retransmit_wait(self, interval: float) -> float:
        """`interval` less up to RETRANSMIT_JITTER (see `RetransmitPolicy`)."""
        return interval * (1.0 - RETRANSMIT_JITTER * self._uniform())

    def _ike_timers(self, ike: IkeSa, now: float) -> None:
        if ike.flight is not None and now >= ike.flight.next_at and \
                not self._retransmit(ike.flight, now):
            self._phase1_failed(ike, "no answer from the peer (retransmission limit)", now)
            return
        if not ike.established and ike.role is Role.RESPONDER and \
                now >= ike.created_at + self.policy.half_open_timeout:
            self._phase1_failed(ike, "half-open timeout", now)
            return
        for qm in list(ike.quick_modes.values()):
            if qm.flight is not None and now >= qm.flight.next_at and \
                    not self._retransmit(qm.flight, now):
                self._quick_mode_failed(ike, qm, "no answer to Quick Mode", now, None)
        if not ike.established or ike.expires_at is None or ike.soft_at is None:
            return
        if now >= ike.expires_at:
            self._delete_ike(ike, "expired", now, notify_peer=True)
        elif not ike.rekeyed and now >= ike.soft_at:
            self._sas.rekeyed(ike)
            self._touch_peer(ike_peer(ike))
            for child in self._sas.children_of_ike(ike.cookies):
                self._touch_tunnel(child.tunnel)
            self._rekey_phase1(ike, now)
            self._retire_replaced(ike_peer(ike), now)

    def _next_turn(self, ike: IkeSa, now: float) -> None:
        """Our Quick Mode on `ike` has ended: the next waiting tunnel starts its
        own (one that needs none any more, or goes to another phase 1, hands
        the turn on at once)."""
        while not _our_quick_mode_running(ike):
            tunnel = self._turns.next(ike.cookies)
            if tunnel is None:
                return
            runtime = self._tunnels.get(tunnel)
            if runtime is not None:
                self._touch(runtime)
                self._service_tunnel(runtime, now)

    def _child_timers(self, child: IpsecSa, now: float) -> None:
        if now >= child.expires_at:
            self._delete_child(child, "expired", now, notify_peer=True)
        elif child.delete_at is not None and now >= child.delete_at:
            self._delete_child(child, "rekeyed", now, notify_peer=True)
        elif not child.superseded and now >= child.soft_at:
            self._request_rekey(child)


def _our_quick_mode_running(ike: IkeSa) -> bool:
    """A Quick Mode we started on `ike` is under way (turns.py)."""
    return any(qm.role is Role.INITIATOR for qm in ike.quick_modes.values())


def _drop_reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, MessageRejected) else "malformed"


def _notify_name(notify_type: int) -> str:
    try:
        return NotifyType(notify_type).name.replace("_", "-")
    except ValueError:
        return f"notify {notify_type}"
