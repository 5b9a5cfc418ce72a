"""ipsecgw on the kernel's XFRM behind a masquerading NAT, against ipsecgw on
the user-space plane: NAT-T from the kernel's side (the daemon's port-4500
socket set to ESP-in-UDP, the SAs carrying the translated ports) and the
two data planes reading each other's ESP, pings both ways."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gwlab import ping_ok, site_config, wait_until
from vmgw import Gateway

from ipsecgw.tools import testbed as tb

pytestmark = pytest.mark.kernel
PRIVATE_A = "10.96.0.2"


@dataclass
class NatSites:
    a: tb.Netns  # ipsecgw (xfrm), private address
    r: tb.Netns  # the NAT: masquerades A behind 10.99.0.1
    b: tb.Netns  # ipsecgw (userspace)


@pytest.fixture
def nat_sites() -> Iterator[NatSites]:
    made: list[tb.Netns] = []
    try:
        for prefix in ("igka", "igkr", "igkb"):
            made.append(tb.Netns.create(prefix))
        a, r, b = made
        tb.run(["ip", "-n", a.name, "link", "add", "veth-a", "type", "veth",
                "peer", "name", "veth-ra", "netns", r.name])
        tb.run(["ip", "-n", r.name, "link", "add", "veth-rb", "type", "veth",
                "peer", "name", "veth-b", "netns", b.name])
        for ns, address, device in ((a, f"{PRIVATE_A}/24", "veth-a"),
                                    (r, "10.96.0.1/24", "veth-ra"),
                                    (r, f"{tb.SITE_A_OUTER}/24", "veth-rb"),
                                    (b, f"{tb.SITE_B_OUTER}/24", "veth-b")):
            ns.ip("addr", "add", address, "dev", device)
            ns.ip("link", "set", device, "up")
        a.ip("addr", "add", f"{tb.SITE_A_INNER}/24", "dev", "lo")
        b.ip("addr", "add", f"{tb.SITE_B_INNER}/24", "dev", "lo")
        a.ip("route", "add", "default", "via", "10.96.0.1")
        r.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        r.run("nft", "add table ip nat; "
                     "add chain ip nat post { type nat hook postrouting priority 100; }; "
                     "add rule ip nat post oifname veth-rb masquerade")
        yield NatSites(a, r, b)
    finally:
        for ns in made:
            ns.close()


def diagnostics(sites: NatSites, a: Gateway, b: Gateway) -> str:
    return "\n".join([
        sites.a.ip("-s", "xfrm", "state"), sites.a.ip("xfrm", "policy"),
        sites.a.ip("route"), sites.a.run("cat", "/proc/net/xfrm_stat"),
        a.cli("show ipsec sa"), b.cli("show ipsec sa"), b.cli("show ipsec statistics"),
        a.log()[-2000:], b.log()[-3000:],
    ])


def test_kernel_plane_behind_nat_against_the_userspace_plane(nat_sites: NatSites,
                                                             tmp_path: Path) -> None:
    a = Gateway(nat_sites.a, tmp_path / "a", site_config(local=PRIVATE_A),
                       dataplane="xfrm")
    b = Gateway(nat_sites.b, tmp_path / "b", site_config(
        hostname="siteB", local=tb.SITE_B_OUTER, peer=tb.SITE_A_OUTER,
        local_net=tb.SITE_B_NET, remote_net=tb.SITE_A_NET, tunnel="siteA",
        peer_identity=f"address {PRIVATE_A}", responder_only=True),
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
    finally:
        a.stop()
        b.stop()
    assert nat_sites.a.ip("xfrm", "state").strip() == ""
