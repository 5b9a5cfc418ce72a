"""A tunnel whose SA the data plane refuses is down, says why, and the peer is told (issue 13.6).

A link named like the tunnel's TUN device already exists at site A, so the
user-space data plane cannot carry the tunnel and refuses its SAs.  Before,
the engine counted the SA as established: `show ipsec tunnel` said `up`,
strongSwan installed its side, and every packet was dropped silently.
"""

from __future__ import annotations

from pathlib import Path

from conftest import require_interop
from gwlab import PSK, IpsecgwProcess, site_config, wait_until

from ipsecgw.tools import testbed as tb


def test_refused_sa_leaves_the_tunnel_down_with_the_reason_and_the_peer_without_sa(
        two_sites: tb.TwoSites, tmp_path: Path) -> None:
    require_interop(("ip", "swanctl", tb.CHARON))
    two_sites.a.run("ip", "link", "add", "ips-siteB", "type", "veth", "peer", "name", "ips-siteB-p")
    conf = tb.swanctl_conf(
        local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER, local_ts=tb.SITE_B_NET,
        remote_ts=tb.SITE_A_NET, psk=PSK, proposals="aes128-sha1-modp2048",
        esp_proposals="aes128-sha1-modp2048")
    with tb.StrongSwan(two_sites.b, conf, workdir=tmp_path / "swan") as swan:
        swan.start()
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config())
        try:
            detail = ""

            def refused() -> bool:
                nonlocal detail
                detail = gw.cli("show ipsec tunnel ipsec:siteB detail")
                return "data plane refused the SA" in detail

            assert wait_until(refused, timeout=30), detail + gw.log()[-3000:]
            assert "up" not in detail.split(), detail
            # Our Delete took strongSwan's CHILD_SA away again (it may hold
            # one for a moment at each retry: wait for a quiet look).
            assert wait_until(lambda: "INSTALLED" not in swan.list_sas(), timeout=15), \
                swan.list_sas()
            assert "ESTABLISHED, IKEv1" in swan.list_sas()
        finally:
            gw.stop()
