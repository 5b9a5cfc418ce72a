"""ike-scan, a third IKE implementation, probing ipsecgw as a responder.

ike-scan sends a Main Mode (or Aggressive Mode) first message and decodes
the answer: a handshake that echoes the chosen transform when the offer is
acceptable, a NO-PROPOSAL-CHOSEN notify when it is not.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import require_interop
from gwlab import IpsecgwProcess, site_config, wait_until

from ipsecgw.tools import testbed as tb

# aes128 (7, key length 14=128), sha1 (2), pre-shared key (3=1), group 14 (4=14)
ACCEPTABLE = "--trans=(1=7,14=128,2=2,3=1,4=14)"
UNACCEPTABLE = "--trans=(1=5,2=1,3=1,4=2)"  # 3des-md5-modp1024


def ike_scan(ns: tb.Netns, *args: str) -> str:
    return ns.run("ike-scan", "--sport=0", "--retry=2", "--timeout=500", *args,
                  tb.SITE_A_OUTER, check=False)


def test_ike_scan_main_mode_handshake(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    require_interop(("ip", "ike-scan"))
    gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config(responder_only=True))
    try:
        assert wait_until(lambda: "down" in gw.cli("show ipsec tunnel").split())
        ok = ike_scan(two_sites.b, ACCEPTABLE)
        assert "1 returned handshake" in ok, ok
        assert "Enc=AES" in ok and "Hash=SHA1" in ok and "Group=14:modp2048" in ok, ok
        assert "RFC 3947 NAT-T" in ok or "Dead Peer Detection" in ok, ok
        refused = ike_scan(two_sites.b, UNACCEPTABLE)
        assert "1 returned notify" in refused and "NO-PROPOSAL-CHOSEN" in refused, refused
        stats = gw.cli("show ipsec statistics")
        failed = re.search(r"Phase 1 negotiations failed\s+(\d+)", stats)
        assert failed and int(failed.group(1)) >= 1, stats
    finally:
        gw.stop()
