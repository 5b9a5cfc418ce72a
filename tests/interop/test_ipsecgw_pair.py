"""Two ipsecgw gateways, both configured to initiate, started together.

Both ends bring the tunnel up at the same moment; within the rekey grace
they must settle on one IPsec SA pair with the same SPIs at both ends, and
stay there: no deletes or renegotiations afterwards, pings passing.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from gwlab import IpsecgwProcess, ping_ok, site_config, wait_until

from ipsecgw.tools import testbed as tb


def spi_pairs(gw: IpsecgwProcess) -> set[tuple[str, str]]:
    rows = re.findall(r"0x([0-9a-f]{8})\s+0x([0-9a-f]{8})", gw.cli("show ipsec sa"))
    return {(a, b) for a, b in rows}


def established(gw: IpsecgwProcess) -> int:
    found = re.search(r"Phase 2 SAs established\s+(\d+)", gw.cli("show ipsec statistics"))
    return int(found.group(1)) if found else -1


def test_both_ends_initiating_converge(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    a = IpsecgwProcess(two_sites.a, tmp_path / "a", site_config())
    b = IpsecgwProcess(two_sites.b, tmp_path / "b", site_config(
        hostname="siteB", local=tb.SITE_B_OUTER, peer=tb.SITE_A_OUTER,
        local_net=tb.SITE_B_NET, remote_net=tb.SITE_A_NET, tunnel="siteA"))
    try:
        assert a.wait_tunnel_up("siteB") and b.wait_tunnel_up("siteA"), a.log() + b.log()

        def settled() -> bool:
            pairs_a, pairs_b = spi_pairs(a), spi_pairs(b)
            mirrored = {(o, i) for i, o in pairs_b}
            return len(pairs_a) == 1 and pairs_a == mirrored

        # Superseded pairs go after the 30 s rekey grace.
        assert wait_until(settled, timeout=45, interval=1), (a.cli("show ipsec sa"),
                                                             b.cli("show ipsec sa"))
        counts = (established(a), established(b))
        time.sleep(5)
        assert settled() and (established(a), established(b)) == counts, "no churn"
        assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
        assert ping_ok(two_sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
    finally:
        a.stop()
        b.stop()
