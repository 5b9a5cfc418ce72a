"""Dead peer detection (RFC 3706): what proves a peer alive, R-U-THERE, dead peers.

`Lifecycle` inherits this.  One `PeerLiveness` per peer with an established
phase 1 holds when we last heard from it and the probes in flight; its
deadline (`_dpd_due`) sits in the engine's heap like every other.  The timing
is `DpdPolicy`'s, each peer's idle and silence times shortened by its own
random 0 to `DPD_JITTER`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import informational
from .events import Event, PeerDead
from .policy import EnginePolicy
from .registry import PeerKey, Registry, ike_peer
from .sa import IkeSa, IpsecSa

if TYPE_CHECKING:
    from .lifecycle import TunnelRuntime

#: The most by which a peer's DPD intervals are shortened (`PeerLiveness.shorten`).
DPD_JITTER = 0.2
#: DPD probes fall due on multiples of this many seconds: with thousands of
#: peers the probes due within one tick share one timer wakeup, and their
#: answers arrive together, instead of waking the daemon for each peer
#: (idle CPU at 1,000 peers probed every 30 s is mostly wakeups).
DPD_TICK = 0.5


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


class DeadPeerDetection(ABC):
    """DPD over the engine's tables (`Lifecycle` provides what it uses)."""

    policy: EnginePolicy
    _now: float
    _sas: Registry
    _peers: dict[PeerKey, PeerLiveness]

    @abstractmethod
    def random(self, size: int) -> bytes: ...

    @abstractmethod
    def _uniform(self) -> float: ...

    @abstractmethod
    def _touch(self, item: PeerKey) -> None: ...

    @abstractmethod
    def _count(self, key: str) -> None: ...

    @abstractmethod
    def _emit(self, event: Event) -> None: ...

    @abstractmethod
    def _send(self, data: bytes, local: tuple[str, int], remote: tuple[str, int]) -> None: ...

    @abstractmethod
    def _best_ike(self, local_ip: str, remote_ip: str, *, fresh: bool = False) -> IkeSa | None: ...

    @abstractmethod
    def _tunnels_of(self, key: PeerKey) -> list[TunnelRuntime]: ...

    @abstractmethod
    def _delete_child(self, child: IpsecSa, reason: str, now: float, *,
                      notify_peer: bool) -> None: ...

    @abstractmethod
    def _delete_ike(self, ike: IkeSa, reason: str, now: float, *, notify_peer: bool) -> None: ...

    @abstractmethod
    def _negotiation_failed(self, local_ip: str, remote_ip: str, tunnel: str | None,
                            reason: str, now: float) -> None: ...

    def _heard_from(self, ike: IkeSa, now: float) -> None:
        """Proof of life (RFC 3706): any message authenticated under an ISAKMP SA
        with the peer (a phase 1 that completes, a Quick Mode or Informational
        message whose HASH verified, also one we refuse or drop in a collision)
        postpones DPD, as inbound ESP does through `traffic()`."""
        key = ike_peer(ike)
        live = self._peers.get(key)
        if live is None:
            if not ike.established:
                return
            sequence = int.from_bytes(self.random(4), "big") & 0x7FFFFFFF
            shorten = DPD_JITTER * self._uniform()
            live = self._peers[key] = PeerLiveness(now, now, sequence, shorten)
        live.last_rx, live.probes, live.probe_at = now, 0, None
        self._touch(key)

    def _dpd_ike(self, key: PeerKey) -> IkeSa | None:
        ike = self._best_ike(*key)
        return ike if ike is not None and ike.capabilities.dpd else None

    def _dpd_due(self, live: PeerLiveness) -> float:
        dpd = self.policy.dpd
        if live.probe_at is not None:
            due = live.probe_at + dpd.retry
        else:
            due = live.last_rx + dpd.idle * (1.0 - live.shorten)
            silence_due = live.last_rx + dpd.silence * (1.0 - live.shorten)
            if live.last_tx + dpd.silence / 2 >= max(silence_due, self._now):
                due = min(due, silence_due)
        return math.ceil(due / DPD_TICK) * DPD_TICK

    def _dpd_timer(self, key: PeerKey, now: float) -> None:
        live = self._peers.get(key)
        ike = self._dpd_ike(key)
        if live is None or ike is None or now < self._dpd_due(live):
            return
        dpd = self.policy.dpd
        if live.probe_at is not None and live.probes >= dpd.retries:
            self._peer_dead(key, now)
            return
        live.sequence = (live.sequence + 1) & 0xFFFFFFFF
        live.probes += 1
        live.probe_at = now
        self._count("dpd_sent")
        ike.log.debug("R-U-THERE %d to %s", live.sequence, ike.remote[0])
        notify = informational.dpd_notify(ike, False, live.sequence)
        self._send(informational.protect(ike, [notify], self.random), ike.local, ike.remote)

    def _dpd_ack(self, ike: IkeSa, sequence: int, now: float) -> None:
        key = ike_peer(ike)
        live = self._peers.get(key)
        if live is None or not 0 <= (live.sequence - sequence) & 0xFFFFFFFF < max(live.probes, 1):
            return
        self._count("dpd_ack_received")
        live.last_rx, live.probes, live.probe_at = now, 0, None
        self._touch(key)

    def _peer_dead(self, key: PeerKey, now: float) -> None:
        self._count("peers_dead")
        tunnels = self._tunnels_of(key)
        first = self._sas.first_ike(key)
        peer = first.remote if first is not None else (key[1], 500)
        ike = self._best_ike(*key)
        if ike is not None:
            ike.log.info("peer %s is dead (no answer to %d R-U-THERE)", key[1],
                         self.policy.dpd.retries)
        names: list[str | None] = [r.policy.name for r in tunnels]
        for name in names or [None]:
            self._emit(PeerDead(name, peer))
        for child in self._sas.children_of_peer(key):
            self._delete_child(child, "dead peer", now, notify_peer=False)
        for other in self._sas.ike_of_peer(key):
            self._delete_ike(other, "dead peer", now, notify_peer=False)
        self._peers.pop(key, None)
        self._touch(key)
        self._negotiation_failed(key[0], key[1], None, "dead peer", now)
