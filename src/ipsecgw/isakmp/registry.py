"""The engine's tables of ISAKMP SAs, IPsec SAs and Quick Modes, with their indexes.

One engine holds thousands of tunnels (one transport virtual router of a
concentrator), so no lookup made per message or per timer may scan them all:
every question the engine asks ("the phase 1 SAs with this peer", "the IPsec
SAs of this tunnel", "is a Quick Mode running for it") is answered from an
index here, in time proportional to the answer.  Only this class changes the
tables, so the indexes cannot drift from them.

A peer is keyed by (local address, peer address): addresses, not ports, which
change when NAT-T floats to 4500 (the engine never changes an SA's addresses).

One address may stand for many peers (road warriors behind a carrier NAT, a
load generator's identities): thousands of SAs under one `PeerKey`.  So the
per-peer questions are indexed too: the phase 1 SAs in progress (ours as
initiator apart), the established ones being replaced or not (newest first),
and the SAs of one *entity*, the (address, authenticated identity) that
INITIAL-CONTACT speaks for (collisions.py).  An ISAKMP SA joins the entity
index when it is established (`established`): its identity is authenticated
only then, and only established ones are INITIAL-CONTACT's victims.  The
state changes these indexes follow (established, `rekeyed`) go through here.
"""

from __future__ import annotations

import heapq
from operator import itemgetter
from typing import Any, TypeVar

from .codec import Identification
from .constants import IdType
from .sa import IkeSa, IpsecSa, QuickMode, Role

PeerKey = tuple[str, str]  # (local address, peer address)
#: A peer identity as INITIAL-CONTACT compares it (`peer_entity`).
Entity = tuple[int, bytes]
EntityKey = tuple[PeerKey, Entity | None]
K = TypeVar("K")
V = TypeVar("V")


def ike_peer(ike: IkeSa) -> PeerKey:
    return (ike.local[0], ike.remote[0])


def child_peer(child: IpsecSa) -> PeerKey:
    return (child.local[0], child.peer[0])


def peer_entity(payload: Identification | None) -> Entity | None:
    """A phase 1 ID payload reduced to what names the peer: its type and value
    (protocol and port aside), names without regard to case.  None stays None."""
    if payload is None:
        return None
    if payload.id_type in (IdType.FQDN, IdType.USER_FQDN):
        return (int(payload.id_type), payload.data.lower())
    return (int(payload.id_type), payload.data)


class _Newest:
    """A set of established ISAKMP SAs that yields its newest (latest
    `established_at`, the first added among equals) without a scan: a heap
    whose entries for members that left are dropped when they surface."""

    def __init__(self) -> None:
        self.members: dict[IkeSa, int] = {}  # SA -> its order of addition to the registry
        self._heap: list[tuple[float, int, IkeSa]] = []

    def add(self, ike: IkeSa, order: int) -> None:
        self.members[ike] = order
        heapq.heappush(self._heap, (-(ike.established_at or 0.0), order, ike))

    def discard(self, ike: IkeSa) -> None:
        if self.members.pop(ike, None) is not None and \
                len(self._heap) > 2 * len(self.members) + 8:
            # Departed members buried in the heap: rebuild (amortised O(1)).
            self._heap = [(-(sa.established_at or 0.0), order, sa)
                          for sa, order in self.members.items()]
            heapq.heapify(self._heap)

    def newest(self) -> IkeSa | None:
        heap = self._heap
        while heap and heap[0][2] not in self.members:
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def in_order_added(self) -> list[IkeSa]:
        return [ike for ike, _ in sorted(self.members.items(), key=itemgetter(1))]


class Registry:
    def __init__(self) -> None:
        self.ike: dict[bytes, IkeSa] = {}  # by CKY-I | CKY-R (CKY-R zero until MM2/AM2)
        self.children: dict[bytes, IpsecSa] = {}  # by inbound SPI
        self._ike_by_peer: dict[PeerKey, dict[IkeSa, None]] = {}
        # The SAs a peer initiated, by (CKY-I, peer address): a repeated first
        # message must not open a second one.
        self._responders: dict[tuple[bytes, str], IkeSa] = {}
        # The peers' phase 1 attempts not established yet, and subscribers'
        # phase 1s waiting for their login result (`logged_in`).
        self._half_open: set[IkeSa] = set()
        self._half_open_by_source: dict[str, int] = {}  # peer address -> its half-open SAs
        self._initiating: set[IkeSa] = set()  # our phase 1 attempts not yet established
        # Per peer: SAs not established yet, of which our own attempts; the
        # established ones, not being replaced (`fresh`) or being replaced.
        self._pending_by_peer: dict[PeerKey, dict[IkeSa, None]] = {}
        self._initiating_by_peer: dict[PeerKey, dict[IkeSa, None]] = {}
        self._fresh_by_peer: dict[PeerKey, _Newest] = {}
        self._replaced_by_peer: dict[PeerKey, _Newest] = {}
        self._ike_by_entity: dict[EntityKey, dict[IkeSa, None]] = {}  # established ones
        self._entity_of: dict[IkeSa, EntityKey] = {}  # its key in `_ike_by_entity`
        self._order: dict[IkeSa, int] = {}  # order of addition (ties in `newest_ike`)
        self._added = 0
        self._children_by_tunnel: dict[str, dict[bytes, IpsecSa]] = {}
        self._children_by_peer: dict[PeerKey, dict[bytes, IpsecSa]] = {}
        self._children_by_ike: dict[bytes, dict[bytes, IpsecSa]] = {}
        self._by_outbound: dict[tuple[PeerKey, bytes], IpsecSa] = {}
        self._children_by_entity: dict[EntityKey, dict[bytes, IpsecSa]] = {}
        self._quick_modes: dict[str, dict[QuickMode, IkeSa]] = {}

    # --- ISAKMP SAs -------------------------------------------------------------

    def add_ike(self, ike: IkeSa) -> None:
        key = ike_peer(ike)
        self.ike[ike.cookies] = ike
        self._ike_by_peer.setdefault(key, {})[ike] = None
        self._added += 1
        self._order[ike] = self._added
        if ike.role is Role.RESPONDER:
            self._responders[(ike.cookie_i, ike.remote[0])] = ike
        if ike.established:
            self._index_established(ike)
            return
        self._pending_by_peer.setdefault(key, {})[ike] = None
        if ike.role is Role.RESPONDER:
            self._half_open.add(ike)
            source = ike.remote[0]
            self._half_open_by_source[source] = self._half_open_by_source.get(source, 0) + 1
        else:
            self._initiating.add(ike)
            self._initiating_by_peer.setdefault(key, {})[ike] = None

    def remove_ike(self, ike: IkeSa) -> None:
        if self.ike.get(ike.cookies) is not ike:
            return
        key = ike_peer(ike)
        del self.ike[ike.cookies]
        unindex(self._ike_by_peer, key, ike)
        if self._responders.get((ike.cookie_i, ike.remote[0])) is ike:
            del self._responders[(ike.cookie_i, ike.remote[0])]
        self._close_half_open(ike)
        self._initiating.discard(ike)
        unindex(self._pending_by_peer, key, ike)
        unindex(self._initiating_by_peer, key, ike)
        for newest in (self._fresh_by_peer, self._replaced_by_peer):
            self._leave(newest, key, ike)
        entity = self._entity_of.pop(ike, None)
        if entity is not None:
            unindex(self._ike_by_entity, entity, ike)
        del self._order[ike]
        for qm in list(ike.quick_modes.values()):
            self.end_quick_mode(ike, qm)

    def set_responder_cookie(self, ike: IkeSa, cookie_r: bytes) -> None:
        del self.ike[ike.cookies]
        ike.set_responder_cookie(cookie_r)
        self.ike[ike.cookies] = ike

    def established(self, ike: IkeSa) -> None:
        """Phase 1 has completed (`ike.state`, `established_at` and `peer_id` set).

        A dynamic subscriber's phase 1 (`ike.profile`) stays half-open until
        its login has a result (`logged_in`): a client that completes phase
        1 but never finishes XAUTH holds as much as one that never finishes
        phase 1, and must count against the same limits."""
        key = ike_peer(ike)
        if self.ike.get(ike.cookies) is not ike or ike not in self._pending_by_peer.get(key, ()):
            return
        if ike.profile is None:
            self._close_half_open(ike)
        self._initiating.discard(ike)
        unindex(self._pending_by_peer, key, ike)
        unindex(self._initiating_by_peer, key, ike)
        self._index_established(ike)

    def logged_in(self, ike: IkeSa) -> None:
        """A subscriber's login has its result (accepted or refused): its phase 1
        is no longer half-open."""
        if self.ike.get(ike.cookies) is ike and ike.established:
            self._close_half_open(ike)

    def _close_half_open(self, ike: IkeSa) -> None:
        if ike not in self._half_open:
            return
        self._half_open.discard(ike)
        source = ike.remote[0]
        left = self._half_open_by_source[source] - 1
        if left:
            self._half_open_by_source[source] = left
        else:
            del self._half_open_by_source[source]

    def _index_established(self, ike: IkeSa) -> None:
        key = ike_peer(ike)
        buckets = self._replaced_by_peer if ike.rekeyed else self._fresh_by_peer
        buckets.setdefault(key, _Newest()).add(ike, self._order[ike])
        entity = self._entity_of[ike] = (key, peer_entity(ike.peer_id))
        self._ike_by_entity.setdefault(entity, {})[ike] = None

    def rekeyed(self, ike: IkeSa) -> None:
        """Mark an established phase 1 as being replaced (its soft lifetime)."""
        if ike.rekeyed:
            return
        ike.rekeyed = True
        key = ike_peer(ike)
        fresh = self._fresh_by_peer.get(key)
        if fresh is not None and ike in fresh.members:
            self._leave(self._fresh_by_peer, key, ike)
            self._replaced_by_peer.setdefault(key, _Newest()).add(ike, self._order[ike])

    @staticmethod
    def _leave(index: dict[PeerKey, _Newest], key: PeerKey, ike: IkeSa) -> None:
        newest = index.get(key)
        if newest is not None:
            newest.discard(ike)
            if not newest.members:
                del index[key]

    def ike_of_peer(self, key: PeerKey) -> list[IkeSa]:
        """Every phase 1 SA with the peer (a scan: for commands and dead peers only)."""
        return list(self._ike_by_peer.get(key, ()))

    def ike_count(self, key: PeerKey) -> int:
        return len(self._ike_by_peer.get(key, ()))

    def first_ike(self, key: PeerKey) -> IkeSa | None:
        """The oldest phase 1 SA with the peer."""
        return next(iter(self._ike_by_peer.get(key, ())), None)

    def newest_ike(self, key: PeerKey, *, replaced: bool) -> IkeSa | None:
        """The latest established phase 1 with the peer that is being replaced
        (`replaced`) or not; the first added among equals."""
        newest = (self._replaced_by_peer if replaced else self._fresh_by_peer).get(key)
        return newest.newest() if newest is not None else None

    def best_ike(self, key: PeerKey, *, fresh: bool = False) -> IkeSa | None:
        """The newest established phase 1 with a peer, preferring one not being
        replaced (`fresh`: only one not being replaced)."""
        best = self.newest_ike(key, replaced=False)
        if best is None and not fresh:
            best = self.newest_ike(key, replaced=True)
        return best

    def replaced_ike(self, key: PeerKey) -> list[IkeSa]:
        """The peer's established phase 1 SAs being replaced, in order of addition."""
        newest = self._replaced_by_peer.get(key)
        return newest.in_order_added() if newest is not None else []

    def has_established(self, key: PeerKey) -> bool:
        return key in self._fresh_by_peer or key in self._replaced_by_peer

    def phase1_in_progress(self, key: PeerKey) -> bool:
        return key in self._pending_by_peer

    def initiating_of_peer(self, key: PeerKey) -> list[IkeSa]:
        """Our own phase 1 attempts with the peer not established yet, in order of addition."""
        return list(self._initiating_by_peer.get(key, ()))

    def ike_of_entity(self, key: PeerKey, entity: Entity | None) -> list[IkeSa]:
        """The established phase 1 SAs with the peer authenticated as `entity`,
        in order of addition."""
        bucket = self._ike_by_entity.get((key, entity), {})
        return sorted(bucket, key=self._order.__getitem__)

    def responder_sa(self, cookie_i: bytes, peer_ip: str) -> IkeSa | None:
        return self._responders.get((cookie_i, peer_ip))

    def half_open_count(self, source: str | None = None) -> int:
        """The peers' phase 1 attempts we answer that are not established yet,
        and the subscribers whose login has no result yet (from the peer
        address `source` only, if given)."""
        if source is not None:
            return self._half_open_by_source.get(source, 0)
        return len(self._half_open)

    def initiating_count(self) -> int:
        """Our own phase 1 attempts that are not established yet."""
        return len(self._initiating)

    # --- IPsec SAs --------------------------------------------------------------

    def add_child(self, child: IpsecSa) -> None:
        spi = child.inbound_spi
        self.children[spi] = child
        self._children_by_tunnel.setdefault(child.tunnel, {})[spi] = child
        self._children_by_peer.setdefault(child_peer(child), {})[spi] = child
        self._children_by_ike.setdefault(child.ike_cookies, {})[spi] = child
        self._by_outbound[(child_peer(child), child.outbound_spi)] = child
        self._children_by_entity.setdefault(
            (child_peer(child), peer_entity(child.peer_id)), {})[spi] = child

    def remove_child(self, child: IpsecSa) -> None:
        spi = child.inbound_spi
        if self.children.get(spi) is not child:
            return
        del self.children[spi]
        unindex(self._children_by_tunnel, child.tunnel, spi)
        unindex(self._children_by_peer, child_peer(child), spi)
        unindex(self._children_by_ike, child.ike_cookies, spi)
        if self._by_outbound.get((child_peer(child), child.outbound_spi)) is child:
            del self._by_outbound[(child_peer(child), child.outbound_spi)]
        unindex(self._children_by_entity, (child_peer(child), peer_entity(child.peer_id)), spi)

    def children_of_tunnel(self, tunnel: str) -> list[IpsecSa]:
        """Oldest first."""
        return list(self._children_by_tunnel.get(tunnel, {}).values())

    def children_of_peer(self, key: PeerKey) -> list[IpsecSa]:
        return list(self._children_by_peer.get(key, {}).values())

    def children_of_ike(self, cookies: bytes) -> list[IpsecSa]:
        return list(self._children_by_ike.get(cookies, {}).values())

    def children_of_entity(self, key: PeerKey, entity: Entity | None) -> list[IpsecSa]:
        """The IPsec SAs with the peer negotiated under a phase 1 authenticated as
        `entity`, oldest first."""
        return list(self._children_by_entity.get((key, entity), {}).values())

    def has_children(self, key: PeerKey) -> bool:
        return key in self._children_by_peer

    def child_by_outbound(self, key: PeerKey, spi: bytes) -> IpsecSa | None:
        return self._by_outbound.get((key, spi))

    # --- Quick Modes --------------------------------------------------------------

    def start_quick_mode(self, ike: IkeSa, qm: QuickMode) -> None:
        """Index a Quick Mode that quick_mode.py has put into `ike.quick_modes`."""
        self._quick_modes.setdefault(qm.tunnel, {})[qm] = ike

    def end_quick_mode(self, ike: IkeSa, qm: QuickMode) -> None:
        if ike.quick_modes.get(qm.message_id) is qm:
            del ike.quick_modes[qm.message_id]
        unindex(self._quick_modes, qm.tunnel, qm)

    def quick_modes_of_tunnel(self, tunnel: str) -> list[tuple[QuickMode, IkeSa]]:
        return list(self._quick_modes.get(tunnel, {}).items())

    def quick_mode_running(self, tunnel: str) -> bool:
        return tunnel in self._quick_modes


def unindex(index: dict[K, dict[V, Any]], key: K, item: V) -> None:
    """Remove `item` from the bucket `key`, and the bucket once empty."""
    bucket = index.get(key)
    if bucket is not None:
        bucket.pop(item, None)
        if not bucket:
            del index[key]
