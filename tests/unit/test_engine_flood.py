"""A slow flood of spoofed Main Mode first messages (issue 13.1).

50 MM1 per second from one address must neither block a real peer's phase 1
(it goes through within 2 s) nor turn the responder into an amplifier.
"""

from __future__ import annotations

from engine_helpers import A_IP, B_IP, PSK, Pair, make_pair, policies, rng, tunnel

from ipsecgw.isakmp.engine import Datagram, Engine
from ipsecgw.isakmp.events import Phase1Established
from ipsecgw.isakmp.policy import EnginePolicy, Identity, IkeRule

FLOOD_IP = "10.99.0.3"
RATE = 50  # first messages per second


def _first_message() -> bytes:
    """A well-formed MM1 that B's IKE rules accept (built by a throwaway engine)."""
    engine = Engine(EnginePolicy(vr="x", local_addresses=(FLOOD_IP,),
                                 ike_rules=(IkeRule(group=19),), preshared_keys={B_IP: PSK},
                                 tunnels=(tunnel("x", FLOOD_IP, B_IP),)), rng=rng(9))
    engine.handle_timer(0.0)
    (datagram,) = engine.datagrams_to_send(0.0)
    return datagram.data


class Flood:
    """Spoofed MM1s from FLOOD_IP into B; counts what B sends back there."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.template = _first_message()
        self.sent = 0
        self.answers = 0
        self.cookie = rng(3)
        pair.filter = self._filter

    def _filter(self, direction: str, datagram: Datagram, index: int) -> int:
        if direction == "ba" and datagram.remote[0] == FLOOD_IP:
            self.answers += 1
            return 0  # the spoofed source never answers
        return 1

    def run(self, seconds: float, until: object = None) -> float | None:
        """Flood for `seconds`; returns when `until()` first held, if given."""
        step = 1.0 / RATE
        for _ in range(int(seconds * RATE)):
            data = self.cookie(8) + self.template[8:]
            self.pair.b.receive_datagram(data, (B_IP, 500), (FLOOD_IP, 500), self.pair.now)
            self.sent += 1
            self.pair.advance(step)
            if until is not None and until():  # type: ignore[operator]
                return self.pair.now
        return None


def _established(pair: Pair) -> bool:
    return bool(pair.events("a", Phase1Established, pair.booted["a"]))


def _real_peer_during_flood(policy_b: EnginePolicy) -> tuple[Pair, Flood, float | None, float]:
    policy_a, _ = policies()
    pair = make_pair(policy_a, policy_b)
    pair.stop("a")
    flood = Flood(pair)
    flood.run(40.0)  # long enough to fill any table that the flood can fill
    started = pair.now
    pair.boot("a", seed=11)
    done = flood.run(10.0, until=lambda: _established(pair))
    return pair, flood, done, started


def test_flood_from_an_address_no_configuration_accepts_gets_no_state_and_no_reply() -> None:
    # A responder-only tunnel for A, a key for A only: 10.99.0.3 can never
    # authenticate, so its first messages cost nothing and get nothing.
    _, policy_b = policies(b_tunnel={"initiate": False})
    pair, flood, done, started = _real_peer_during_flood(policy_b)
    assert done is not None and done - started <= 2.0
    assert flood.answers == 0
    assert all(ike.remote[0] != FLOOD_IP for ike in pair.b._sas.ike.values())
    assert pair.b.statistics()["dropped_unknown_peer"] == flood.sent


def test_flood_from_an_acceptable_address_is_held_per_source_and_not_amplified() -> None:
    # A tunnel that knows its peer by identity: a first message from any
    # address might be that peer, so the flood does get answers and state, but one source holds at most its share of the
    # half-open table, and gets at most one answer per message it sent.
    _, policy_b = policies(b_tunnel={"initiate": False,
                                     "peer_identity": Identity("address", A_IP)})
    pair, flood, done, started = _real_peer_during_flood(policy_b)
    assert done is not None and done - started <= 2.0
    assert 0 < flood.answers <= flood.sent
    from_flood = [ike for ike in pair.b._sas.ike.values() if ike.remote[0] == FLOOD_IP]
    assert len(from_flood) <= policy_b.half_open_per_source_limit
    assert pair.b.statistics()["dropped_half_open_limit"] > 0


def test_responder_sends_one_answer_per_first_message_it_received() -> None:
    """An unauthenticated first contact gets no retransmissions: a peer that
    lost our MM2 repeats its MM1 and gets MM2 again from the reply cache."""
    pair = make_pair(*policies(b_tunnel={"initiate": False}))
    pair.a.handle_timer(pair.now)
    (mm1,) = pair.a.datagrams_to_send(pair.now)
    pair.stop("a")  # A goes silent after its MM1 (or was never there: spoofed)
    pair.b.receive_datagram(mm1.data, mm1.remote, mm1.local, pair.now)
    pair.advance(120.0)
    assert pair.counts["ba"] == 1
    assert pair.b.statistics()["retransmits"] == 0


def test_a_lost_mm2_is_answered_again_when_the_initiator_repeats_mm1() -> None:
    pair = make_pair(*policies(b_tunnel={"initiate": False}))

    def lose_first_mm2(direction: str, datagram: Datagram, index: int) -> int:
        return 0 if (direction, index) == ("ba", 0) else 1

    pair.filter = lose_first_mm2
    pair.a.handle_timer(pair.now)
    pair.pump()
    pair.advance(10.0)
    assert _established(pair) and pair.consistent()
    assert pair.b.statistics()["retransmits"] == 1  # the cached MM2, once
