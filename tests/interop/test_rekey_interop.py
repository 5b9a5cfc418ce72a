"""Rekeying against strongSwan without losing traffic.

Phase 1 and phase 2 lifetimes of 20 s make ipsecgw rekey both several
times while a ping runs through the tunnel: strongSwan must adopt the new
SAs (its log says so) and no echo may go unanswered.
"""

from __future__ import annotations

import re
from pathlib import Path

from gwlab import PSK, IpsecgwProcess, site_config

from ipsecgw.tools import testbed as tb


def ping_under_rekeys(sites: tb.TwoSites, tmp_path: Path, config: str,
                      *ping: str) -> tuple[int, str, str, str]:
    """Ping site B's inner address from site A's through ipsecgw (`config`) and a
    strongSwan peer; (echoes received, ping's output, `show ipsec statistics`,
    strongSwan's log)."""
    conf = tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK)
    with tb.StrongSwan(sites.b, conf, workdir=tmp_path / "swan") as swan:
        swan.start()
        with IpsecgwProcess(sites.a, tmp_path / "gw", config) as gw:
            assert gw.wait_tunnel_up("siteB"), gw.log()
            out = sites.a.run("ping", *ping, "-W", "1", "-I", tb.SITE_A_INNER,
                              tb.SITE_B_INNER, check=False, timeout=90)
            stats = gw.cli("show ipsec statistics")
        log = swan.log()
    received = re.search(r"(\d+) received", out)
    assert received is not None, out[-400:]
    return int(received.group(1)), out, stats, log


def test_phase1_and_phase2_rekeys_lose_nothing(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    config = site_config(extra_tunnel="tunnel lifetime seconds 20 kilobytes 1000000")
    config = config.replace(" group 14\n", " group 14\n lifetime seconds 20\n", 1)
    received, out, stats, log = ping_under_rekeys(two_sites, tmp_path, config, "-c", "225",
                                                  "-i", "0.2")
    assert received == 225, out[-400:]
    assert log.count("detected rekeying of CHILD_SA") >= 2, "phase 2 rekeyed at least twice"
    assert "detected reauth" in log or log.count("IKE_SA gw[") >= 2, "phase 1 rekeyed"
    established = re.search(r"Phase 1 SAs established\s+(\d+)", stats)
    assert established and int(established.group(1)) >= 3, stats


def test_kilobyte_lifetime_rekeys(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    """A 1,000 KB lifetime and 2.8 MB of pings: phase 2 rekeys on volume, nothing lost."""
    config = site_config(extra_tunnel="tunnel lifetime seconds 3600 kilobytes 1000")
    # 1,400-byte echoes at 100/s: about 140 KB/s each way.
    received, out, stats, log = ping_under_rekeys(two_sites, tmp_path, config, "-c", "2000",
                                                  "-i", "0.01", "-s", "1372")
    assert received == 2000, out[-400:]
    established = re.search(r"Phase 2 SAs established\s+(\d+)", stats)
    assert established and int(established.group(1)) >= 3, stats
    assert log.count("detected rekeying of CHILD_SA") >= 2
