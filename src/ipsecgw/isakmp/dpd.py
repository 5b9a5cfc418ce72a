"""Dead peer detection (RFC 3706): what proves a peer alive, R-U-THERE, dead peers.

One `PeerLiveness` per peer with an established phase 1 holds when we last
heard from it and the probes in flight.  A peer is what `dpd_key` says: for
a configured tunnel's peer its address (`PeerKey`, every phase 1 with it
speaks for it, the newest is probed); for a dynamic subscriber its own
phase 1 (`SubscriberPeer`).  Many subscribers come from one NAT address,
and often from one NAT mapping too (a load generator's clients share a
socket; a vpnc restarted behind a NAT may get the same port back): keyed
by address, or by address and port, a silent client stayed "alive" while
its neighbours talked, and the client whose phase 1 happened to be probed
took all the others with it when it went.  `DeadPeerDetection` owns them and
sends the probes through the engine's outbox; its deadline per peer (`due`)
sits in the engine's heap like every other, and `probe` tells the engine when
a peer is dead (the engine then removes its SAs).  The timing is
`DpdPolicy`'s, each peer's idle and silence times shortened by its own random
0 to `DPD_JITTER`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ipsecgw.status import DpdStatus

from . import informational
from .outbox import Outbox
from .policy import DpdPolicy
from .registry import PeerKey, Registry, ike_peer
from .sa import IkeSa

#: The most by which a peer's DPD intervals are shortened (`PeerLiveness.shorten`).
DPD_JITTER = 0.2
#: DPD probes fall due on multiples of this many seconds: with thousands of
#: peers the probes due within one tick share one timer wakeup, and their
#: answers arrive together, instead of waking the daemon for each peer
#: (idle CPU at 1,000 peers probed every 30 s is mostly wakeups).
DPD_TICK = 0.5


@dataclass(frozen=True)
class SubscriberPeer:
    """A dynamic subscriber as DPD knows it: its phase 1 (cookie pair), which
    is the whole subscriber (subscribers.py; we never rekey it)."""

    cookies: bytes


#: What DPD keeps one liveness for (see the module docstring).
DpdKey = PeerKey | SubscriberPeer


def dpd_key(ike: IkeSa) -> DpdKey:
    """The peer whose liveness a message under `ike` proves."""
    return SubscriberPeer(ike.cookies) if ike.profile is not None else ike_peer(ike)


@dataclass(eq=False)
class PeerLiveness:
    """DPD state of one peer (RFC 3706): last traffic each way and probes in flight.

    `shorten` (0 to `DPD_JITTER`, drawn once per peer) shortens the peer's idle
    and silence intervals: peers that came up together, or were all heard
    from at once, are probed spread over a fifth of the interval instead of
    in one burst that the peers cannot answer in time (docs/BENCHMARKS.md:
    10,000 synchronised probes every 30 s left 37 % unanswered).
    """

    last_rx: float
    last_tx: float
    sequence: int
    shorten: float = 0.0
    probes: int = 0
    probe_at: float | None = None
    last_probe: float | None = None  # the last R-U-THERE sent, answered or not


class DeadPeerDetection:
    """The liveness of every peer; `touch(key)` tells the engine a peer's deadline moved."""

    def __init__(self, policy: DpdPolicy, sas: Registry, outbox: Outbox,
                 random: Callable[[int], bytes], touch: Callable[[DpdKey], None]) -> None:
        self.policy = policy
        self._sas = sas
        self._outbox = outbox
        self._random = random
        self._touch = touch
        self._peers: dict[DpdKey, PeerLiveness] = {}

    def heard_from(self, ike: IkeSa, now: float) -> None:
        """Proof of life (RFC 3706): any message authenticated under an ISAKMP SA
        with the peer (a phase 1 that completes, a Quick Mode or Informational
        message whose HASH verified, also one we refuse or drop in a collision)
        postpones DPD, as inbound ESP does through `traffic`."""
        key = dpd_key(ike)
        live = self._peers.get(key)
        if live is None:
            if not ike.established:
                return
            sequence = int.from_bytes(self._random(4), "big") & 0x7FFFFFFF
            shorten = DPD_JITTER * int.from_bytes(self._random(2), "big") / 0xFFFF
            live = self._peers[key] = PeerLiveness(now, now, sequence, shorten)
        live.last_rx, live.probes, live.probe_at = now, 0, None
        self._touch(key)

    def traffic(self, key: DpdKey, inbound: bool, outbound: bool, now: float) -> None:
        """The data plane carried ESP from (`inbound`) or to the peer."""
        live = self._peers.get(key)
        if live is None:
            return
        if inbound:
            live.last_rx, live.probes, live.probe_at = now, 0, None
        if outbound:
            live.last_tx = now
        self._touch(key)

    def ack(self, ike: IkeSa, sequence: int, now: float) -> None:
        key = dpd_key(ike)
        live = self._peers.get(key)
        if live is None or not 0 <= (live.sequence - sequence) & 0xFFFFFFFF < max(live.probes, 1):
            return
        self._outbox.count("dpd_ack_received")
        live.last_rx, live.probes, live.probe_at = now, 0, None
        self._touch(key)

    def due(self, key: DpdKey, now: float) -> float | None:
        """When the peer is next probed (or declared dead); None: never."""
        live = self._peers.get(key)
        if live is None or not self.policy.enabled or self._probe_sa(key) is None:
            return None
        return self._due(live, now)

    def probe(self, key: DpdKey, now: float) -> bool:
        """Send the R-U-THERE that fell due; True if the peer is dead instead."""
        live = self._peers.get(key)
        ike = self._probe_sa(key)
        if live is None or ike is None or not self.policy.enabled or now < self._due(live, now):
            return False
        if live.probe_at is not None and live.probes >= self.policy.retries:
            return True
        live.sequence = (live.sequence + 1) & 0xFFFFFFFF
        live.probes += 1
        live.probe_at = live.last_probe = now
        self._outbox.count("dpd_sent")
        ike.log.debug("R-U-THERE %d to %s", live.sequence, ike.remote[0])
        notify = informational.dpd_notify(ike, False, live.sequence)
        self._outbox.send(informational.protect(ike, [notify], self._random), ike.local,
                          ike.remote)
        return False

    def status(self, key: DpdKey, now: float) -> DpdStatus:
        """The peer's DPD state for `show ipsec tunnel detail`."""
        live = self._peers.get(key)
        if not self.policy.enabled:
            return DpdStatus("disabled")
        if live is None:
            return DpdStatus("no phase 1")
        if self._probe_sa(key) is None:
            return DpdStatus("not supported by the peer")
        state = f"probing, {live.probes} unanswered" if live.probes else "peer alive"
        return DpdStatus(state, live.last_rx, live.last_probe, self._due(live, now))

    def forget(self, key: DpdKey) -> None:
        self._peers.pop(key, None)
        self._touch(key)

    def forget_if_unused(self, key: DpdKey) -> None:
        """Once no established phase 1 with the peer is left."""
        if key in self._peers and self._phase1(key) is None:
            self.forget(key)

    def _phase1(self, key: DpdKey) -> IkeSa | None:
        """The established phase 1 that speaks for the peer: a subscriber's own,
        or the newest with a peer address."""
        if isinstance(key, SubscriberPeer):
            ike = self._sas.ike.get(key.cookies)
            return ike if ike is not None and ike.established else None
        return self._sas.best_ike(key)

    def _probe_sa(self, key: DpdKey) -> IkeSa | None:
        ike = self._phase1(key)
        return ike if ike is not None and ike.capabilities.dpd else None

    def _due(self, live: PeerLiveness, now: float) -> float:
        dpd = self.policy
        if live.probe_at is not None:
            due = live.probe_at + dpd.retry
        else:
            due = live.last_rx + dpd.idle * (1.0 - live.shorten)
            silence_due = live.last_rx + dpd.silence * (1.0 - live.shorten)
            if live.last_tx + dpd.silence / 2 >= max(silence_due, now):
                due = min(due, silence_due)
        return math.ceil(due / DPD_TICK) * DPD_TICK
