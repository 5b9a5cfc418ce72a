"""Main Mode PSK + Quick Mode back to back, with and without NAT."""

from __future__ import annotations

import pytest
from engine_helpers import B_IP, NAT_IP, make_pair, policies, tunnel

from ipsecgw.isakmp.events import IpsecSaEstablished, Phase1Established
from ipsecgw.status import TunnelState


def _established(pair, side):
    return pair.events(side, IpsecSaEstablished)


def test_main_mode_psk_and_quick_mode() -> None:
    pair = make_pair()
    pair.start()
    p1a = pair.events("a", Phase1Established)
    p1b = pair.events("b", Phase1Established)
    assert len(p1a) == 1 and len(p1b) == 1
    assert p1a[0].role == "initiator" and p1b[0].role == "responder"
    assert p1a[0].cookies == p1b[0].cookies
    assert not p1a[0].nat_detected and p1a[0].remote_port == 500
    sa_a, sa_b = _established(pair, "a"), _established(pair, "b")
    assert len(sa_a) == 1 and len(sa_b) == 1
    assert sa_a[0].inbound == sa_b[0].outbound
    assert sa_a[0].outbound == sa_b[0].inbound
    assert sa_a[0].encapsulation == "tunnel"
    assert sa_a[0].protocol == "esp"
    assert sa_a[0].inbound.encryption == "aes256"
    assert sa_a[0].inbound.integrity == "hmac-sha256-128"
    assert len(sa_a[0].inbound.encryption_key) == 32
    assert len(sa_a[0].inbound.integrity_key) == 32
    assert sa_a[0].local_network == "10.98.1.0/24"
    assert sa_a[0].remote_network == "10.98.2.0/24"
    assert sa_b[0].local_network == "10.98.2.0/24"
    assert [t.state for t in pair.a.tunnel_status(pair.now)] == [TunnelState.UP]
    assert [t.state for t in pair.b.tunnel_status(pair.now)] == [TunnelState.UP]


def test_nat_detected_floats_to_4500_and_udp_encapsulation() -> None:
    pair = make_pair(nat=True)
    pair.start()
    p1a = pair.events("a", Phase1Established)
    p1b = pair.events("b", Phase1Established)
    assert p1a and p1b
    assert p1a[0].nat_detected and p1a[0].local_behind_nat
    assert p1b[0].nat_detected and not p1b[0].local_behind_nat
    assert p1a[0].peer == (B_IP, 4500) and p1a[0].local[1] == 4500
    assert p1b[0].peer[0] == NAT_IP and p1b[0].local == (B_IP, 4500)
    sa_a, sa_b = _established(pair, "a"), _established(pair, "b")
    assert sa_a and sa_b
    assert sa_a[0].encapsulation == "udp-tunnel" and sa_b[0].encapsulation == "udp-tunnel"
    assert sa_b[0].peer == p1b[0].peer
    # Main Mode 5 and 6 and Quick Mode all went over 4500.
    a_ports = [(d.local[1], d.remote[1]) for direction, d in pair.wire if direction == "ab"]
    b_ports = [d.local[1] for direction, d in pair.wire if direction == "ba"]
    assert a_ports[:2] == [(500, 500)] * 2
    assert all(p == (4500, 4500) for p in a_ports[2:])
    assert b_ports[:2] == [500, 500] and all(p == 4500 for p in b_ports[2:])


def test_aggressive_mode_psk_both_roles() -> None:
    from ipsecgw.isakmp.policy import IkeRule

    policy_a, policy_b = policies(rules=(IkeRule(group=19, aggressive_mode="requested"),))
    pair = make_pair(policy_a, policy_b)
    pair.start()
    p1a = pair.events("a", Phase1Established)
    assert p1a and p1a[0].exchange == "aggressive"
    assert pair.events("b", Phase1Established)[0].exchange == "aggressive"
    assert _established(pair, "a") and _established(pair, "b")
    assert _established(pair, "a")[0].inbound == _established(pair, "b")[0].outbound


def test_aggressive_mode_with_nat() -> None:
    from ipsecgw.isakmp.policy import IkeRule

    policy_a, policy_b = policies(nat=True, rules=(IkeRule(group=19, aggressive_mode="required"),))
    pair = make_pair(policy_a, policy_b, nat=True)
    pair.start()
    p1b = pair.events("b", Phase1Established)
    assert p1b and p1b[0].nat_detected and p1b[0].local == (B_IP, 4500)
    sa_b = _established(pair, "b")
    assert sa_b and sa_b[0].encapsulation == "udp-tunnel"


def test_responder_refuses_aggressive_mode_when_rule_says_none() -> None:
    from ipsecgw.isakmp.events import Phase1Failed
    from ipsecgw.isakmp.policy import IkeRule

    policy_a, _ = policies(rules=(IkeRule(group=19, aggressive_mode="required"),))
    _, policy_b = policies(rules=(IkeRule(group=19, aggressive_mode="none"),))
    pair = make_pair(policy_a, policy_b)
    pair.start()
    assert not pair.events("a", Phase1Established)
    assert "NO-PROPOSAL-CHOSEN" in pair.events("a", Phase1Failed)[0].reason
    assert pair.events("b", Phase1Failed)


def test_main_mode_refused_when_rule_requires_aggressive() -> None:
    from ipsecgw.isakmp.events import Phase1Failed
    from ipsecgw.isakmp.policy import IkeRule

    policy_a, _ = policies(rules=(IkeRule(group=19),))
    _, policy_b = policies(rules=(IkeRule(group=19, aggressive_mode="required"),))
    pair = make_pair(policy_a, policy_b)
    pair.start()
    assert pair.events("a", Phase1Failed)
    # A's Main Mode was refused; B's own Aggressive Mode (required) works.
    assert all(e.role == "responder" and e.exchange == "aggressive"
               for e in pair.events("a", Phase1Established))


def test_pfs_and_transform_choice_and_lifetimes() -> None:
    policy_a, policy_b = policies(
        a_tunnel={"pfs_group": 14, "transforms": ("esp-3des-hmac-md5", "esp-aes128-hmac-sha"),
                  "lifetime_seconds": 3600, "lifetime_kilobytes": 5000},
        b_tunnel={"pfs_group": 14, "transforms": ("esp-aes128-hmac-sha",),
                  "lifetime_seconds": 1800, "lifetime_kilobytes": 0})
    pair = make_pair(policy_a, policy_b)
    pair.start()
    sa_a, sa_b = _established(pair, "a"), _established(pair, "b")
    assert sa_a and sa_b
    assert sa_a[0].inbound.encryption == "aes128" and sa_a[0].inbound.integrity == "hmac-sha1-96"
    assert len(sa_a[0].inbound.integrity_key) == 20
    # The responder's shorter lifetime wins on both sides (RESPONDER-LIFETIME).
    assert sa_a[0].lifetime_seconds == sa_b[0].lifetime_seconds == 1800
    assert sa_a[0].lifetime_kilobytes == sa_b[0].lifetime_kilobytes == 5000
    status = pair.a.tunnel_status(pair.now)[0].ipsec_sas[0]
    assert status.pfs_group == 14 and status.transform == "esp-aes128-hmac-sha"


def test_gcm_and_ah_transforms() -> None:
    for transform, encryption, integrity, protocol, key_length in (
        ("esp-aes256-gcm", "aes256gcm", None, "esp", 36),
        ("ah-hmac-sha", "null", "hmac-sha1-96", "ah", 0),
    ):
        policy_a, policy_b = policies(a_tunnel={"transforms": (transform,)},
                                      b_tunnel={"transforms": (transform,)})
        pair = make_pair(policy_a, policy_b)
        pair.start()
        sa = _established(pair, "a")[0]
        assert sa.protocol == protocol
        assert sa.inbound.encryption == encryption and sa.inbound.integrity == integrity
        assert len(sa.inbound.encryption_key) == key_length


def test_no_phase2_proposal_match() -> None:
    from ipsecgw.isakmp.events import Phase1Failed

    policy_a, policy_b = policies(a_tunnel={"transforms": ("esp-3des-hmac-md5",)},
                                  b_tunnel={"transforms": ("esp-aes256-gcm",)})
    pair = make_pair(policy_a, policy_b)
    pair.start()
    assert pair.events("a", Phase1Established)
    assert not _established(pair, "a") and not _established(pair, "b")
    assert pair.a.statistics()["phase2_failed"] == 1
    status = pair.a.tunnel_status(pair.now)[0]
    assert "NO-PROPOSAL-CHOSEN" in status.last_failure
    assert not pair.events("a", Phase1Failed)


def test_no_phase1_proposal_match() -> None:
    from ipsecgw.isakmp.events import Phase1Failed
    from ipsecgw.isakmp.policy import IkeRule

    policy_a, _ = policies(rules=(IkeRule(group=19, encryption="3des"),))
    _, policy_b = policies(rules=(IkeRule(group=19),))
    pair = make_pair(policy_a, policy_b)
    pair.start()
    failed = pair.events("a", Phase1Failed)
    assert failed and "NO-PROPOSAL-CHOSEN" in failed[0].reason
    assert pair.b.statistics()["phase1_failed"] >= 1
    assert not pair.events("b", Phase1Established)


def test_responder_takes_first_acceptable_rule_in_initiator_order() -> None:
    from ipsecgw.isakmp.policy import IkeRule

    rules_a = (IkeRule(priority=1, encryption="aes128", group=19),
               IkeRule(priority=2, encryption="3des", hash="sha", group=14),
               IkeRule(priority=3, group=19))
    rules_b = (IkeRule(priority=1, group=19), IkeRule(priority=5, encryption="3des", hash="sha",
                                                     group=14))
    policy_a, _ = policies(rules=rules_a)
    _, policy_b = policies(rules=rules_b)
    pair = make_pair(policy_a, policy_b)
    pair.start()
    ike = pair.b.ike_sa_status(pair.now)[0]
    assert (ike.encryption, ike.hash, ike.group) == ("3des", "sha", 14)


def test_wrong_psk_fails_with_authentication_failed() -> None:
    from ipsecgw.isakmp.events import Phase1Failed

    policy_a, policy_b = policies(b={"preshared_keys": {"10.99.0.1": b"other key"}})
    pair = make_pair(policy_a, policy_b)
    pair.start()
    pair.advance(5)
    assert not pair.events("a", Phase1Established) and not pair.events("b", Phase1Established)
    assert not _established(pair, "a") and not _established(pair, "b")
    reason_b = pair.events("b", Phase1Failed)[0].reason
    assert "pre-shared key" in reason_b
    assert pair.events("a", Phase1Failed)
    assert pair.a.ike_sa_status(pair.now) == [] or all(
        s.state != "established" for s in pair.a.ike_sa_status(pair.now))


def test_several_ipsec_sas_per_phase1_and_identities() -> None:
    from ipsecgw.isakmp.policy import EnginePolicy, Identity

    policy_a, policy_b = policies(
        a_tunnel={"local_identity": Identity("domain-name", "a.example"),
                  "peer_identity": Identity("address", B_IP)},
        b_tunnel={"peer_identity": Identity("domain-name", "a.example")})
    second_a = tunnel("second", "10.99.0.1", B_IP, local_network="10.97.1.0/24",
                      remote_network="10.97.2.0/24", local_identity=Identity("domain-name",
                                                                             "a.example"))
    second_b = tunnel("second", B_IP, "10.99.0.1", local_network="10.97.2.0/24",
                      remote_network="10.97.1.0/24")
    policy_a = EnginePolicy(**{**policy_a.__dict__, "tunnels": policy_a.tunnels + (second_a,)})
    policy_b = EnginePolicy(**{**policy_b.__dict__, "tunnels": policy_b.tunnels + (second_b,)})
    pair = make_pair(policy_a, policy_b)
    pair.start()
    assert len(pair.events("a", Phase1Established)) == 1
    assert sorted(e.tunnel for e in _established(pair, "a")) == ["gw", "second"]
    assert sorted(e.tunnel for e in _established(pair, "b")) == ["gw", "second"]
    assert pair.b.ike_sa_status(pair.now)[0].peer_identity == "a.example"


def test_wrong_peer_identity_is_refused() -> None:
    from ipsecgw.isakmp.events import Phase1Failed
    from ipsecgw.isakmp.policy import Identity

    policy_a, policy_b = policies(b_tunnel={"peer_identity": Identity("domain-name", "x.example")})
    pair = make_pair(policy_a, policy_b)
    pair.start()
    assert "INVALID-ID-INFORMATION" in pair.events("a", Phase1Failed)[0].reason
    assert not pair.events("b", Phase1Established)


def test_behind_a_nat_ah_is_left_out_of_the_offer() -> None:
    """AH cannot cross a NAT (it authenticates the addresses the NAT rewrites):
    with a NAT between them the initiator offers its ESP transforms only."""
    both = ("ah-hmac-sha", "esp-aes128-hmac-sha")
    policy_a, policy_b = policies(nat=True, a_tunnel={"transforms": both},
                                  b_tunnel={"transforms": both})
    pair = make_pair(policy_a, policy_b, nat=True)
    pair.start()
    sa_a, sa_b = _established(pair, "a"), _established(pair, "b")
    assert sa_a and sa_b
    assert (sa_a[0].protocol, sa_a[0].encapsulation) == ("esp", "udp-tunnel")
    # Without the NAT the first transform, AH, is chosen.
    pair = make_pair(*policies(a_tunnel={"transforms": both}, b_tunnel={"transforms": both}))
    pair.start()
    assert _established(pair, "a")[0].protocol == "ah"


def test_behind_a_nat_an_ah_only_tunnel_fails_with_a_clear_reason() -> None:
    from ipsecgw.isakmp.events import Phase1Established as P1

    ah = {"transforms": ("ah-hmac-sha",)}
    pair = make_pair(*policies(nat=True, a_tunnel=ah, b_tunnel=ah), nat=True)
    pair.start()
    assert pair.events("a", P1)  # phase 1 is fine
    assert not _established(pair, "a") and not _established(pair, "b")
    [status] = pair.a.tunnel_status(pair.now)
    assert status.last_failure is not None and "AH cannot cross a NAT" in status.last_failure


def test_a_responder_refuses_ah_with_udp_encapsulation() -> None:
    from ipsecgw.isakmp.codec import Attribute, Proposal, SecurityAssociation, Transform
    from ipsecgw.isakmp.constants import (
        AhTransform,
        Doi,
        EncapsulationMode,
        IpsecAttribute,
        IpsecAuthAlgorithm,
        ProtocolId,
        Situation,
    )
    from ipsecgw.isakmp.errors import NoProposalChosen
    from ipsecgw.isakmp.proposals import phase2_suite, select_phase2

    def offer(mode: int) -> SecurityAssociation:
        attributes = (
            Attribute.make(IpsecAttribute.ENCAPSULATION_MODE, mode),
            Attribute.make(IpsecAttribute.AUTHENTICATION_ALGORITHM, IpsecAuthAlgorithm.HMAC_SHA),
        )
        transform = Transform(1, AhTransform.SHA, attributes)
        proposal = Proposal(1, ProtocolId.IPSEC_AH, b"\x00\x00\x10\x01", (transform,))
        return SecurityAssociation(Doi.IPSEC, Situation.IDENTITY_ONLY, (proposal,))

    suites = [phase2_suite("ah-hmac-sha")]
    assert select_phase2(offer(EncapsulationMode.TUNNEL), suites, None).suite.protocol == "ah"
    for mode in (EncapsulationMode.UDP_TUNNEL, EncapsulationMode.UDP_TUNNEL_DRAFT):
        with pytest.raises(NoProposalChosen):
            select_phase2(offer(mode), suites, None)


def test_tunnel_states_agree_with_tunnel_status() -> None:
    """The cheap state table (`show ipsec tunnel summary`) says what the full
    snapshots say, at every step of a negotiation."""
    pair = make_pair()
    seen = set()

    def check(p) -> None:  # type: ignore[no-untyped-def]
        for engine in (p.a, p.b):
            states = engine.tunnel_states()
            assert states == {t.name: t.state for t in engine.tunnel_status(p.now)}
            seen.update(states.values())

    def filter_(direction, datagram, index) -> int:  # type: ignore[no-untyped-def]
        check(pair)  # every message in flight: mid-negotiation states too
        return 1

    pair.filter = filter_
    pair.start()
    check(pair)
    assert seen >= {TunnelState.NEGOTIATING, TunnelState.UP}
