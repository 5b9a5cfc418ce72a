"""ipsecgw on the kernel's XFRM behind a masquerading NAT, against ipsecgw on
the user-space plane: NAT-T from the kernel's side (the daemon's port-4500
socket set to ESP-in-UDP, the SAs carrying the translated ports) and the
two data planes reading each other's ESP, pings both ways, and ipsecgw's
NAT-keepalives from the kernel's ESP-in-UDP socket. The NAT is gwlab's
`nat_sites` (the host's NAT-T interop test has the same)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gwlab
import pytest
from gwlab import HOME_ADDRESS, KeepaliveCounter, NatSites, ping_ok, site_config, wait_until
from vmgw import Gateway

from ipsecgw.tools import testbed as tb

pytestmark = pytest.mark.kernel


@pytest.fixture
def nat_sites() -> Iterator[NatSites]:
    with gwlab.nat_sites("igk") as sites:
        yield sites


def diagnostics(sites: NatSites, a: Gateway, b: Gateway) -> str:
    return "\n".join([
        sites.a.ip("-s", "xfrm", "state"), sites.a.ip("xfrm", "policy"),
        sites.a.ip("route"), sites.a.run("cat", "/proc/net/xfrm_stat"),
        a.cli("show ipsec sa"), b.cli("show ipsec sa"), b.cli("show ipsec statistics"),
        a.log()[-2000:], b.log()[-3000:],
    ])


def test_kernel_plane_behind_nat_against_the_userspace_plane(nat_sites: NatSites,
                                                             tmp_path: Path) -> None:
    keepalives = KeepaliveCounter(nat_sites.b)
    a = Gateway(nat_sites.a, tmp_path / "a", site_config(local=HOME_ADDRESS),
                dataplane="xfrm")
    b = Gateway(nat_sites.b, tmp_path / "b", site_config(
        hostname="siteB", local=tb.SITE_B_OUTER, peer=tb.SITE_A_OUTER,
        local_net=tb.SITE_B_NET, remote_net=tb.SITE_A_NET, tunnel="siteA",
        peer_identity=f"address {HOME_ADDRESS}", responder_only=True),
        dataplane="userspace")
    try:
        assert a.wait_tunnel_up("siteB", timeout=60), a.log()[-4000:] + b.log()[-3000:]
        assert b.wait_tunnel_up("siteA", timeout=30), b.log()[-3000:]
        assert ping_ok(nat_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), diagnostics(nat_sites, a, b)
        assert ping_ok(nat_sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
        states = nat_sites.a.ip("xfrm", "state")
        # both SAs ESP-in-UDP from our 4500 to the peer's 4500 (RFC 3948)
        assert states.count("encap type espinudp sport 4500 dport 4500") == 2, states
        before = a.cli("show ipsec sa")
        assert "udp-tunnel" in before, before
        # IKE still reaches the daemon on the ESP-in-UDP socket (behind the
        # non-ESP marker): a new phase 2 is negotiated over it and carries pings.
        a.cli("ipsec clear sa all phase 2")
        assert wait_until(lambda: a.cli("show ipsec sa") != before
                          and "udp-tunnel" in a.cli("show ipsec sa"), 60), a.log()[-3000:]
        assert a.wait_tunnel_up("siteB", timeout=60), a.log()[-3000:]
        assert ping_ok(nat_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), a.log()[-3000:]
        # Behind the NAT, ipsecgw keeps the mapping open (every 20 s) from its
        # port-4500 socket, which the kernel reads ESP-in-UDP from.
        assert wait_until(lambda: keepalives.count() >= 1, 45), a.log()[-3000:]
    finally:
        a.stop()
        b.stop()
    assert nat_sites.a.ip("xfrm", "state").strip() == ""
