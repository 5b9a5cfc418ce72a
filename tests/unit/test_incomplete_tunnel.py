"""A tunnel whose configuration is incomplete does not negotiate (issue 15 item 7).

Incomplete: no source, no destination, or no transform set (a tunnel with
manual SAs: one direction missing).  Such a tunnel reaches no engine, and
`show ipsec tunnel detail` says what it lacks.
"""

from __future__ import annotations

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session
from ipsecgw.daemon.translate import engine_policies


def negotiating(session: Session) -> list[str]:
    policies = engine_policies(session.gateway.config, lambda name: name)
    return [t.name for policy in policies.values() for t in policy.tunnels]


def test_a_tunnel_negotiates_once_it_has_source_destination_and_transform_set() -> None:
    s = Session(FakeGateway())
    steps = [("configure terminal", None), ("ipsec transform-set ts esp-aes128-hmac-sha", None),
             ("interface tunnel ipsec:t", "no tunnel source, no tunnel destination, "
              "no tunnel transform-set"),
             ("tunnel source 10.0.0.1", "no tunnel destination, no tunnel transform-set"),
             ("tunnel destination 10.0.0.2", "no tunnel transform-set")]
    for line, lacking in steps:
        assert s.execute(line).ok, line
        if lacking is not None:
            assert negotiating(s) == []
            detail = s.execute("do show ipsec tunnel ipsec:t detail").output
            assert f"  Incomplete, not negotiating: {lacking}" in detail.splitlines(), detail
    assert s.execute("tunnel transform-set ts").ok
    assert negotiating(s) == ["t"]
    assert "Incomplete" not in s.execute("do show ipsec tunnel ipsec:t detail").output


def test_no_local_endpoint_in_use_is_refused_with_the_tunnels() -> None:
    s = Session(FakeGateway())
    for line in ("configure terminal", "ipsec local-endpoint 10.0.0.1",
                 "ipsec local-endpoint 10.0.0.9", "interface tunnel ipsec:b",
                 "tunnel source 10.0.0.1", "interface tunnel ipsec:a", "tunnel source 10.0.0.1",
                 "interface tunnel ipsec:c transport-virtual-router vr2",
                 "tunnel source 10.0.0.9", "exit"):
        assert s.execute(line).ok, line
    before = s.gateway.config
    result = s.execute("no ipsec local-endpoint 10.0.0.1")
    assert not result.ok and result.error == "% Local endpoint 10.0.0.1 is used by ipsec:a, ipsec:b"
    assert s.gateway.config == before
    # ipsec:c uses 10.0.0.9 in another transport VR: this endpoint can go.
    assert s.execute("no ipsec local-endpoint 10.0.0.9").ok


def test_show_local_endpoint_says_why_one_is_down() -> None:
    gateway = FakeGateway()
    s = Session(gateway)
    assert s.execute("configure terminal").ok
    assert s.execute("ipsec local-endpoint 10.0.0.1 transport-virtual-router blue").ok
    gateway.endpoints_down[("blue", "10.0.0.1")] = "no network namespace 'blue'"
    row = s.execute("do show ipsec local-endpoint").output.splitlines()[-1].split(None, 4)
    assert row == ["10.0.0.1", "blue", "default", "down", "no network namespace 'blue'"]
    gateway.endpoints_down.clear()
    row = s.execute("do show ipsec local-endpoint").output.splitlines()[-1].split()
    assert row[-1] == "up"
