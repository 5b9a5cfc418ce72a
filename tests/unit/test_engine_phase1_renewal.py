"""IPsec SAs outlive their phase 1 and are renewed on the next one (make before break).

strongSwan deletes its CHILD_SAs with their ISAKMP SA; `traffic_flows` models
such a peer on either side, and the tests check that traffic never stops
through phase 1 rekeys, and comes back right after `clear_sa(phase=1)`.
"""

from __future__ import annotations

from engine_helpers import (
    A_IP,
    B_IP,
    Pair,
    installed_sas,
    make_pair,
    policies,
    traffic_flows,
    tunnel,
)

from ipsecgw.isakmp.events import (
    IpsecSaDeleted,
    IpsecSaEstablished,
    PeerDead,
    Phase1Deleted,
    Phase1Established,
)
from ipsecgw.isakmp.policy import DpdPolicy, EnginePolicy, IkeRule

FAST_DPD = DpdPolicy(idle=20.0, silence=10.0, retry=2.0, retries=3)


def _up(policy_a: EnginePolicy | None = None, policy_b: EnginePolicy | None = None) -> Pair:
    pair = make_pair(policy_a, policy_b)
    pair.start()
    assert pair.consistent() and traffic_flows(pair, tied="a") and traffic_flows(pair, tied="b")
    return pair


def _always_flowing(pair: Pair) -> list[float]:
    """Record the moments traffic would stop with a strongSwan-like peer on either side."""
    broken: list[float] = []

    def check(pair: Pair) -> None:
        if not (traffic_flows(pair, tied="a") and traffic_flows(pair, tied="b")):
            broken.append(pair.now)

    pair.observer = check
    return broken


def test_phase1_rekey_renews_ipsec_sas_before_deleting_the_old_phase1() -> None:
    pair = _up(*policies(rules=(IkeRule(group=19, lifetime_seconds=100),)))
    first = pair.live_sas("a")
    broken = _always_flowing(pair)
    pair.advance(500)
    assert broken == []
    rekeys = len(pair.events("a", Phase1Established)) - 1
    assert rekeys >= 5
    # Each phase 1 rekey renewed the IPsec SA once (no churn), then deleted the old phase 1.
    renewed = [e for e in pair.events("a", IpsecSaEstablished) if e.rekey_of is not None]
    assert len(renewed) == rekeys
    reasons = [e.reason for e in pair.events("a", Phase1Deleted) + pair.events("b", Phase1Deleted)]
    assert set(reasons) == {"rekeyed", "deleted by peer"}
    assert [s.state for s in pair.a.ike_sa_status(pair.now)] == ["established"]
    assert [s.state for s in pair.b.ike_sa_status(pair.now)] == ["established"]
    assert pair.consistent() and not first & pair.live_sas("a")
    assert {e.reason for e in pair.events("a", IpsecSaDeleted)} == {"rekeyed"}


def test_phase1_rekey_order_on_the_wire() -> None:
    pair = _up(*policies(rules=(IkeRule(group=19, lifetime_seconds=100),)))
    old = pair.events("b", Phase1Established)[0].cookies
    pair.advance(100)
    events = pair.events_b
    new_sa = next(i for i, e in enumerate(events)
                  if isinstance(e, IpsecSaEstablished) and e.rekey_of is not None)
    old_gone = next(i for i, e in enumerate(events)
                    if isinstance(e, Phase1Deleted) and e.cookies == old)
    new_p1 = next(i for i, e in enumerate(events)
                  if isinstance(e, Phase1Established) and e.cookies != old)
    assert new_p1 < new_sa < old_gone
    assert events[new_sa].phase1_cookies == events[new_p1].cookies


def test_clear_phase1_keeps_ipsec_sas_and_renews_them_on_the_new_phase1() -> None:
    pair = _up()
    old_sas = pair.live_sas("a")
    old_cookies = pair.events("a", Phase1Established)[0].cookies
    assert pair.a.clear_sa(None, 1, pair.now) == 1
    pair.pump()
    # Nothing was deleted before its successor was installed.
    for side in "ab":
        events = pair.sink(side)
        deleted = [i for i, e in enumerate(events) if isinstance(e, IpsecSaDeleted)]
        renewed_at = [i for i, e in enumerate(events)
                      if isinstance(e, IpsecSaEstablished) and e.rekey_of is not None]
        assert renewed_at and all(i > renewed_at[0] for i in deleted), side
    assert pair.events("b", Phase1Deleted)[0].reason == "deleted by peer"
    assert pair.events("a", Phase1Deleted)[0].reason == "cleared"
    established = pair.events("a", Phase1Established)
    assert len(established) == 2 and established[1].cookies != old_cookies
    assert established[1].role == "initiator"
    renewed = [e for e in pair.events("a", IpsecSaEstablished) if e.rekey_of is not None]
    assert [e.rekey_of for e in renewed] == [next(iter(old_sas))[0]]
    assert renewed[0].phase1_cookies == established[1].cookies
    # Traffic is back at once, even with a peer that dropped its SAs with the phase 1.
    assert traffic_flows(pair, tied="b")
    # ... and only on the new pair (issue 13.8): the old one's phase 1 is gone,
    # and a peer like strongSwan dropped the pair with it, so it goes as soon
    # as its successor is installed (outbound moves at once), on both sides,
    # not a rekey grace later.
    assert [e.reason for e in pair.events("a", IpsecSaDeleted)] == ["phase 1 gone"]
    assert [e.reason for e in pair.events("b", IpsecSaDeleted)] == ["phase 1 gone"]
    assert pair.consistent() and not pair.live_sas("a") & old_sas
    assert len(pair.live_sas("a")) == 1
    pair.advance(pair.a.policy.rekey_grace)
    assert len(pair.events("a", IpsecSaDeleted)) == 1
    assert [s.state for s in pair.b.ike_sa_status(pair.now)] == ["established"]


def test_clear_phase1_of_one_tunnel_renews_every_tunnel_of_that_phase1() -> None:
    policy_a, policy_b = policies()
    second_a = tunnel("second", A_IP, B_IP, local_network="10.97.1.0/24",
                      remote_network="10.97.2.0/24")
    second_b = tunnel("second", B_IP, A_IP, local_network="10.97.2.0/24",
                      remote_network="10.97.1.0/24")
    pair = _up(EnginePolicy(**{**policy_a.__dict__, "tunnels": (*policy_a.tunnels, second_a)}),
               EnginePolicy(**{**policy_b.__dict__, "tunnels": (*policy_b.tunnels, second_b)}))
    assert pair.a.clear_sa(["gw"], 1, pair.now) == 1
    pair.pump()
    renewed = [e.tunnel for e in pair.events("a", IpsecSaEstablished) if e.rekey_of is not None]
    assert sorted(renewed) == ["gw", "second"]
    assert len(installed_sas(pair.events_b, tied=True)) == 2


def test_clear_phase1_from_the_responder_side_renews_once() -> None:
    pair = _up()
    broken = _always_flowing(pair)
    assert pair.b.clear_sa(None, 1, pair.now) == 1
    pair.pump()
    pair.advance(5)
    # B re-initiated and renewed; A, told by the Delete, waited for it (no duplicates).
    assert len(pair.events("a", Phase1Established)) == 2
    assert len([e for e in pair.events("b", IpsecSaEstablished) if e.rekey_of]) == 1
    assert [s.state for s in pair.a.ike_sa_status(pair.now)] == ["established"]
    # Only the moment between B's Delete and its Quick Mode: a tied peer's gap.
    assert len(broken) <= 1
    assert traffic_flows(pair, tied="a") and traffic_flows(pair, tied="b")


def test_peer_delete_of_phase1_keeps_ipsec_sas_and_phase1_comes_back() -> None:
    # B is responder-only: after clearing its phase 1 it waits for A.
    pair = _up(*policies(a={"dpd": FAST_DPD}, b={"dpd": FAST_DPD},
                         b_tunnel={"initiate": False}))
    sas = pair.live_sas("a")
    assert pair.b.clear_sa(None, 1, pair.now) == 1
    pair.pump()
    assert pair.events("a", Phase1Deleted)[0].reason == "deleted by peer"
    assert pair.live_sas("a") == sas and not pair.events("a", IpsecSaDeleted)
    assert pair.a.ike_sa_status(pair.now) == []
    assert pair.a.get_timer() == pair.now + 2.0  # the peer's grace to re-initiate first
    pair.advance(2.0)
    assert [s.state for s in pair.a.ike_sa_status(pair.now)] == ["established"]
    assert pair.events("a", Phase1Established)[-1].role == "initiator"
    assert [e.rekey_of for e in pair.events("a", IpsecSaEstablished) if e.rekey_of] == \
        [next(iter(sas))[0]]
    assert traffic_flows(pair, tied="b")
    # DPD runs again on the new phase 1.
    pair.filter = lambda direction, datagram, index: 0
    pair.advance(30)
    assert pair.events("a", PeerDead)


def test_expired_phase1_without_successor_then_renewal_on_the_next() -> None:
    # The peer is unreachable from A's phase 1 rekey until past the old one's
    # expiry (B is responder-only, so only A can bring the phase 1 back).
    pair = _up(*policies(rules=(IkeRule(group=19, lifetime_seconds=100),),
                         b_tunnel={"initiate": False}))
    sas = pair.live_sas("a")
    pair.filter = lambda direction, datagram, index: 0
    pair.advance(101)
    assert [e.reason for e in pair.events("a", Phase1Deleted)] == ["expired"]
    assert pair.live_sas("a") == sas  # RFC 2409: the IPsec SA outlives its phase 1
    pair.filter = None
    pair.advance(40)
    assert [s.state for s in pair.a.ike_sa_status(pair.now)] == ["established"]
    assert [e.rekey_of for e in pair.events("a", IpsecSaEstablished) if e.rekey_of] == \
        [next(iter(sas))[0]]
    assert traffic_flows(pair, tied="b")


def test_a_second_phase1_alone_renews_nothing() -> None:
    # B opens a second phase 1 while the first is fine (as after a race).
    # Each side may prefer a different one; neither moves its SAs for that.
    pair = _up(*policies(rules=(IkeRule(group=19, lifetime_seconds=300),)))
    pair.b.initiate_phase1(pair.b.policy.tunnels[0], pair.now, rekey=True)
    pair.pump()
    pair.advance(5)
    assert len(pair.events("a", Phase1Established)) == 2
    assert len(pair.events("a", IpsecSaEstablished)) == 1
    pair.advance(200)
    assert len(pair.events("a", IpsecSaEstablished)) == 1
    # Through phase 1 rekeys, one renewal per replaced phase 1 at most.
    broken = _always_flowing(pair)
    pair.advance(1000)
    replaced = len(pair.events("a", Phase1Deleted))
    assert 1 < len(pair.events("a", IpsecSaEstablished)) <= 1 + replaced
    assert broken == [] and pair.consistent()
