"""A second daemon with the same configuration is refused at start and the
first one keeps working (issue 13 defect 7, issue 15 item 7).

Before: the second bound the same IKE ports (SO_REUSEADDR), its
INITIAL-CONTACT made strongSwan drop the first daemon's SAs, and with the
same --control path it took the control socket over and deleted it on exit.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from gwlab import IpsecgwProcess, ping_ok, site_config
from test_clear_cookie_dpd import strongswan_b, swan_state

from ipsecgw.tools import testbed as tb


def _second_daemon(sites: tb.TwoSites, gw: IpsecgwProcess,
                   control: Path) -> subprocess.CompletedProcess[str]:
    """`ipsecgw daemon` with the first one's configuration, until it exits."""
    return subprocess.run(
        [*sites.a.exec_prefix(), sys.executable, "-m", "ipsecgw", "daemon",
         "--config", str(gw.config_path), "--control", str(control)],
        capture_output=True, text=True, timeout=60)


def _spis(show_ipsec_sa: str) -> list[str]:
    return sorted(re.findall(r"\b0x[0-9a-f]{8}\b", show_ipsec_sa))


def test_a_second_daemon_exits_at_start_and_the_first_keeps_its_tunnel(
        two_sites: tb.TwoSites, tmp_path: Path) -> None:
    with tb.StrongSwan(two_sites.b, strongswan_b(), workdir=tmp_path / "swan") as swan:
        swan.start()
        with IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config()) as gw:
            assert gw.wait_tunnel_up("siteB"), gw.log()
            assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
            peer_before = swan_state(swan.list_sas())
            spis_before = _spis(gw.cli("show ipsec sa"))
            assert len(spis_before) == 2, gw.cli("show ipsec sa")

            # Its own control socket: the IKE ports are what it cannot have.
            own = tmp_path / "second.sock"
            second = _second_daemon(two_sites, gw, own)
            assert second.returncode == 1, second.stderr
            assert (f"local endpoint {tb.SITE_A_OUTER}:500 in VR default: address already in use"
                    in second.stderr), second.stderr
            assert not own.exists()

            # The first one's control socket: refused before anything is opened.
            second = _second_daemon(two_sites, gw, gw.control)
            assert second.returncode == 1, second.stderr
            assert f"control socket {gw.control} is held by a running daemon" in second.stderr

            # The first daemon: still reachable, same SAs, on both ends.
            assert gw.wait_tunnel_up("siteB", timeout=5)
            assert _spis(gw.cli("show ipsec sa")) == spis_before
            assert swan_state(swan.list_sas()) == peer_before
            assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
