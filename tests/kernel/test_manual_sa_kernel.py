"""Manual SAs on the XFRM plane against the kernel's own `ip xfrm` (issue 15,
item 2): site A is ipsecgw with `tunnel manual`, site B is nothing but SAs and
policies typed by hand, as an administrator would on a plain Linux host. No
IKE runs; the pings need both SAs, and each end counts them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gwlab import ping_ok
from vmgw import Gateway

from ipsecgw.tools import testbed as tb

pytestmark = pytest.mark.kernel
KEY_AB = ("000102030405060708090a0b0c0d0e0f", "101112131415161718191a1b1c1d1e1f20212223")
KEY_BA = ("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3")
SPI_AB, SPI_BA = 0x1000, 0x2000

CONFIG = f"""ipsec transform-set one esp-aes128-hmac-sha
interface tunnel ipsec:manual
 tunnel source {tb.SITE_A_OUTER}
 tunnel destination {tb.SITE_B_OUTER}
 tunnel transform-set one
 tunnel local-network {tb.SITE_A_NET}
 tunnel remote-network {tb.SITE_B_NET}
 tunnel manual inbound spi {SPI_BA} encryption-key {KEY_BA[0]} authentication-key {KEY_BA[1]}
 tunnel manual outbound spi {SPI_AB} encryption-key {KEY_AB[0]} authentication-key {KEY_AB[1]}
 exit
"""


def by_hand(b: tb.Netns) -> None:
    """Site B's half: the mirror image of ipsecgw's SAs, policy-based."""
    for src, dst, spi, (enc, auth) in ((tb.SITE_A_OUTER, tb.SITE_B_OUTER, SPI_AB, KEY_AB),
                                       (tb.SITE_B_OUTER, tb.SITE_A_OUTER, SPI_BA, KEY_BA)):
        b.ip("xfrm", "state", "add", "src", src, "dst", dst, "proto", "esp", "spi", hex(spi),
             "mode", "tunnel", "enc", "cbc(aes)", "0x" + enc, "auth-trunc", "hmac(sha1)",
             "0x" + auth, "96")
    for sel_src, sel_dst, direction, src, dst in (
            (tb.SITE_B_NET, tb.SITE_A_NET, "out", tb.SITE_B_OUTER, tb.SITE_A_OUTER),
            (tb.SITE_A_NET, tb.SITE_B_NET, "in", tb.SITE_A_OUTER, tb.SITE_B_OUTER)):
        b.ip("xfrm", "policy", "add", "src", sel_src, "dst", sel_dst, "dir", direction,
             "tmpl", "src", src, "dst", dst, "proto", "esp", "mode", "tunnel")
    b.ip("route", "add", tb.SITE_A_NET, "via", tb.SITE_A_OUTER, "src", tb.SITE_B_INNER)


def packets(netns: tb.Netns) -> dict[int, int]:
    """SPI -> packets, from `ip -s xfrm state`."""
    found = {}
    for block in re.split(r"\n(?=src )", netns.ip("-s", "xfrm", "state")):
        spi = re.search(r"spi (0x[0-9a-f]+)", block)
        count = re.search(r"(\d+)\(packets\)", block)
        if spi and count:
            found[int(spi.group(1), 16)] = int(count.group(1))
    return found


def test_manual_sas_against_ip_xfrm_by_hand(tmp_path: Path) -> None:
    with tb.TwoSites("igwm") as sites:
        by_hand(sites.b)
        with Gateway(sites.a, tmp_path / "gw", CONFIG, dataplane="xfrm") as gw:
            assert gw.wait_tunnel_up("manual", 30), gw.log()
            assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), (
                gw.log()[-3000:] + sites.a.ip("-s", "xfrm", "state"))
            assert ping_ok(sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
            # 3 echoes each way, each answered: 6 packets on every SA, both ends
            assert packets(sites.b) == {SPI_AB: 6, SPI_BA: 6}, sites.b.ip("-s", "xfrm", "state")
            assert packets(sites.a) == {SPI_AB: 6, SPI_BA: 6}, sites.a.ip("-s", "xfrm", "state")
            assert sites.a.ip("xfrm", "state").count("if_id 0x495") == 2
            sas = gw.cli("show ipsec sa")
            assert "0x00002000   0x00001000" in sas, sas
            assert "ipsec:manual" not in gw.cli("show ipsec ike-sa")  # no IKE for it
        assert sites.a.ip("xfrm", "state").strip() == ""
        assert sites.a.ip("xfrm", "policy").strip() == ""
