"""Keeping tunnels up: timers, rekeying, DPD, `clear_sa` and traffic accounting.

`Engine` inherits this; the split keeps message handling (engine.py) apart
from the clock-driven side (and `Status`, status.py, builds the snapshots).  Everything here is driven by `now` values the
runtime passes in; `get_timer()` is the earliest of all deadlines below.

Scale: one engine holds thousands of tunnels, so nothing per message or per
timer scans them all.  SAs live in a `Registry` (indexed by peer, tunnel and
phase 1); every deadline of an SA, a tunnel or a peer's DPD sits in one
`Deadlines` heap.  Whatever changes an object's deadline marks it (`_touch`),
and its deadline is recomputed before the heap is next read.

- Tunnels (SPEC 3.3): an enabled tunnel without a live IPsec SA negotiates
  one: Quick Mode on the newest phase 1 with its peer, or a new phase 1
  first.  After a failure it waits 1, 2, 4 ... 30 s (`reinit_backoff_*`)
  less up to 20 %.  At most `initiator_half_open_limit` phase 1 attempts of
  ours are in flight: a tunnel that needs one beyond that waits in a queue,
  without a deadline of its own, and starts in turn as attempts finish.
  A responder-only tunnel (`TunnelPolicy.initiate` False) never starts a
  negotiation nor a rekey; it only answers the peer's (one exception below).
  When both ends start the same negotiation at once, `Collisions`
  (collisions.py, a base of this class) decides which one goes on, the same
  way on both sides.
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
  waits `PEER_QUICK_MODE_GRACE` for the peer's own) and renews its SA on it.
  Only a phase 1 that goes or that we replace triggers a renewal, never a
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
- DPD (RFC 3706): dpd.py, a base of this class, with `DpdPolicy`.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from abc import abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .collisions import Collisions
from .deadlines import Deadlines
from .dpd import DeadPeerDetection, PeerLiveness
from .events import Event
from .policy import Address, EnginePolicy, TunnelPolicy
from .registry import PeerKey, Registry, child_peer, ike_peer, unindex
from .sa import Flight, IkeSa, IpsecSa, QuickMode, Role
from .status import Status

#: The most by which each retransmission interval is shortened (`RetransmitPolicy`).
RETRANSMIT_JITTER = 0.1
#: The most by which a tunnel's wait after a failed negotiation is shortened.
BACKOFF_JITTER = 0.2

#: handle_timer() runs what fell due, then what that made due at once (a Quick
#: Mode after an SA's soft lifetime), at most this many rounds per call.
_TIMER_ROUNDS = 8


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
    def selectors(self) -> tuple[str, str]:
        """(remote, local) network as a peer's Quick Mode names them (normalised)."""
        return (_normalised(self.policy.remote_network), _normalised(self.policy.local_network))

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


class Admission:
    """The deadline of the tunnels waiting for an initiator slot (one per engine)."""


ADMISSION = Admission()

#: What has a deadline: an SA, a tunnel (its next negotiation), a peer (DPD),
#: the tunnels waiting for an initiator slot.
Timed = IkeSa | IpsecSa | TunnelRuntime | PeerKey | Admission


class Lifecycle(Collisions, DeadPeerDetection, Status):
    def __init__(self, policy: EnginePolicy) -> None:
        self.policy = policy
        self._now = 0.0
        self._sas = Registry()
        self._spis: set[bytes] = set()
        self._tunnels: dict[str, TunnelRuntime] = {}
        self._tunnels_by_peer: dict[PeerKey, dict[str, TunnelRuntime]] = {}
        # (peer, remote network, local network) -> tunnels: a peer's Quick Mode
        # usually proposes exactly the configured selectors.
        self._tunnels_by_selectors: dict[tuple[PeerKey, str, str], dict[str, TunnelRuntime]] = {}
        self._peers: dict[PeerKey, PeerLiveness] = {}
        self._timers: Deadlines[Timed] = Deadlines()
        self._dirty: dict[Timed, None] = {}
        # Tunnels that need a phase 1 while `initiator_half_open_limit` of ours
        # are in flight, in the order they became due (see `_service_tunnel`).
        self._slot_queue: dict[TunnelRuntime, None] = {}
        for tunnel in policy.tunnels:
            self._add_tunnel(TunnelRuntime(tunnel))

    # --- what the message side provides (besides what `Collisions` lists) ----------

    @abstractmethod
    def random(self, size: int) -> bytes: ...

    @abstractmethod
    def _emit(self, event: Event) -> None: ...

    @abstractmethod
    def initiate_phase1(self, tunnel: TunnelPolicy, now: float, *, rekey: bool,
                        path: tuple[Address, Address] | None = None) -> IkeSa | None: ...

    @abstractmethod
    def initiate_quick_mode(self, ike: IkeSa, tunnel: TunnelPolicy, now: float,
                            rekey_of: bytes | None) -> None: ...

    @abstractmethod
    def _phase1_failed(self, ike: IkeSa, reason: str, now: float,
                       notify_type: int | None = None) -> None: ...

    @abstractmethod
    def _quick_mode_failed(self, ike: IkeSa, qm: QuickMode | None, reason: str, now: float,
                           notify_type: int | None) -> None: ...

    # --- tables: every change goes through here so that deadlines follow ----------

    def _touch(self, item: Timed) -> None:
        self._dirty[item] = None

    def _touch_peer(self, key: PeerKey) -> None:
        """Something about the phase 1 SAs with a peer changed: its tunnels and DPD."""
        for runtime in self._tunnels_by_peer.get(key, {}).values():
            self._dirty[runtime] = None
        self._dirty[key] = None

    def _touch_tunnel(self, name: str) -> None:
        runtime = self._tunnels.get(name)
        if runtime is not None:
            self._dirty[runtime] = None

    def _add_ike(self, ike: IkeSa) -> None:
        self._sas.add_ike(ike)
        self._touch(ike)
        self._touch_peer(ike_peer(ike))
        self._touch(ADMISSION)

    def _established(self, ike: IkeSa) -> None:
        self._sas.established(ike)
        self._touch(ADMISSION)  # an initiator slot may have come free

    def _remove_ike(self, ike: IkeSa) -> None:
        for qm in list(ike.quick_modes.values()):
            self._end_quick_mode(ike, qm)
        self._sas.remove_ike(ike)
        self._touch(ike)
        self._touch_peer(ike_peer(ike))
        self._touch(ADMISSION)
        for child in self._sas.children_of_ike(ike.cookies):
            self._touch_tunnel(child.tunnel)  # it may have to move (see the docstring)

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
        name = runtime.policy.name
        self._tunnels[name] = runtime
        self._tunnels_by_peer.setdefault(runtime.peer_key, {})[name] = runtime
        self._tunnels_by_selectors.setdefault(
            (runtime.peer_key, *runtime.selectors), {})[name] = runtime
        self._touch(runtime)

    def _remove_tunnel(self, runtime: TunnelRuntime) -> None:
        name = runtime.policy.name
        del self._tunnels[name]
        self._slot_queue.pop(runtime, None)
        unindex(self._tunnels_by_peer, runtime.peer_key, name)
        unindex(self._tunnels_by_selectors, (runtime.peer_key, *runtime.selectors), name)
        self._touch(runtime)

    # --- lookups ------------------------------------------------------------------

    def _tunnels_of(self, key: PeerKey) -> list[TunnelRuntime]:
        return list(self._tunnels_by_peer.get(key, {}).values())

    def _tunnels_selecting(self, key: PeerKey, remote_network: str,
                           local_network: str) -> list[TunnelRuntime]:
        """The peer's tunnels configured with exactly these selectors."""
        return list(self._tunnels_by_selectors.get((key, remote_network, local_network),
                                                   {}).values())

    def _tunnel_of(self, ike: IkeSa) -> TunnelPolicy | None:
        """The tunnel an SA serves: the one it was initiated for, else by peer address."""
        if ike.tunnel is not None and ike.tunnel in self._tunnels:
            return self._tunnels[ike.tunnel].policy
        for runtime in self._tunnels_by_peer.get(ike_peer(ike), {}).values():
            return runtime.policy
        return None

    def _best_ike(self, local_ip: str, remote_ip: str, *, fresh: bool = False) -> IkeSa | None:
        """The newest established phase 1 with a peer, preferring one not being replaced
        (`fresh`: only one not being replaced)."""
        key = (local_ip, remote_ip)
        best = self._sas.newest_ike(key, replaced=False)
        if best is None and not fresh:
            best = self._sas.newest_ike(key, replaced=True)
        return best

    def _phase1_in_progress(self, key: PeerKey) -> bool:
        return self._sas.phase1_in_progress(key)

    def _knows_peer(self, local_ip: str, remote_ip: str) -> bool:
        key = (local_ip, remote_ip)
        return self._sas.has_children(key) or self._sas.has_established(key)

    def _live_child(self, tunnel: str) -> bool:
        return self._current_child(tunnel) is not None

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
        if not runtime.initiates or self._sas.quick_mode_running(runtime.policy.name):
            return False
        current = self._current_child(runtime.policy.name)
        return runtime.rekey_of is not None or current is None or self._orphaned(current)

    # --- tunnels --------------------------------------------------------------------

    def _uniform(self) -> float:
        """A number from 0 to 1 drawn from the engine's random source."""
        return int.from_bytes(self.random(2), "big") / 0xFFFF

    def _backoff(self, failures: int) -> float:
        """1, 2, 4 ... 30 s (SPEC 3.3), each less up to BACKOFF_JITTER: tunnels that
        failed together (a dead peer, a storm of timeouts) do not retry together."""
        delay = self.policy.reinit_backoff_initial * 2 ** max(0, failures - 1)
        delay = min(self.policy.reinit_backoff_maximum, delay)
        return float(delay * (1.0 - BACKOFF_JITTER * self._uniform()))

    def _negotiation_failed(self, local_ip: str, remote_ip: str, tunnel: str | None,
                            reason: str, now: float) -> None:
        """Back off every tunnel that waited on this negotiation (SPEC 3.3)."""
        runtimes = self._tunnels_of((local_ip, remote_ip))
        named = self._tunnels.get(tunnel) if tunnel is not None else None
        if named is not None and named not in runtimes:
            runtimes.append(named)
        for runtime in runtimes:
            waiting = runtime.peer_key == (local_ip, remote_ip) and \
                self._needs_negotiation(runtime)
            if runtime is named:
                runtime.last_failure = reason
            if waiting or (runtime is named and runtime.initiates
                           and not self._live_child(runtime.policy.name)):
                runtime.last_failure = reason
                runtime.failures += 1
                runtime.next_attempt_at = now + self._backoff(runtime.failures)
                self._touch(runtime)

    def _delay_tunnels_of(self, ike: IkeSa, until: float) -> None:
        for runtime in self._tunnels_of(ike_peer(ike)):
            runtime.next_attempt_at = max(runtime.next_attempt_at, until)
            self._touch(runtime)

    def _service_peer(self, key: PeerKey, now: float) -> None:
        for runtime in self._tunnels_of(key):
            self._service_tunnel(runtime, now)

    def _service_tunnel(self, runtime: TunnelRuntime, now: float, *,
                        admitted: bool = False) -> None:
        """Start what the tunnel needs (SPEC 3.3) if its back-off allows it now.

        A phase 1 needs an initiator slot (`initiator_half_open_limit`): without
        one, or while others wait for one, the tunnel joins the queue; it is
        `admitted` from its head as slots come free (`_admit`).  Waiting costs
        nothing: a queued tunnel has no deadline of its own.
        """
        if not self._needs_negotiation(runtime) or now < runtime.next_attempt_at:
            return
        current = self._current_child(runtime.policy.name)
        moving = current is not None and self._orphaned(current)
        ike = self._best_ike(*runtime.peer_key, fresh=moving)
        if ike is not None:
            self._leave_slot_queue(runtime)
            rekey_of = runtime.rekey_of or (current.inbound_spi if current else None)
            self.initiate_quick_mode(ike, runtime.policy, now, rekey_of)
        elif not self._phase1_in_progress(runtime.peer_key):
            if not admitted and (self._slot_queue or not self._slot_free()):
                if runtime not in self._slot_queue:
                    self._slot_queue[runtime] = None
                    self._touch(runtime)
                    self._touch(ADMISSION)
                return
            self._leave_slot_queue(runtime)
            self.initiate_phase1(runtime.policy, now, rekey=self._knows_peer(*runtime.peer_key))

    def _slot_free(self) -> bool:
        return self._sas.initiating_count() < self.policy.initiator_half_open_limit

    def _leave_slot_queue(self, runtime: TunnelRuntime) -> None:
        if runtime in self._slot_queue:
            del self._slot_queue[runtime]
            self._touch(runtime)

    def _admit(self, now: float) -> None:
        """Give the free initiator slots to the tunnels at the head of the queue."""
        while self._slot_queue and self._slot_free():
            runtime = next(iter(self._slot_queue))
            self._leave_slot_queue(runtime)
            if self._tunnels.get(runtime.policy.name) is runtime:
                self._service_tunnel(runtime, now, admitted=True)

    def _apply_policy(self, policy: EnginePolicy, now: float) -> None:
        """Live configuration change: tunnels removed, disabled or changed lose their SAs."""
        self.policy = policy
        new = {tunnel.name: tunnel for tunnel in policy.tunnels}
        changed: list[TunnelRuntime] = []
        for name, runtime in list(self._tunnels.items()):
            replacement = new.get(name)
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
                runtime.failures, runtime.next_attempt_at, runtime.rekey_of = 0, 0.0, None
                self._add_tunnel(runtime)
                changed.append(runtime)
        for name, tunnel in new.items():
            if name not in self._tunnels:
                runtime = TunnelRuntime(tunnel)
                self._add_tunnel(runtime)
                changed.append(runtime)
        self._touch(ADMISSION)  # the limit may have changed
        for runtime in changed:
            self._touch(runtime)
            self._service_tunnel(runtime, now)

    def _clear_tunnel_children(self, name: str, reason: str, now: float) -> int:
        children = self._sas.children_of_tunnel(name)
        for child in children:
            self._delete_child(child, reason, now, notify_peer=True)
        for qm, ike in self._sas.quick_modes_of_tunnel(name):
            self._end_quick_mode(ike, qm)
        return len(children)

    def _child_gone(self, child: IpsecSa, now: float) -> None:
        self._retire_replaced(child_peer(child), now)
        runtime = self._tunnels.get(child.tunnel)
        if runtime is None:
            return
        if runtime.rekey_of == child.inbound_spi:
            runtime.rekey_of = None
        if not self._live_child(child.tunnel):
            runtime.up_since = None
        self._forget_peer_if_unused(child_peer(child))

    def _ike_gone(self, ike: IkeSa, now: float) -> None:
        self._forget_peer_if_unused(ike_peer(ike))

    def _retire_replaced(self, key: PeerKey, now: float) -> None:
        """Delete the peer's phase 1 SAs being replaced once their IPsec SAs have moved.

        A replaced phase 1 goes once a successor is up and no current IPsec SA
        (nor a Quick Mode) uses it any more; a responder-only tunnel's SA keeps
        it until the peer renews that SA or the phase 1 expires.
        """
        replaced = self._sas.replaced_ike(key)
        if not replaced or self._best_ike(*key, fresh=True) is None:
            return
        for ike in replaced:
            if ike.quick_modes or any(not child.superseded
                                      for child in self._sas.children_of_ike(ike.cookies)):
                continue
            self._delete_ike(ike, "rekeyed", now, notify_peer=True)

    def _forget_peer_if_unused(self, key: PeerKey) -> None:
        if key in self._peers and not self._sas.has_established(key):
            del self._peers[key]
            self._touch(key)

    def _soft_fraction(self, role: Role) -> float:
        jitter = self._uniform()
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
        count = 0
        if phase in (None, 2):
            for name in names:
                count += self._clear_tunnel_children(name, "cleared", now)
        if phase in (None, 1):
            if tunnels is None:
                victims = list(self._sas.ike.values())
            else:
                peers = {self._tunnels[name].peer_key for name in names}
                victims = [ike for key in peers for ike in self._sas.ike_of_peer(key)]
            for ike in victims:
                if ike.established:
                    self._delete_ike(ike, "cleared", now, notify_peer=True)
                    count += 1
                else:
                    self._forget_ike(ike)
        for name in sorted(names):
            runtime = self._tunnels[name]
            runtime.failures, runtime.next_attempt_at, runtime.rekey_of = 0, 0.0, None
            self._touch(runtime)
            self._service_tunnel(runtime, now)
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
            self._touch(runtime.peer_key)
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

    # --- timers -------------------------------------------------------------------

    def get_timer(self) -> float | None:
        self._reschedule()
        return self._timers.earliest()

    def handle_timer(self, now: float) -> None:
        self._now = now
        for _ in range(_TIMER_ROUNDS):
            self._reschedule()
            due = self._timers.pop_due(now)
            if not due:
                return
            for item in due:
                self._fire(item, now)
                self._touch(item)
        self._reschedule()

    def _reschedule(self) -> None:
        """Recompute the deadline of everything touched since the heap was last read,
        in the order touched (equal deadlines fire in that order: tunnels that
        became due together start in configuration order)."""
        if self._dirty:
            dirty, self._dirty = self._dirty, {}
            for item in dirty:
                self._timers.schedule(item, self._deadline(item))

    def _deadline(self, item: Timed) -> float | None:
        if isinstance(item, IkeSa):
            return self._ike_deadline(item) if self._sas.ike.get(item.cookies) is item else None
        if isinstance(item, IpsecSa):
            if self._sas.children.get(item.inbound_spi) is not item:
                return None
            return min(item.expires_at, math.inf if item.superseded else item.soft_at,
                       math.inf if item.delete_at is None else item.delete_at)
        if isinstance(item, TunnelRuntime):
            if self._tunnels.get(item.policy.name) is not item or item in self._slot_queue or \
                    not self._needs_negotiation(item) or self._phase1_in_progress(item.peer_key):
                return None
            return item.next_attempt_at
        if isinstance(item, Admission):
            return self._now if self._slot_queue and self._slot_free() else None
        live = self._peers.get(item)
        if live is None or not self.policy.dpd.enabled or self._dpd_ike(item) is None:
            return None
        return self._dpd_due(live)

    def _ike_deadline(self, ike: IkeSa) -> float:
        deadlines = [qm.flight.next_at for qm in ike.quick_modes.values()
                     if qm.flight is not None]
        if ike.flight is not None:
            deadlines.append(ike.flight.next_at)
        if not ike.established and ike.role is Role.RESPONDER:
            deadlines.append(ike.created_at + self.policy.half_open_timeout)
        if ike.established and ike.expires_at is not None and ike.soft_at is not None:
            deadlines.append(ike.expires_at if ike.rekeyed else ike.soft_at)
        return min(deadlines, default=math.inf)

    def _fire(self, item: Timed, now: float) -> None:
        if isinstance(item, IkeSa):
            if self._sas.ike.get(item.cookies) is item:
                self._ike_timers(item, now)
        elif isinstance(item, IpsecSa):
            if self._sas.children.get(item.inbound_spi) is item:
                self._child_timers(item, now)
        elif isinstance(item, TunnelRuntime):
            if self._tunnels.get(item.policy.name) is item:
                self._service_tunnel(item, now)
        elif isinstance(item, Admission):
            self._admit(now)
        elif self.policy.dpd.enabled:
            self._dpd_timer(item, now)

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

    def _child_timers(self, child: IpsecSa, now: float) -> None:
        if now >= child.expires_at:
            self._delete_child(child, "expired", now, notify_peer=True)
        elif child.delete_at is not None and now >= child.delete_at:
            self._delete_child(child, "rekeyed", now, notify_peer=True)
        elif not child.superseded and now >= child.soft_at:
            self._request_rekey(child)

    def _rekey_phase1(self, ike: IkeSa, now: float) -> None:
        key = ike_peer(ike)
        newer = self._best_ike(*key)
        if self._phase1_in_progress(key) or (newer is not None and newer is not ike
                                             and not newer.rekeyed):
            return
        tunnels = [r for r in self._tunnels_of(key) if r.initiates]
        if tunnels:
            if self._slot_queue or not self._slot_free():
                # The tunnels whose IPsec SAs it carries now need a phase 1
                # (`_orphaned`) and queue for a slot: the first one admitted rekeys.
                ike.log.info("phase 1 with %s reaches its soft lifetime: rekey waits for "
                             "an initiator slot", ike.remote[0])
                return
            ike.log.info("phase 1 with %s reaches its soft lifetime: rekeying", ike.remote[0])
            self.initiate_phase1(tunnels[0].policy, now, rekey=True)
            return
        stranded = [child for child in self._sas.children_of_ike(ike.cookies)
                    if not child.superseded and child.expires_at > (ike.expires_at or 0.0)
                    and child.tunnel in self._tunnels and self._tunnels[child.tunnel].policy.enabled]
        if stranded:
            # "Phase 1 renewal for responder-only tunnels" (module docstring).
            ike.log.info("phase 1 with %s reaches its soft lifetime before its IPsec SAs: "
                         "renewing the phase 1 only", ike.remote[0])
            self.initiate_phase1(self._tunnels[stranded[0].tunnel].policy, now, rekey=True,
                                 path=(ike.local, ike.remote))

    def _request_rekey(self, child: IpsecSa) -> None:
        child.soft_at = math.inf
        self._touch(child)
        runtime = self._tunnels.get(child.tunnel)
        if runtime is not None and runtime.initiates and runtime.rekey_of is None:
            runtime.rekey_of = child.inbound_spi
            self._touch(runtime)



@functools.lru_cache(maxsize=8192)
def network_contains(outer: str, inner: str) -> bool:
    """Whether prefix `inner` lies within `outer` (cached: called per Quick Mode)."""
    a = ipaddress.ip_network(outer, strict=False)
    b = ipaddress.ip_network(inner, strict=False)
    return a.version == b.version and b.subnet_of(a)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=8192)
def _normalised(network: str) -> str:
    return str(ipaddress.ip_network(network, strict=False))
