"""Two tunnels to one strongSwan peer: two IPsec SA pairs under one phase 1.

Site A protects 10.98.1.0/24 <-> 10.98.2.0/24 and 10.98.3.0/24 <->
10.98.4.0/24 with two tunnel interfaces to the same peer; strongSwan has
one connection with two children. Both carry their own traffic, and one
ISAKMP SA serves both (IKEv1 reuses it for every Quick Mode with the peer).
"""

from __future__ import annotations

import re
from pathlib import Path

from gwlab import PSK, IpsecgwProcess, ping_ok, site_config

from ipsecgw.tools import testbed as tb


def test_two_tunnels_share_one_phase1(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    two_sites.a.ip("addr", "add", "10.98.3.1/24", "dev", "lo")
    two_sites.b.ip("addr", "add", "10.98.4.1/24", "dev", "lo")
    conf = tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK)
    second_child = """
      second { local_ts = 10.98.4.0/24
               remote_ts = 10.98.3.0/24
               esp_proposals = aes128-sha1-modp2048 }"""
    conf = conf.replace("    children {\n", "    children {" + second_child + "\n", 1)
    config = site_config() + (
        "interface tunnel ipsec:second transport-virtual-router default\n"
        f" tunnel source {tb.SITE_A_OUTER}\n tunnel destination {tb.SITE_B_OUTER}\n"
        " tunnel transform-set ts\n tunnel pfs group 14\n"
        " tunnel local-network 10.98.3.0/24\n tunnel remote-network 10.98.4.0/24\n exit\n"
    )
    with tb.StrongSwan(two_sites.b, conf, workdir=tmp_path / "swan") as swan:
        swan.start()
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", config)
        try:
            assert gw.wait_tunnel_up("siteB") and gw.wait_tunnel_up("second"), gw.log()
            assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
            assert ping_ok(two_sites.a, "10.98.3.1", "10.98.4.1")
            sas = swan.list_sas()
            assert len(re.findall(r"ESTABLISHED, IKEv1", sas)) == 1, sas
            assert "gw: #" in sas and "second: #" in sas, sas
            assert len(re.findall(r"INSTALLED", sas)) == 2, sas
            assert len(re.findall(r"established", gw.cli("show ipsec ike-sa"))) == 1
        finally:
            gw.stop()
