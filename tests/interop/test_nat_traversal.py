"""NAT traversal with a real NAT: ipsecgw behind a masquerading router.

Site A (ipsecgw, 10.96.0.2) reaches strongSwan at site B (10.99.0.2) through
namespace R, which masquerades A's traffic behind 10.99.0.1. NAT-D must see
the NAT on our side, the exchange must float to 4500 and ESP must travel in
UDP through the translated port, both ways.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_interop
from gwlab import PSK, IpsecgwProcess, ping_ok, site_config

from ipsecgw.tools import testbed as tb

PRIVATE_A = "10.96.0.2"


@dataclass
class NatSites:
    a: tb.Netns
    r: tb.Netns
    b: tb.Netns


@pytest.fixture
def nat_sites() -> Iterator[NatSites]:
    require_interop(("ip", "swanctl", tb.CHARON, "tshark", "nft"))
    made: list[tb.Netns] = []
    try:
        for prefix in ("igna", "ignr", "ignb"):
            made.append(tb.Netns.create(prefix))
        a, r, b = made
        tb.run(["ip", "-n", a.name, "link", "add", "veth-a", "type", "veth",
                "peer", "name", "veth-ra", "netns", r.name])
        tb.run(["ip", "-n", r.name, "link", "add", "veth-rb", "type", "veth",
                "peer", "name", "veth-b", "netns", b.name])
        a.ip("addr", "add", f"{PRIVATE_A}/24", "dev", "veth-a")
        r.ip("addr", "add", "10.96.0.1/24", "dev", "veth-ra")
        r.ip("addr", "add", f"{tb.SITE_A_OUTER}/24", "dev", "veth-rb")
        b.ip("addr", "add", f"{tb.SITE_B_OUTER}/24", "dev", "veth-b")
        a.ip("addr", "add", f"{tb.SITE_A_INNER}/24", "dev", "lo")
        b.ip("addr", "add", f"{tb.SITE_B_INNER}/24", "dev", "lo")
        for ns, dev in ((a, "veth-a"), (r, "veth-ra"), (r, "veth-rb"), (b, "veth-b")):
            ns.ip("link", "set", dev, "up")
        a.ip("route", "add", "default", "via", "10.96.0.1")
        r.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        r.run("nft", "add table ip nat; "
                     "add chain ip nat post { type nat hook postrouting priority 100; }; "
                     "add rule ip nat post oifname veth-rb masquerade")
        yield NatSites(a, r, b)
    finally:
        for ns in made:
            ns.close()


def test_ipsecgw_behind_nat(nat_sites: NatSites, tmp_path: Path) -> None:
    conf = tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr="%any",
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK,
                           remote_id=PRIVATE_A)
    with tb.StrongSwan(nat_sites.b, conf, workdir=tmp_path / "swan") as swan:
        swan.start()
        capture = tb.Capture(nat_sites.b, "veth-b", tmp_path / "nat.pcap", "udp")
        gw = IpsecgwProcess(nat_sites.a, tmp_path / "gw", site_config(local=PRIVATE_A))
        try:
            assert gw.wait_tunnel_up("siteB"), gw.log() + swan.log()[-3000:]
            assert ping_ok(nat_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
            assert ping_ok(nat_sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
            sas = swan.list_sas()
            assert "TUNNEL-in-UDP" in sas
            # strongSwan sees us at the NAT's address, on a translated port.
            assert re.search(rf"remote '{PRIVATE_A}' @ {tb.SITE_A_OUTER}\[\d+\]", sas), sas
        finally:
            pcap = capture.stop()
            gw.stop()
    ports = tb.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "udp.dstport"]).split()
    assert "4500" in ports, "the exchange floated to port 4500"
    log = swan.log()
    assert "remote host is behind NAT" in log, log[-3000:]
