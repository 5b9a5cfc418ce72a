"""Keeping tunnels up: timers, rekeying, DPD, `clear_sa`, traffic accounting and status.

`Engine` inherits this; the split keeps message handling (engine.py) apart
from the clock-driven side.  Everything here is driven by `now` values the
runtime passes in; `get_timer()` is the earliest of all deadlines below.

- Tunnels (SPEC 3.3): an enabled tunnel without a live IPsec SA negotiates
  one: Quick Mode on the newest phase 1 with its peer, or a new phase 1
  first.  After a failure it waits 1, 2, 4 ... 30 s (`reinit_backoff_*`).
  A responder-only tunnel (`TunnelPolicy.initiate` False) never starts a
  negotiation nor a rekey; it only answers the peer's.
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
  phase 1 at once (DPD and rekeys need one) and renews its SA on it.
- DPD (RFC 3706): see `DpdPolicy`.
"""

from __future__ import annotations

import ipaddress
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ipsecgw.status import IkeSaStatus, IpsecSaStatus, TunnelState, TunnelStatus

from . import informational
from .events import Event, PeerDead
from .policy import EnginePolicy, TunnelPolicy
from .sa import Flight, IkeSa, IpsecSa, QuickMode, Role

PeerKey = tuple[str, str]  # (local address, peer address)


@dataclass(eq=False)
class TunnelRuntime:
    """What the engine tracks per tunnel beyond its configuration."""

    policy: TunnelPolicy
    failures: int = 0
    next_attempt_at: float = 0.0
    last_failure: str = ""
    up_since: float | None = None
    rekey_of: bytes | None = None  # inbound SPI of an SA waiting for its successor
    inbound_bytes: int = 0
    outbound_bytes: int = 0

    @property
    def peer_key(self) -> PeerKey:
        return (self.policy.local_address, self.policy.peer_address)

    @property
    def initiates(self) -> bool:
        """Whether the engine negotiates and rekeys for this tunnel (not responder-only)."""
        return self.policy.enabled and self.policy.initiate

    def installed(self, now: float) -> None:
        self.failures = 0
        self.next_attempt_at = 0.0
        self.rekey_of = None
        if self.up_since is None:
            self.up_since = now


@dataclass(eq=False)
class PeerLiveness:
    """DPD state of one peer (RFC 3706): last traffic each way and probes in flight."""

    last_rx: float
    last_tx: float
    sequence: int
    probes: int = 0
    probe_at: float | None = None


class Lifecycle(ABC):
    def __init__(self, policy: EnginePolicy) -> None:
        self.policy = policy
        self._now = 0.0
        self._ike: dict[bytes, IkeSa] = {}
        self._children: dict[bytes, IpsecSa] = {}
        self._spis: set[bytes] = set()
        self._tunnels: dict[str, TunnelRuntime] = {
            tunnel.name: TunnelRuntime(tunnel) for tunnel in policy.tunnels}
        self._peers: dict[PeerKey, PeerLiveness] = {}

    # --- what the message side provides ------------------------------------------

    @abstractmethod
    def random(self, size: int) -> bytes: ...

    @abstractmethod
    def _send(self, data: bytes, local: tuple[str, int], remote: tuple[str, int]) -> None: ...

    @abstractmethod
    def _emit(self, event: Event) -> None: ...

    @abstractmethod
    def _count(self, key: str) -> None: ...

    @abstractmethod
    def initiate_phase1(self, tunnel: TunnelPolicy, now: float, *,
                        rekey: bool) -> IkeSa | None: ...

    @abstractmethod
    def initiate_quick_mode(self, ike: IkeSa, tunnel: TunnelPolicy, now: float,
                            rekey_of: bytes | None) -> None: ...

    @abstractmethod
    def _phase1_failed(self, ike: IkeSa, reason: str, now: float,
                       notify_type: int | None = None) -> None: ...

    @abstractmethod
    def _quick_mode_failed(self, ike: IkeSa, qm: QuickMode | None, reason: str, now: float,
                           notify_type: int | None) -> None: ...

    @abstractmethod
    def _delete_child(self, child: IpsecSa, reason: str, now: float, *,
                      notify_peer: bool) -> None: ...

    @abstractmethod
    def _delete_ike(self, ike: IkeSa, reason: str, now: float, *, notify_peer: bool) -> None: ...

    @abstractmethod
    def _forget_ike(self, ike: IkeSa) -> None: ...

    # --- lookups ------------------------------------------------------------------

    def _tunnel_of(self, ike: IkeSa) -> TunnelPolicy | None:
        """The tunnel an SA serves: the one it was initiated for, else by peer address."""
        if ike.tunnel is not None and ike.tunnel in self._tunnels:
            return self._tunnels[ike.tunnel].policy
        for runtime in self._tunnels.values():
            if runtime.peer_key == (ike.local[0], ike.remote[0]):
                return runtime.policy
        return None

    def _best_ike(self, local_ip: str, remote_ip: str, *, fresh: bool = False) -> IkeSa | None:
        """The newest established phase 1 with a peer, preferring one not being replaced
        (`fresh`: only one not being replaced)."""
        candidates = [ike for ike in self._ike.values()
                      if ike.established and (ike.local[0], ike.remote[0]) == (local_ip, remote_ip)
                      and not (fresh and ike.rekeyed)]
        if not candidates:
            return None
        return max(candidates, key=lambda ike: (not ike.rekeyed, ike.established_at or 0.0))

    def _phase1_in_progress(self, key: PeerKey) -> bool:
        return any(not ike.established and (ike.local[0], ike.remote[0]) == key
                   for ike in self._ike.values())

    def _knows_peer(self, local_ip: str, remote_ip: str) -> bool:
        key = (local_ip, remote_ip)
        return any(ike.established and (ike.local[0], ike.remote[0]) == key
                   for ike in self._ike.values()) or any(
            (child.local[0], child.peer[0]) == key for child in self._children.values())

    def _live_child(self, tunnel: str) -> bool:
        return self._current_child(tunnel) is not None

    def _current_child(self, tunnel: str) -> IpsecSa | None:
        """The tunnel's newest IPsec SA that no rekey has replaced yet."""
        live = [child for child in self._children.values()
                if child.tunnel == tunnel and not child.superseded]
        return live[-1] if live else None

    def _orphaned(self, child: IpsecSa) -> bool:
        """Its phase 1 is gone or being replaced (see the module docstring)."""
        ike = self._ike.get(child.ike_cookies)
        return ike is None or ike.rekeyed

    def _quick_mode_running(self, tunnel: str) -> bool:
        return any(qm.tunnel == tunnel for ike in self._ike.values()
                   for qm in ike.quick_modes.values())

    def _needs_negotiation(self, runtime: TunnelRuntime) -> bool:
        if not runtime.initiates or self._quick_mode_running(runtime.policy.name):
            return False
        current = self._current_child(runtime.policy.name)
        return runtime.rekey_of is not None or current is None or self._orphaned(current)

    # --- tunnels --------------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        delay = self.policy.reinit_backoff_initial * 2 ** max(0, failures - 1)
        return float(min(self.policy.reinit_backoff_maximum, delay))

    def _negotiation_failed(self, local_ip: str, remote_ip: str, tunnel: str | None,
                            reason: str, now: float) -> None:
        """Back off every tunnel that waited on this negotiation (SPEC 3.3)."""
        for runtime in self._tunnels.values():
            waiting = runtime.peer_key == (local_ip, remote_ip) and \
                self._needs_negotiation(runtime)
            if runtime.policy.name == tunnel:
                runtime.last_failure = reason
            if waiting or (runtime.policy.name == tunnel and runtime.initiates
                           and not self._live_child(runtime.policy.name)):
                runtime.last_failure = reason
                runtime.failures += 1
                runtime.next_attempt_at = now + self._backoff(runtime.failures)

    def _delay_tunnels_of(self, ike: IkeSa, until: float) -> None:
        for runtime in self._tunnels.values():
            if runtime.peer_key == (ike.local[0], ike.remote[0]):
                runtime.next_attempt_at = max(runtime.next_attempt_at, until)

    def _service_tunnels(self, now: float) -> None:
        for runtime in self._tunnels.values():
            if not self._needs_negotiation(runtime) or now < runtime.next_attempt_at:
                continue
            current = self._current_child(runtime.policy.name)
            moving = current is not None and self._orphaned(current)
            ike = self._best_ike(*runtime.peer_key, fresh=moving)
            if ike is not None:
                rekey_of = runtime.rekey_of or (current.inbound_spi if current else None)
                self.initiate_quick_mode(ike, runtime.policy, now, rekey_of)
            elif not self._phase1_in_progress(runtime.peer_key):
                self.initiate_phase1(runtime.policy, now, rekey=self._knows_peer(
                    *runtime.peer_key))

    def _apply_policy(self, policy: EnginePolicy, now: float) -> None:
        """Live configuration change: tunnels removed, disabled or changed lose their SAs."""
        self.policy = policy
        new = {tunnel.name: tunnel for tunnel in policy.tunnels}
        for name, runtime in list(self._tunnels.items()):
            replacement = new.get(name)
            if replacement == runtime.policy:
                continue
            if replacement is not None and \
                    replace(replacement, initiate=runtime.policy.initiate) == runtime.policy:
                # Only `responder-only` changed: the SAs stay; a tunnel that now
                # initiates rekeys those already past their soft lifetime.
                runtime.policy = replacement
                if runtime.initiates:
                    for child in self._children.values():
                        if child.tunnel == name and not child.superseded and \
                                child.soft_at == math.inf:
                            runtime.rekey_of = child.inbound_spi
                continue
            self._clear_tunnel_children(name, "policy", now)
            if replacement is None:
                del self._tunnels[name]
            else:
                runtime.policy = replacement
                runtime.failures, runtime.next_attempt_at, runtime.rekey_of = 0, 0.0, None
        for name, tunnel in new.items():
            self._tunnels.setdefault(name, TunnelRuntime(tunnel))
        self._service_tunnels(now)

    def _clear_tunnel_children(self, name: str, reason: str, now: float) -> int:
        count = 0
        for child in list(self._children.values()):
            if child.tunnel == name:
                self._delete_child(child, reason, now, notify_peer=True)
                count += 1
        for ike in list(self._ike.values()):
            for qm in list(ike.quick_modes.values()):
                if qm.tunnel == name:
                    ike.quick_modes.pop(qm.message_id, None)
                    self._spis.discard(qm.inbound_spi)
        return count

    def _child_gone(self, child: IpsecSa, now: float) -> None:
        self._retire_replaced((child.local[0], child.peer[0]), now)
        runtime = self._tunnels.get(child.tunnel)
        if runtime is None:
            return
        if runtime.rekey_of == child.inbound_spi:
            runtime.rekey_of = None
        if not self._live_child(child.tunnel):
            runtime.up_since = None
        self._forget_peer_if_unused((child.local[0], child.peer[0]))

    def _ike_gone(self, ike: IkeSa, now: float) -> None:
        self._forget_peer_if_unused((ike.local[0], ike.remote[0]))

    def _retire_replaced(self, key: PeerKey, now: float) -> None:
        """Delete the peer's phase 1 SAs being replaced once their IPsec SAs have moved.

        A replaced phase 1 goes once a successor is up and no current IPsec SA
        (nor a Quick Mode) uses it any more; a responder-only tunnel's SA keeps
        it until the peer renews that SA or the phase 1 expires.
        """
        if self._best_ike(*key, fresh=True) is None:
            return
        for ike in [ike for ike in self._ike.values() if ike.rekeyed and ike.established
                    and (ike.local[0], ike.remote[0]) == key]:
            if ike.quick_modes or any(child.ike_cookies == ike.cookies and not child.superseded
                                      for child in self._children.values()):
                continue
            self._delete_ike(ike, "rekeyed", now, notify_peer=True)

    def _forget_peer_if_unused(self, key: PeerKey) -> None:
        if key in self._peers and not any(
                ike.established and (ike.local[0], ike.remote[0]) == key
                for ike in self._ike.values()):
            del self._peers[key]

    def _initial_contact(self, ike: IkeSa, now: float) -> None:
        """RFC 2407 4.6.3.3: the peer lost its state; drop what predates this phase 1."""
        ike.log.info("INITIAL-CONTACT from %s: removing older SAs", ike.remote[0])
        for child in list(self._children.values()):
            if child.peer[0] == ike.remote[0] and child.created_at < ike.created_at:
                self._delete_child(child, "initial contact", now, notify_peer=False)
        for other in list(self._ike.values()):
            if other is not ike and other.established and other.remote[0] == ike.remote[0] \
                    and (other.established_at or 0.0) < ike.created_at:
                self._delete_ike(other, "initial contact", now, notify_peer=False)

    def _soft_fraction(self, role: Role) -> float:
        jitter = int.from_bytes(self.random(2), "big") / 65535
        if role is Role.INITIATOR:
            return 0.90 - 0.05 * jitter
        return 0.95 - 0.025 * jitter

    # --- public: configuration-independent operations -------------------------------

    def clear_sa(self, tunnels: Iterable[str] | None, phase: int | None, now: float) -> int:
        """SPEC 1.1 `ipsec clear sa`: Delete to the peer, remove locally, renegotiate.

        `tunnels` None means all; `phase` 1, 2 or None (both).  Returns how many
        SAs (phase 1 SAs and IPsec SA pairs) were deleted.

        `phase=1` deletes the tunnels' ISAKMP SAs (with a Delete) and keeps
        their IPsec SAs installed, as the guide says and RFC 2409 allows.  But
        strongSwan and other peers delete their IPsec SAs together with the
        ISAKMP SA, so ours would carry traffic into a void: each tunnel that
        initiates therefore negotiates a new phase 1 at once and, as soon as
        it is up, renews its IPsec SA by Quick Mode on it (make before break:
        the old pair is deleted `rekey_grace` later, like any rekeyed SA).  A
        responder-only tunnel keeps its SA and leaves the renewal to the peer.
        """
        self._now = now
        names = set(self._tunnels) if tunnels is None else set(tunnels) & set(self._tunnels)
        peers = {self._tunnels[name].peer_key for name in names}
        count = 0
        if phase in (None, 2):
            for name in names:
                count += self._clear_tunnel_children(name, "cleared", now)
        if phase in (None, 1):
            for ike in list(self._ike.values()):
                if tunnels is None or (ike.local[0], ike.remote[0]) in peers:
                    if ike.established:
                        self._delete_ike(ike, "cleared", now, notify_peer=True)
                        count += 1
                    else:
                        self._forget_ike(ike)
        for name in names:
            runtime = self._tunnels[name]
            runtime.failures, runtime.next_attempt_at, runtime.rekey_of = 0, 0.0, None
        self._service_tunnels(now)
        return count

    def traffic(self, tunnel: str, inbound_bytes: int, outbound_bytes: int, now: float) -> None:
        """Cumulative data-plane byte counters of a tunnel: DPD and kilobyte lifetimes."""
        self._now = now
        runtime = self._tunnels.get(tunnel)
        if runtime is None:
            return
        live = self._peers.get(runtime.peer_key)
        if live is not None:
            if inbound_bytes > runtime.inbound_bytes:
                live.last_rx, live.probes, live.probe_at = now, 0, None
            if outbound_bytes > runtime.outbound_bytes:
                live.last_tx = now
        runtime.inbound_bytes, runtime.outbound_bytes = inbound_bytes, outbound_bytes
        for child in list(self._children.values()):
            if child.tunnel != tunnel or not child.lifetime_kilobytes:
                continue
            used = max(inbound_bytes - child.inbound_at_start,
                       outbound_bytes - child.outbound_at_start) // 1024
            if used >= child.lifetime_kilobytes:
                self._delete_child(child, "expired", now, notify_peer=True)
            elif used >= child.soft_kilobytes and not child.superseded:
                self._request_rekey(child)
        self._service_tunnels(now)

    # --- timers -------------------------------------------------------------------

    def get_timer(self) -> float | None:
        deadlines: list[float] = []
        dpd = self.policy.dpd
        for ike in self._ike.values():
            if ike.flight is not None:
                deadlines.append(ike.flight.next_at)
            if not ike.established and ike.role is Role.RESPONDER:
                deadlines.append(ike.created_at + self.policy.half_open_timeout)
            if ike.established and ike.expires_at is not None and ike.soft_at is not None:
                deadlines.append(ike.expires_at)
                if not ike.rekeyed:
                    deadlines.append(ike.soft_at)
            deadlines += [qm.flight.next_at for qm in ike.quick_modes.values()
                          if qm.flight is not None]
        for child in self._children.values():
            deadlines.append(child.expires_at)
            if not child.superseded:
                deadlines.append(child.soft_at)
            if child.delete_at is not None:
                deadlines.append(child.delete_at)
        for runtime in self._tunnels.values():
            if self._needs_negotiation(runtime) and not self._phase1_in_progress(
                    runtime.peer_key):
                deadlines.append(runtime.next_attempt_at)
        if dpd.enabled:
            for key, live in self._peers.items():
                if self._dpd_ike(key) is not None:
                    deadlines.append(self._dpd_due(live))
        finite = [deadline for deadline in deadlines if math.isfinite(deadline)]
        return min(finite) if finite else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        for ike in list(self._ike.values()):
            if ike.cookies in self._ike:
                self._ike_timers(ike, now)
        for child in list(self._children.values()):
            if child.inbound_spi not in self._children:
                continue
            if now >= child.expires_at:
                self._delete_child(child, "expired", now, notify_peer=True)
            elif child.delete_at is not None and now >= child.delete_at:
                self._delete_child(child, "rekeyed", now, notify_peer=True)
            elif not child.superseded and now >= child.soft_at:
                self._request_rekey(child)
        if self.policy.dpd.enabled:
            self._dpd_timers(now)
        self._service_tunnels(now)

    def _retransmit(self, flight: Flight, now: float) -> bool:
        retransmit = self.policy.retransmit
        if flight.retransmits >= retransmit.retries:
            return False
        flight.retransmits += 1
        self._count("retransmits")
        self._send(flight.datagram, flight.local, flight.remote)
        flight.interval = min(flight.interval * 2, retransmit.maximum)
        flight.next_at = now + flight.interval
        return True

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
            ike.rekeyed = True
            self._rekey_phase1(ike, now)
            self._retire_replaced((ike.local[0], ike.remote[0]), now)

    def _rekey_phase1(self, ike: IkeSa, now: float) -> None:
        key = (ike.local[0], ike.remote[0])
        tunnels = [r for r in self._tunnels.values() if r.peer_key == key and r.initiates]
        newer = self._best_ike(*key)
        if not tunnels or self._phase1_in_progress(key) or (newer is not None and newer is not ike
                                                           and not newer.rekeyed):
            return
        ike.log.info("phase 1 with %s reaches its soft lifetime: rekeying", ike.remote[0])
        self.initiate_phase1(tunnels[0].policy, now, rekey=True)

    def _request_rekey(self, child: IpsecSa) -> None:
        child.soft_at = math.inf
        runtime = self._tunnels.get(child.tunnel)
        if runtime is not None and runtime.initiates and runtime.rekey_of is None:
            runtime.rekey_of = child.inbound_spi

    # --- DPD (RFC 3706) -------------------------------------------------------------

    def _heard_from(self, ike: IkeSa, now: float) -> None:
        key = (ike.local[0], ike.remote[0])
        live = self._peers.get(key)
        if live is None:
            if not ike.established:
                return
            sequence = int.from_bytes(self.random(4), "big") & 0x7FFFFFFF
            live = self._peers[key] = PeerLiveness(now, now, sequence)
        live.last_rx, live.probes, live.probe_at = now, 0, None

    def _dpd_ike(self, key: PeerKey) -> IkeSa | None:
        ike = self._best_ike(*key)
        return ike if ike is not None and ike.capabilities.dpd else None

    def _dpd_due(self, live: PeerLiveness) -> float:
        dpd = self.policy.dpd
        if live.probe_at is not None:
            return live.probe_at + dpd.retry
        due = live.last_rx + dpd.idle
        silence_due = live.last_rx + dpd.silence
        if live.last_tx + dpd.silence / 2 >= max(silence_due, self._now):
            due = min(due, silence_due)
        return due

    def _dpd_timers(self, now: float) -> None:
        dpd = self.policy.dpd
        for key, live in list(self._peers.items()):
            ike = self._dpd_ike(key)
            if ike is None or now < self._dpd_due(live):
                continue
            if live.probe_at is not None and live.probes >= dpd.retries:
                self._peer_dead(key, now)
                continue
            live.sequence = (live.sequence + 1) & 0xFFFFFFFF
            live.probes += 1
            live.probe_at = now
            self._count("dpd_sent")
            ike.log.debug("R-U-THERE %d to %s", live.sequence, ike.remote[0])
            notify = informational.dpd_notify(ike, False, live.sequence)
            self._send(informational.protect(ike, [notify], self.random), ike.local, ike.remote)

    def _dpd_ack(self, ike: IkeSa, sequence: int, now: float) -> None:
        live = self._peers.get((ike.local[0], ike.remote[0]))
        if live is None or not 0 <= (live.sequence - sequence) & 0xFFFFFFFF < max(live.probes, 1):
            return
        self._count("dpd_ack_received")
        live.last_rx, live.probes, live.probe_at = now, 0, None

    def _peer_dead(self, key: PeerKey, now: float) -> None:
        self._count("peers_dead")
        tunnels = [r for r in self._tunnels.values() if r.peer_key == key]
        peer = next((ike.remote for ike in self._ike.values()
                     if (ike.local[0], ike.remote[0]) == key), (key[1], 500))
        ike = self._best_ike(*key)
        if ike is not None:
            ike.log.info("peer %s is dead (no answer to %d R-U-THERE)", key[1],
                         self.policy.dpd.retries)
        names: list[str | None] = [r.policy.name for r in tunnels]
        for name in names or [None]:
            self._emit(PeerDead(name, peer))
        for child in list(self._children.values()):
            if (child.local[0], child.peer[0]) == key:
                self._delete_child(child, "dead peer", now, notify_peer=False)
        for other in list(self._ike.values()):
            if (other.local[0], other.remote[0]) == key:
                self._delete_ike(other, "dead peer", now, notify_peer=False)
        self._peers.pop(key, None)
        self._negotiation_failed(key[0], key[1], None, "dead peer", now)

    # --- status -----------------------------------------------------------------

    def ike_sa_status(self, now: float) -> list[IkeSaStatus]:
        return [self._ike_status(ike, now) for ike in self._ike.values()]

    def _ike_status(self, ike: IkeSa, now: float) -> IkeSaStatus:
        suite = ike.suite or (ike.offered[0] if ike.offered else None)
        from .phase1 import identity_string

        return IkeSaStatus(
            vr=self.policy.vr, local=ike.local[0], remote=ike.remote[0],
            local_port=ike.local[1], remote_port=ike.remote[1],
            initiator_cookie=ike.cookie_i, responder_cookie=ike.cookie_r,
            role=ike.role.value, state=ike.state.value, exchange=ike.exchange,
            authentication=suite.authentication if suite else "",
            encryption=suite.encryption if suite else "", hash=suite.hash if suite else "",
            group=suite.group if suite else 0,
            lifetime_seconds=suite.lifetime_seconds if suite else 0,
            remaining_seconds=max(0, int((ike.expires_at or now) - now)),
            nat_detected=ike.nat_detected, tunnel=ike.tunnel or (
                self._tunnel_of(ike).name if self._tunnel_of(ike) else None),  # type: ignore[union-attr]
            local_identity=identity_string(ike.local_id) if ike.local_id else "",
            peer_identity=identity_string(ike.peer_id) if ike.peer_id else "",
        )

    def tunnel_status(self, now: float) -> list[TunnelStatus]:
        result = []
        for runtime in self._tunnels.values():
            policy = runtime.policy
            children = [c for c in self._children.values() if c.tunnel == policy.name]
            live = [c for c in children if not c.superseded]
            ikes = tuple(self._ike_status(ike, now) for ike in self._ike.values()
                         if (ike.local[0], ike.remote[0]) == runtime.peer_key)
            if not policy.enabled:
                state = TunnelState.DISABLED
            elif live:
                state = TunnelState.UP
            elif self._quick_mode_running(policy.name) or self._phase1_in_progress(
                    runtime.peer_key):
                state = TunnelState.NEGOTIATING
            else:
                state = TunnelState.DOWN
            result.append(TunnelStatus(
                name=policy.name, vr=self.policy.vr, state=state, local=policy.local_address,
                peer=policy.peer_address,
                transform=live[-1].transform if live else policy.transforms[0],
                up_since=runtime.up_since if live else None, last_failure=runtime.last_failure,
                ike_sas=ikes,
                ipsec_sas=tuple(self._child_status(child, runtime, now) for child in children)))
        return result

    def _child_status(self, child: IpsecSa, runtime: TunnelRuntime, now: float) -> IpsecSaStatus:
        return IpsecSaStatus(
            vr=self.policy.vr, tunnel=child.tunnel, inbound_spi=child.inbound_spi,
            outbound_spi=child.outbound_spi, protocol=child.protocol, transform=child.transform,
            local_network=child.local_network, remote_network=child.remote_network,
            encapsulation=child.encapsulation, pfs_group=child.pfs_group,
            lifetime_seconds=child.lifetime_seconds, lifetime_kilobytes=child.lifetime_kilobytes,
            remaining_seconds=max(0, int(child.expires_at - now)),
            inbound_bytes=max(0, runtime.inbound_bytes - child.inbound_at_start),
            outbound_bytes=max(0, runtime.outbound_bytes - child.outbound_at_start))


def network_contains(outer: str, inner: str) -> bool:
    a = ipaddress.ip_network(outer, strict=False)
    b = ipaddress.ip_network(inner, strict=False)
    return a.version == b.version and b.subnet_of(a)  # type: ignore[arg-type]
