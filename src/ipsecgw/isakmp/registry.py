"""The engine's tables of ISAKMP SAs, IPsec SAs and Quick Modes, with their indexes.

One engine holds thousands of tunnels (one transport virtual router of a
concentrator), so no lookup made per message or per timer may scan them all:
every question the engine asks ("the phase 1 SAs with this peer", "the IPsec
SAs of this tunnel", "is a Quick Mode running for it") is answered from an
index here, in time proportional to the answer.  Only this class changes the
tables, so the indexes cannot drift from them.

A peer is keyed by (local address, peer address): addresses, not ports, which
change when NAT-T floats to 4500 (the engine never changes an SA's addresses).
"""

from __future__ import annotations

from typing import Any, TypeVar

from .sa import IkeSa, IpsecSa, QuickMode, Role

PeerKey = tuple[str, str]  # (local address, peer address)
K = TypeVar("K")
V = TypeVar("V")


def ike_peer(ike: IkeSa) -> PeerKey:
    return (ike.local[0], ike.remote[0])


def child_peer(child: IpsecSa) -> PeerKey:
    return (child.local[0], child.peer[0])


class Registry:
    def __init__(self) -> None:
        self.ike: dict[bytes, IkeSa] = {}  # by CKY-I | CKY-R (CKY-R zero until MM2/AM2)
        self.children: dict[bytes, IpsecSa] = {}  # by inbound SPI
        self._ike_by_peer: dict[PeerKey, dict[IkeSa, None]] = {}
        # The SAs a peer initiated, by (CKY-I, peer address): a repeated first
        # message must not open a second one.
        self._responders: dict[tuple[bytes, str], IkeSa] = {}
        self._half_open: set[IkeSa] = set()
        self._initiating: set[IkeSa] = set()  # our phase 1 attempts not yet established
        self._children_by_tunnel: dict[str, dict[bytes, IpsecSa]] = {}
        self._children_by_peer: dict[PeerKey, dict[bytes, IpsecSa]] = {}
        self._children_by_ike: dict[bytes, dict[bytes, IpsecSa]] = {}
        self._by_outbound: dict[tuple[PeerKey, bytes], IpsecSa] = {}
        self._quick_modes: dict[str, dict[QuickMode, IkeSa]] = {}

    # --- ISAKMP SAs -------------------------------------------------------------

    def add_ike(self, ike: IkeSa) -> None:
        self.ike[ike.cookies] = ike
        self._ike_by_peer.setdefault(ike_peer(ike), {})[ike] = None
        if ike.role is Role.RESPONDER:
            self._responders[(ike.cookie_i, ike.remote[0])] = ike
            if not ike.established:
                self._half_open.add(ike)
        elif not ike.established:
            self._initiating.add(ike)

    def remove_ike(self, ike: IkeSa) -> None:
        if self.ike.get(ike.cookies) is not ike:
            return
        del self.ike[ike.cookies]
        unindex(self._ike_by_peer, ike_peer(ike), ike)
        if self._responders.get((ike.cookie_i, ike.remote[0])) is ike:
            del self._responders[(ike.cookie_i, ike.remote[0])]
        self._half_open.discard(ike)
        self._initiating.discard(ike)
        for qm in list(ike.quick_modes.values()):
            self.end_quick_mode(ike, qm)

    def set_responder_cookie(self, ike: IkeSa, cookie_r: bytes) -> None:
        del self.ike[ike.cookies]
        ike.set_responder_cookie(cookie_r)
        self.ike[ike.cookies] = ike

    def established(self, ike: IkeSa) -> None:
        self._half_open.discard(ike)
        self._initiating.discard(ike)

    def ike_of_peer(self, key: PeerKey) -> list[IkeSa]:
        return list(self._ike_by_peer.get(key, ()))

    def responder_sa(self, cookie_i: bytes, peer_ip: str) -> IkeSa | None:
        return self._responders.get((cookie_i, peer_ip))

    def half_open_count(self) -> int:
        """The peers' phase 1 attempts we answer that are not established yet."""
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

    def children_of_tunnel(self, tunnel: str) -> list[IpsecSa]:
        """Oldest first."""
        return list(self._children_by_tunnel.get(tunnel, {}).values())

    def children_of_peer(self, key: PeerKey) -> list[IpsecSa]:
        return list(self._children_by_peer.get(key, {}).values())

    def children_of_ike(self, cookies: bytes) -> list[IpsecSa]:
        return list(self._children_by_ike.get(cookies, {}).values())

    def has_children(self, key: PeerKey) -> bool:
        return key in self._children_by_peer

    def child_by_outbound(self, key: PeerKey, spi: bytes) -> IpsecSa | None:
        return self._by_outbound.get((key, spi))

    # --- Quick Modes --------------------------------------------------------------

    def start_quick_mode(self, ike: IkeSa, qm: QuickMode) -> None:
        """Index a Quick Mode that quickmode.py has put into `ike.quick_modes`."""
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
