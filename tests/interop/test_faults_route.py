"""A tunnel whose IPsec SA expires before its replacement is ready keeps its
route (issue 13 item 11, the `esp-throughput` benchmark's "Network is
unreachable").

Under a bulk transfer a kilobyte lifetime runs out fast (the benchmark
renewed its 100 MB SA every 1.5 s); when the Quick Mode of the rekey takes
longer than the last tenth of the lifetime, the old SA hits its hard limit
first and the tunnel has no SA for a moment. An application sending into
the tunnel then may lose packets, but must not be told that the network is
unreachable: a UDP sender (iperf3) gives up on ENETUNREACH.
"""

from __future__ import annotations

from pathlib import Path

from faultlab import UdpStream, gw_and_swan, settled, statistic
from gwlab import ping_ok, site_config, wait_until

from ipsecgw.tools import testbed as tb


def test_rekey_after_hard_expiry_never_unroutes(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    config = site_config(extra_tunnel="tunnel lifetime seconds 3600 kilobytes 1000")
    with gw_and_swan(two_sites, tmp_path, gw_config=config) as (gw, swan):
        assert gw.wait_tunnel_up("siteB")
        assert wait_until(lambda: settled(gw, swan), timeout=10)
        with tb.Faults(two_sites.a) as faults:
            # The peer's answers to the rekey are lost for a while: the old
            # SA reaches its 1,000 KB before the new one is there.
            faults.drop(tb.IKE_ONLY)
            # 400 KB/s: the rekey starts at 900 KB (2.2 s), the SA expires at 2.5 s.
            stream = UdpStream(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER, rate=400,
                               seconds=9)
            try:
                assert wait_until(lambda: "deleted: expired" in gw.log(), timeout=8), gw.log()
                faults.clear()  # the rekey's retransmissions now get through
                result = stream.result()
            finally:
                stream.kill()
        assert result.errors == {}, (result, gw.log()[-3000:])
        assert statistic(gw, "ESP not sent, no SA") > 0  # the gap was real, its packets counted
        assert wait_until(lambda: settled(gw, swan), timeout=20)
        assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
