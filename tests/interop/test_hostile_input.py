"""Hostile datagrams at a gateway with a tunnel up: dropped, counted, harmless.

Garbage and truncated ISAKMP on 500 and 4500, ESP with unknown SPIs and
forged ESP under the live SPI on 4500: the tunnel stays up, traffic still
passes, and `show ipsec statistics` counts what was dropped.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from gwlab import PSK, IpsecgwProcess, ping_ok, site_config

from ipsecgw.tools import testbed as tb

_FLOOD = r"""
import os, random, socket, sys
target, live_spi = sys.argv[1], bytes.fromhex(sys.argv[2])
random.seed(7)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3000):
    kind = i % 5
    if kind == 0:      # random bytes to IKE
        s.sendto(os.urandom(random.randint(1, 400)), (target, 500))
    elif kind == 1:    # a truncated ISAKMP header behind the non-ESP marker
        s.sendto(b"\0\0\0\0" + os.urandom(8) + bytes(8) + b"\x01\x10\x02\x00",
                 (target, 4500))
    elif kind == 2:    # ESP with an unknown SPI
        s.sendto(os.urandom(4) + os.urandom(random.randint(4, 200)), (target, 4500))
    elif kind == 3:    # forged ESP under the live SPI: fails authentication
        # IV 16 + four AES blocks + ICV 12: well formed, so it reaches the ICV check
        s.sendto(live_spi + (i).to_bytes(4, "big") + os.urandom(92), (target, 4500))
    else:              # runts
        s.sendto(os.urandom(random.randint(1, 7)), (target, 4500))
"""


def counter(stats: str, label: str) -> int:
    found = re.search(rf"{re.escape(label)}\s+(\d+)", stats)
    return int(found.group(1)) if found else -1


def test_garbage_is_dropped_and_counted(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    conf = tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK)
    with tb.StrongSwan(two_sites.b, conf, workdir=tmp_path / "swan") as swan:
        swan.start()
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config())
        try:
            assert gw.wait_tunnel_up("siteB"), gw.log()
            spi = re.search(r"0x([0-9a-f]{8})", gw.cli("show ipsec sa"))
            assert spi
            before = gw.cli("show ipsec sa")
            two_sites.b.run(sys.executable, "-c", _FLOOD, tb.SITE_A_OUTER, spi.group(1),
                            timeout=60)
            assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
            stats = gw.cli("show ipsec statistics")
            assert counter(stats, "Dropped, malformed") > 0, stats
            assert counter(stats, "ESP dropped, unknown SPI") > 0, stats
            assert counter(stats, "ESP dropped, authentication failed") > 0, stats
            assert counter(stats, "Dropped, internal error") == 0, stats
            # The same SAs: nothing was torn down or renegotiated.
            assert spi.group(1) in gw.cli("show ipsec sa")
            assert before.splitlines()[2].split()[:3] == \
                gw.cli("show ipsec sa").splitlines()[2].split()[:3]
            assert "Traceback" not in gw.log()
        finally:
            gw.stop()
