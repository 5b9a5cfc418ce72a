"""Our Quick Modes on one ISAKMP SA take turns (isakmp/turns.py).

B stands for a strongSwan peer, which keeps the IV chains of the last three
exchanges of an ISAKMP SA only (charon.max_ikev1_exchanges): `ThreeIvPeer`
watches the message IDs of every datagram between A and B (both ways: the
peer's own messages refresh its list too) and records each message that
continues an exchange whose IV such a peer had already dropped. The
kernel VM test with strongSwan saw exactly that: two tunnels renewed at once
on a new phase 1, with the Deletes of their old SAs in between, and
strongSwan refused the second HASH(3) (PAYLOAD-MALFORMED).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine_helpers import A_IP, B_IP, Pair, make_pair, policies, tunnel

from ipsecgw.isakmp.codec import Message
from ipsecgw.isakmp.engine import Datagram
from ipsecgw.isakmp.events import IpsecSaEstablished, Phase1Established
from ipsecgw.isakmp.policy import EnginePolicy, IkeRule
from ipsecgw.isakmp.sa import Role

TUNNELS = 5
KEPT = 3  # strongSwan's default charon.max_ikev1_exchanges


@dataclass
class ThreeIvPeer:
    recent: dict[bytes, list[int]] = field(default_factory=dict)  # cookies -> MRU IDs
    seen: set[tuple[bytes, int]] = field(default_factory=set)
    lost: list[tuple[str, int]] = field(default_factory=list)  # (direction, message ID)
    most_in_flight: int = 0  # of A's own Quick Modes on one ISAKMP SA
    pair: Pair | None = None

    def __call__(self, direction: str, datagram: Datagram, index: int) -> int:
        header = Message.decode_header(datagram.data)
        if self.pair is not None:
            for ike in self.pair.a._sas.ike.values():
                ours = sum(qm.role is Role.INITIATOR for qm in ike.quick_modes.values())
                self.most_in_flight = max(self.most_in_flight, ours)
        if header.message_id == 0:
            return 1
        cookies = header.initiator_cookie + header.responder_cookie
        exchange = (cookies, header.message_id)
        recent = self.recent.setdefault(cookies, [])
        if exchange in self.seen and header.message_id not in recent:
            self.lost.append((direction, header.message_id))
        if header.message_id in recent:
            recent.remove(header.message_id)
        recent.insert(0, header.message_id)
        del recent[KEPT:]
        self.seen.add(exchange)
        return 1


def _pair() -> tuple[Pair, ThreeIvPeer]:
    """A with TUNNELS tunnels to B on one ISAKMP SA (phase 1 lifetime 100 s)."""
    policy_a, policy_b = policies(rules=(IkeRule(group=19, lifetime_seconds=100),))
    extra_a = tuple(tunnel(f"t{n}", A_IP, B_IP, local_network=f"10.97.{n}.0/24",
                           remote_network=f"10.96.{n}.0/24") for n in range(1, TUNNELS))
    extra_b = tuple(tunnel(f"t{n}", B_IP, A_IP, local_network=f"10.96.{n}.0/24",
                           remote_network=f"10.97.{n}.0/24") for n in range(1, TUNNELS))
    pair = make_pair(EnginePolicy(**{**policy_a.__dict__,
                                     "tunnels": policy_a.tunnels + extra_a}),
                     EnginePolicy(**{**policy_b.__dict__,
                                     "tunnels": policy_b.tunnels + extra_b}))
    peer = ThreeIvPeer(pair=pair)
    pair.filter = peer
    return pair, peer


def _installed(pair: Pair, since: int = 0) -> set[str]:
    return {e.tunnel for e in pair.events("b", IpsecSaEstablished, since)}


def _every_tunnel_took_its_turn(pair: Pair, peer: ThreeIvPeer, since: int = 0) -> None:
    assert len(_installed(pair, since)) == TUNNELS and pair.consistent()
    assert peer.most_in_flight == 1
    assert peer.lost == []


def test_first_contact_quick_modes_take_turns() -> None:
    pair, peer = _pair()
    pair.start()
    assert len(pair.events("a", Phase1Established)) == 1
    _every_tunnel_took_its_turn(pair, peer)


def test_clear_phase1_renews_every_tunnel_without_losing_an_iv() -> None:
    pair, peer = _pair()
    pair.start()
    mark = len(pair.events("b", IpsecSaEstablished))
    # each renewal's Delete of the replaced SA goes between the Quick Modes
    assert pair.a.clear_sa(None, 1, pair.now) == 1
    pair.advance(5)
    _every_tunnel_took_its_turn(pair, peer, mark)


def test_phase1_rekeys_renew_every_tunnel_without_losing_an_iv() -> None:
    pair, peer = _pair()
    pair.start()
    mark = len(pair.events("b", IpsecSaEstablished))
    pair.advance(250)  # two or three phase 1 rekeys
    assert len(pair.events("a", Phase1Established)) >= 3
    _every_tunnel_took_its_turn(pair, peer, mark)
