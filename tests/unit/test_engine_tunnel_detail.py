"""What `show ipsec tunnel detail` takes from the engine (issue 15 item 5).

Uptime survives a make-before-break rekey and a phase 1 clear (traffic kept
flowing) but not a phase 2 clear; the last failure carries its time and is
cleared once the tunnel is up; DPD state and remaining kilobytes.
"""

from __future__ import annotations

from engine_helpers import make_pair, policies

from ipsecgw.status import TunnelState


def test_uptime_survives_rekeys_and_a_phase1_clear() -> None:
    pair = make_pair(*policies(a_tunnel={"lifetime_seconds": 600}, b_tunnel={
        "lifetime_seconds": 600}))
    pair.start()
    status = pair.a.tunnel_status(pair.now)[0]
    assert status.state == TunnelState.UP and status.up_since == 0.0
    first = {sa.inbound_spi for sa in status.ipsec_sas}
    pair.advance(700)  # IPsec rekey (soft lifetime about 540 s), old pair gone
    status = pair.a.tunnel_status(pair.now)[0]
    assert {sa.inbound_spi for sa in status.ipsec_sas}.isdisjoint(first)
    assert status.up_since == 0.0
    pair.a.clear_sa(None, 1, pair.now)
    pair.advance(10)
    status = pair.a.tunnel_status(pair.now)[0]
    assert status.state == TunnelState.UP and status.up_since == 0.0
    pair.a.clear_sa(None, 2, pair.now)
    pair.advance(10)
    status = pair.a.tunnel_status(pair.now)[0]
    assert status.state == TunnelState.UP and status.up_since is not None
    assert status.up_since >= 710  # cleared at 710: the traffic stopped, the uptime restarts


def test_last_failure_has_its_time_and_goes_once_up() -> None:
    pair = make_pair(*policies(b_tunnel={"transforms": ("esp-3des-hmac-md5",)}))
    pair.advance(5)
    status = pair.a.tunnel_status(pair.now)[0]
    assert status.state != TunnelState.UP and "NO-PROPOSAL-CHOSEN" in status.last_failure
    assert status.last_failure_at is not None and 0 <= status.last_failure_at <= pair.now
    pair.b.update_policy(policies()[1], pair.now)
    pair.advance(40)
    status = pair.a.tunnel_status(pair.now)[0]
    assert status.state == TunnelState.UP
    assert status.last_failure == "" and status.last_failure_at is None


def test_dpd_state_and_remaining_kilobytes() -> None:
    pair = make_pair(*policies(a_tunnel={"lifetime_kilobytes": 1000}, b_tunnel={
        "lifetime_kilobytes": 1000}))
    pair.start()
    status = pair.a.tunnel_status(pair.now)[0]
    assert status.dpd is not None and status.dpd.state == "peer alive"
    assert status.dpd.last_probe is None and status.dpd.next_due is not None
    pair.a.traffic("gw", 300 * 1024, 100 * 1024, pair.now)
    (sa,) = pair.a.tunnel_status(pair.now)[0].ipsec_sas
    assert sa.remaining_kilobytes == 700
    pair.advance(200)  # idle: the peers probed each other
    dpd = pair.a.tunnel_status(pair.now)[0].dpd
    assert dpd is not None and dpd.state == "peer alive" and dpd.last_heard is not None
    assert dpd.last_heard > 100
    pair.stop("b")
    states = set()
    for _ in range(400):
        pair.advance(0.5)
        dpd = pair.a.tunnel_status(pair.now)[0].dpd
        assert dpd is not None
        states.add(dpd.state)
    assert {"probing, 1 unanswered", "probing, 3 unanswered", "no phase 1"} <= states
