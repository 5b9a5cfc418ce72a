"""NAT traversal with a real NAT: ipsecgw behind a masquerading router.

Site A (ipsecgw, 10.97.0.2) reaches strongSwan at site B (10.99.0.2) through
namespace R, which masquerades A's traffic behind 10.99.0.1. NAT-D must see
the NAT on our side, the exchange must float to 4500 and ESP must travel in
UDP through the translated port, both ways.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import gwlab
import pytest
from conftest import require_interop
from gwlab import HOME_ADDRESS, PSK, IpsecgwProcess, NatSites, ping_ok, site_config

from ipsecgw.tools import testbed as tb


@pytest.fixture
def nat_sites() -> Iterator[NatSites]:
    require_interop(("ip", "swanctl", tb.CHARON, "tshark", "nft"))
    with gwlab.nat_sites("ign") as sites:
        yield sites


def test_ipsecgw_behind_nat(nat_sites: NatSites, tmp_path: Path) -> None:
    conf = tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr="%any",
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK,
                           remote_id=HOME_ADDRESS)
    with tb.StrongSwan(nat_sites.b, conf, workdir=tmp_path / "swan") as swan:
        swan.start()
        capture = tb.Capture(nat_sites.b, "veth-b", tmp_path / "nat.pcap", "udp")
        gw = IpsecgwProcess(nat_sites.a, tmp_path / "gw", site_config(local=HOME_ADDRESS))
        try:
            assert gw.wait_tunnel_up("siteB"), gw.log() + swan.log()[-3000:]
            assert ping_ok(nat_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
            assert ping_ok(nat_sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
            sas = swan.list_sas()
            assert "TUNNEL-in-UDP" in sas
            # strongSwan sees us at the NAT's address, on a translated port.
            assert re.search(rf"remote '{HOME_ADDRESS}' @ {tb.SITE_A_OUTER}\[\d+\]", sas), sas
        finally:
            pcap = capture.stop()
            gw.stop()
    ports = tb.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "udp.dstport"]).split()
    assert "4500" in ports, "the exchange floated to port 4500"
    log = swan.log()
    assert "remote host is behind NAT" in log, log[-3000:]
