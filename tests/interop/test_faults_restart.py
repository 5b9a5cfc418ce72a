"""kill -9 of either end with pings running, then a restart (issue 13's fault suite).

A gateway that crashes loses every SA without telling its peer. When it
comes back it must be carrying traffic again within a bound, and neither
end may keep SAs of the dead incarnation: the restarted side announces
itself with INITIAL-CONTACT (RFC 2407 4.6.3.3) and the other side deletes
everything it held with that peer.

Bounds: a restart of either daemon (its own start included) has traffic
flowing again within 10 s; strongSwan restarted against strongSwan on this
test bed does it in about 1 s after charon is up, ipsecgw's own start
(Python, configuration, sockets) takes about 1-2 s on a loaded machine.
"""

from __future__ import annotations

import time
from pathlib import Path

from faultlab import Pinger, both_ends, gw_and_swan, settled
from gwlab import IpsecgwProcess, ping_ok, site_config, wait_until

from ipsecgw.tools import testbed as tb

TRAFFIC_BOUND = 10.0
# Both ends tidy (one ISAKMP/IKE SA, one IPsec SA pair, the same) within
# this long after traffic is back: the old SAs go with INITIAL-CONTACT.
SETTLE_BOUND = 10.0


def test_ipsecgw_killed_and_restarted(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    with gw_and_swan(two_sites, tmp_path) as (gw, swan):
        assert gw.wait_tunnel_up("siteB")
        assert wait_until(lambda: settled(gw, swan), timeout=10), both_ends(gw, swan)
        pinger = Pinger(two_sites, tmp_path / "ping.txt")
        try:
            time.sleep(1)
            gw.proc.kill()  # SIGKILL: no Delete, the TUN device goes with the process
            gw.proc.wait()
            gw.stop()
            time.sleep(1)
            restarted = time.time()
            with IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config()) as gw2:
                assert wait_until(lambda: pinger.first_reply_after(restarted) is not None,
                                  timeout=TRAFFIC_BOUND), gw2.log()[-3000:]
                assert wait_until(lambda: settled(gw2, swan), timeout=SETTLE_BOUND), \
                    both_ends(gw2, swan)
        finally:
            pinger.stop()


def test_strongswan_killed_and_restarted(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    with gw_and_swan(two_sites, tmp_path) as (gw, swan):
        assert gw.wait_tunnel_up("siteB")
        assert wait_until(lambda: settled(gw, swan), timeout=10), both_ends(gw, swan)
        pinger = Pinger(two_sites, tmp_path / "ping.txt")
        try:
            time.sleep(1)
            swan.kill()
            time.sleep(1)
            restarted = time.time()
            # Back up, strongSwan brings its tunnel up again (as its
            # start_action = start would).
            swan.start()
            assert "completed successfully" in swan.initiate()
            assert wait_until(lambda: pinger.first_reply_after(restarted) is not None,
                              timeout=TRAFFIC_BOUND), gw.log()[-3000:]
            assert wait_until(lambda: settled(gw, swan), timeout=SETTLE_BOUND), \
                both_ends(gw, swan)
        finally:
            pinger.stop()
        assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
