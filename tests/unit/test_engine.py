"""Main Mode PSK + Quick Mode back to back, with and without NAT."""

from __future__ import annotations

from ipsecgw.isakmp.events import IpsecSaEstablished, Phase1Established
from ipsecgw.status import TunnelState

from engine_helpers import B_IP, NAT_IP, make_pair


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
