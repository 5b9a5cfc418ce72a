"""DPD per subscriber (issue 16): three remote-access clients behind one NAT
address, each its own subscriber; one crashes and stops answering.

Only that one may be declared dead: its subscriber goes (SubscriberDown,
"dead peer", with its address for the pool) and the two others stay up with
their SAs.  With liveness kept per peer address, a silent client stayed
alive as long as a neighbour behind the same NAT talked, and the client
whose phase 1 was probed took all of them down when it went.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import NAT_IP, Pair, check_registry
from subscriber_helpers import Aaa, Crowd, crowd_pair

from ipsecgw.isakmp.events import IpsecSaDeleted, SubscriberDown, SubscriberUp
from ipsecgw.isakmp.policy import DpdPolicy

USERS = ["ann", "ben", "cat"]


def _three_subscribers(**client: Any) -> tuple[Crowd, Pair]:
    crowd = Crowd.of(USERS, "secret", **client)
    pair = crowd_pair(crowd)
    aaa = Aaa(users=dict.fromkeys(USERS, "secret"))
    pair.start()
    aaa.serve(pair)
    pair.advance(5)
    aaa.serve(pair)
    return crowd, pair


@pytest.mark.parametrize("silent", [0, 2], ids=["oldest", "newest"])
def test_only_the_silent_subscriber_behind_a_nat_is_declared_dead(silent: int) -> None:
    crowd, pair = _three_subscribers()
    status = {s.username: s for s in pair.b.subscriber_status(pair.now)}
    assert set(status) == set(USERS) and {s.state for s in status.values()} == {"up"}
    assert {s.peer[0] for s in status.values()} == {NAT_IP}  # one address, three ports
    up = {e.username: e for e in pair.events("b", SubscriberUp)}
    gone = USERS[silent]
    crowd.silent.add(list(crowd.clients)[silent])  # its process crashes: no Delete
    pair.advance(300)
    down = pair.events("b", SubscriberDown)
    assert [(d.subscriber, d.address, d.reason) for d in down] == \
        [(up[gone].subscriber, up[gone].address, "dead peer")]
    left = {s.username: s for s in pair.b.subscriber_status(pair.now)}
    assert set(left) == set(USERS) - {gone}
    assert {s.state for s in left.values()} == {"up"}
    tunnels = {child.tunnel for child in pair.b._sas.children.values()}
    assert tunnels == {up[user].tunnel for user in left}
    deleted = {e.tunnel for e in pair.events("b", IpsecSaDeleted)}
    assert deleted == {up[gone].tunnel}
    assert pair.b.statistics()["peers_dead"] == 1
    check_registry(pair.b._sas)


def test_each_subscriber_is_probed_under_its_own_phase_1() -> None:
    """Quiet but alive clients (which answer R-U-THERE but probe nobody, like
    vpnc between its own long probes) are each asked under their own
    cookies, and each answers: nobody is declared dead."""
    _, pair = _three_subscribers(dpd=DpdPolicy(enabled=False))
    sent = pair.b.statistics()["dpd_sent"]
    pair.advance(400)
    assert pair.b.statistics()["dpd_sent"] - sent >= 3 * 2
    assert pair.b.statistics()["dpd_ack_received"] >= 3 * 2
    assert not pair.events("b", SubscriberDown)
    assert len(pair.b.subscriber_status(pair.now)) == 3
    details = [t.dpd for t in pair.b.tunnel_status(pair.now)]
    assert len(details) == 3 and all(d is not None and d.state == "peer alive" for d in details)


def test_inbound_traffic_of_a_subscriber_proves_it_alone_alive() -> None:
    """Two clients crash; the data plane still reports traffic from the first
    one's tunnel (a client whose IKE is stuck but whose ESP flows, as RFC 3706
    allows): DPD leaves it, and declares only the other dead."""
    crowd, pair = _three_subscribers()
    up = {e.username: e for e in pair.events("b", SubscriberUp)}
    for address in list(crowd.clients)[:2]:
        crowd.silent.add(address)
    inbound = 0
    for _ in range(30):  # 300 s, with ESP from ann's tunnel every 10 s
        inbound += 1000
        pair.b.traffic(up["ann"].tunnel, inbound, 0, pair.now)
        pair.advance(10)
    assert [d.subscriber for d in pair.events("b", SubscriberDown)] == [up["ben"].subscriber]
    assert {s.username for s in pair.b.subscriber_status(pair.now)} == {"ann", "cat"}
