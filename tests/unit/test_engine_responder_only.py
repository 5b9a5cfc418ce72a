"""Responder-only tunnels (`TunnelPolicy.initiate` False), back to back."""

from __future__ import annotations

from dataclasses import replace

import pytest
from engine_helpers import B_IP, Pair, make_pair, policies, traffic_flows

from ipsecgw.isakmp.codec import Message
from ipsecgw.isakmp.constants import ExchangeType
from ipsecgw.isakmp.events import (
    IpsecSaDeleted,
    IpsecSaEstablished,
    PeerDead,
    Phase1Deleted,
    Phase1Established,
)
from ipsecgw.isakmp.policy import DpdPolicy, IkeRule

FAST_DPD = DpdPolicy(idle=20.0, silence=10.0, retry=2.0, retries=3)


def _initiated_by_a(pair: Pair, since: int = 0, *, side: str = "a") -> list[str]:
    """The exchanges A (or `side`) started: Main/Aggressive Mode first messages, and
    Quick Modes whose message ID A used first (A's answers reuse the ID B chose)."""
    started, seen = [], set()
    outgoing = "ab" if side == "a" else "ba"
    for direction, datagram in pair.wire[since:]:
        message = Message.decode(datagram.data)
        if message.exchange_type == ExchangeType.QUICK_MODE:
            if message.message_id not in seen and direction == outgoing:
                started.append("quick")
            seen.add(message.message_id)
        elif direction == outgoing and message.responder_cookie == bytes(8) and \
                message.exchange_type != ExchangeType.INFORMATIONAL:
            started.append("phase1")
    return started


def _responder_only_a(*, nat: bool = False, **kwargs) -> Pair:
    a_tunnel = {"initiate": False, **kwargs.pop("a_tunnel", {})}
    return make_pair(*policies(a_tunnel=a_tunnel, nat=nat, **kwargs), nat=nat)


def _state(pair: Pair, side: str) -> str:
    engine = pair.engine(side)
    return engine.tunnel_status(pair.now)[0].state


def test_responder_only_never_starts_and_is_down() -> None:
    pair = _responder_only_a()
    pair.a.handle_timer(pair.now)
    assert pair.a.datagrams_to_send(pair.now) == []
    assert pair.a.get_timer() is None
    assert _state(pair, "a") == "down"
    pair.a.handle_timer(pair.now + 100)
    assert pair.a.datagrams_to_send(pair.now) == [] and _state(pair, "a") == "down"


def test_both_responder_only_stay_down() -> None:
    pair = make_pair(*policies(a_tunnel={"initiate": False}, b_tunnel={"initiate": False}))
    pair.start()
    pair.advance(300)
    assert not pair.wire
    assert _state(pair, "a") == _state(pair, "b") == "down"


def test_responder_only_answers_main_mode_and_quick_mode() -> None:
    pair = _responder_only_a()
    pair.a.handle_timer(pair.now)
    pair.b.handle_timer(pair.now)
    pair.pump()
    assert pair.consistent()
    assert _state(pair, "a") == _state(pair, "b") == "up"
    assert pair.events("a", Phase1Established)[0].role == "responder"
    assert pair.events("a", IpsecSaEstablished)
    assert _initiated_by_a(pair) == []


def test_responder_only_answers_aggressive_mode() -> None:
    pair = _responder_only_a(rules=(IkeRule(group=19, aggressive_mode="required"),))
    pair.b.handle_timer(pair.now)
    pair.pump()
    assert pair.consistent()
    assert pair.events("a", Phase1Established)[0].exchange == "aggressive"


def test_responder_only_does_not_rekey_the_peer_does() -> None:
    pair = _responder_only_a(a_tunnel={"lifetime_seconds": 100},
                             b_tunnel={"lifetime_seconds": 100},
                             rules=(IkeRule(group=19, lifetime_seconds=150),))
    pair.b.handle_timer(pair.now)
    pair.pump()
    pair.advance(400)
    assert pair.consistent()
    assert len(pair.events("a", IpsecSaEstablished)) >= 4
    assert _initiated_by_a(pair) == []
    assert len(pair.events("a", Phase1Established)) >= 2
    assert all(e.role == "responder" for e in pair.events("a", Phase1Established))
    # Once B is responder-only too, nobody rekeys: the SAs run out on both sides.
    policy_b = pair.b.policy
    pair.b.update_policy(replace(policy_b, tunnels=(
        replace(policy_b.tunnels[0], initiate=False),)), pair.now)
    pair.advance(200)
    assert not pair.live_sas("a") and not pair.live_sas("b")
    assert _initiated_by_a(pair) == []
    assert pair.events("a", IpsecSaDeleted)[-1].reason in ("expired", "deleted by peer")


def test_responder_only_sas_expire_at_hard_lifetime_without_renegotiation() -> None:
    pair = _responder_only_a(a_tunnel={"lifetime_seconds": 100},
                             b_tunnel={"lifetime_seconds": 100},
                             a={"dpd": replace(DpdPolicy(), enabled=False)})
    pair.b.handle_timer(pair.now)
    pair.pump()
    assert pair.consistent()
    pair.filter = lambda direction, datagram, index: 0  # B goes away
    since = len(pair.wire)
    pair.advance(99.9)
    assert pair.live_sas("a")
    pair.advance(0.2)
    assert [e.reason for e in pair.events("a", IpsecSaDeleted)] == ["expired"]
    assert not pair.live_sas("a") and _state(pair, "a") == "down"
    pair.advance(600)
    assert _initiated_by_a(pair, since) == []
    sent = [Message.decode(d.data).exchange_type for direction, d in pair.wire[since:]
            if direction == "ab"]
    assert set(sent) <= {ExchangeType.INFORMATIONAL}  # the Deletes of what expired
    pair.advance(28800)  # the phase 1 expires too, and then nothing is left to do
    assert pair.a.ike_sa_status(pair.now) == [] and pair.a.get_timer() is None
    assert _initiated_by_a(pair, since) == []


def test_responder_only_after_clear_sa_waits_for_the_peer() -> None:
    pair = _responder_only_a()
    pair.b.handle_timer(pair.now)
    pair.pump()
    old = pair.live_sas("a")
    since = len(pair.wire)
    pair.filter = lambda direction, datagram, index: 0 if direction == "ba" else 1
    assert pair.a.clear_sa(None, None, pair.now) == 2
    pair.advance(30)
    assert not pair.live_sas("a") and _state(pair, "a") == "down"
    assert _initiated_by_a(pair, since) == []
    # The peer (which got the Deletes) comes back by itself; A answers.
    pair.filter = None
    pair.advance(5)
    assert pair.consistent() and not pair.live_sas("a") & old
    assert _initiated_by_a(pair) == []


def test_responder_only_clear_phase1_does_not_start_phase1() -> None:
    pair = _responder_only_a()
    pair.b.handle_timer(pair.now)
    pair.pump()
    since = len(pair.wire)
    assert pair.a.clear_sa(["gw"], 1, pair.now) == 1
    pair.advance(10)
    assert _initiated_by_a(pair, since) == []


def test_responder_only_dead_peer_is_not_reinitiated() -> None:
    pair = _responder_only_a(a={"dpd": FAST_DPD}, b={"dpd": FAST_DPD})
    pair.b.handle_timer(pair.now)
    pair.pump()
    since = len(pair.wire)
    pair.filter = lambda direction, datagram, index: 0
    pair.advance(30)
    assert pair.events("a", PeerDead) == [PeerDead("gw", (B_IP, 500))]
    assert _state(pair, "a") == "down" and pair.a.ike_sa_status(pair.now) == []
    pair.advance(120)
    assert _initiated_by_a(pair, since) == []
    assert pair.a.get_timer() is None


def test_switching_responder_only_keeps_the_sas() -> None:
    pair = make_pair()
    pair.start()
    sas = pair.live_sas("a")
    policy_a = pair.a.policy
    responder_only = replace(policy_a, tunnels=(replace(policy_a.tunnels[0], initiate=False),))
    pair.a.update_policy(responder_only, pair.now)
    pair.pump()
    assert pair.live_sas("a") == sas and not pair.events("a", IpsecSaDeleted)
    assert _state(pair, "a") == "up"
    pair.a.update_policy(policy_a, pair.now)
    pair.pump()
    assert pair.live_sas("a") == sas and not pair.events("a", IpsecSaDeleted)


@pytest.mark.parametrize("nat", [False, True])
def test_responder_only_renews_a_phase1_that_ends_before_the_peers(nat: bool) -> None:
    # The responder-only side allows a 300 s phase 1; the peer proposes 3000 s, so
    # it does not rekey before that phase 1 ends.  The peer is modelled as
    # strongSwan: it drops its IPsec SAs with their phase 1 and adopts them onto a
    # phase 1 the other side starts.  Without a renewal, the Delete at expiry
    # would cut the tunnel.  Behind a NAT (in front of A) the responder-only side
    # is B, the side A can reach; its renewal goes through the NAT on port 4500.
    short = {"ike_rules": (IkeRule(group=19, lifetime_seconds=300),)}
    long = {"ike_rules": (IkeRule(group=19, lifetime_seconds=3000),)}
    answering, peer = ("b", "a") if nat else ("a", "b")
    policy_a, policy_b = policies(
        nat=nat, **{f"{answering}_tunnel": {"initiate": False}, answering: short, peer: long})
    pair = make_pair(policy_a, policy_b, nat=nat)
    pair.engine(peer).handle_timer(pair.now)
    pair.pump()
    broken: list[float] = []
    # Traffic flows with that peer, and with an ipsecgw peer (which keeps its SAs).
    pair.observer = lambda pair: None if traffic_flows(pair, tied=peer, adopts=True) and \
        traffic_flows(pair, tied=None) else broken.append(pair.now)
    pair.advance(1000)
    assert broken == []
    # It started phase 1s only (each before its previous one ended), never a Quick Mode.
    started = _initiated_by_a(pair, side=answering)
    assert "quick" not in started and 3 <= len(started) <= 4
    assert pair.consistent() and _state(pair, answering) == "up"


def test_responder_only_does_not_renew_a_phase1_its_sas_do_not_outlive() -> None:
    # B stops rekeying (responder-only too): the IPsec SA ends at 100 s, before
    # A's phase 1 (300 s), so there is nothing to keep and A starts nothing.
    pair = _responder_only_a(
        a_tunnel={"lifetime_seconds": 100}, b_tunnel={"lifetime_seconds": 100},
        a={"ike_rules": (IkeRule(group=19, lifetime_seconds=300),)},
        b={"ike_rules": (IkeRule(group=19, lifetime_seconds=3000),)})
    pair.b.handle_timer(pair.now)
    pair.pump()
    policy_b = pair.b.policy
    pair.b.update_policy(replace(policy_b, tunnels=(
        replace(policy_b.tunnels[0], initiate=False),)), pair.now)
    pair.advance(1000)
    assert _initiated_by_a(pair) == []
    assert [e.reason for e in pair.events("a", Phase1Deleted)] == ["expired"]
