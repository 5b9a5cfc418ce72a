"""Manual SAs between two ipsecgw gateways (user-space data plane): no IKE at all.

Each side has the other's outbound SPI and keys as its inbound ones.  The
pings need the tunnel; tshark sees ESP with exactly the configured SPIs and
not one ISAKMP message; the keys appear neither in the daemons' logs nor in
`show configuration`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from gwlab import IpsecgwProcess, ping_ok

from ipsecgw.tools import testbed as tb

KEY_AB = ("000102030405060708090a0b0c0d0e0f", "101112131415161718191a1b1c1d1e1f20212223")
KEY_BA = ("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3")
SPI_AB, SPI_BA = 0x1000, 0x2000


def manual_config(local: str, peer: str, local_net: str, remote_net: str,
                  inbound: tuple[int, tuple[str, str]],
                  outbound: tuple[int, tuple[str, str]]) -> str:
    lines = ["ipsec transform-set one esp-aes128-hmac-sha",
             "interface tunnel ipsec:manual", f" tunnel source {local}",
             f" tunnel destination {peer}", " tunnel transform-set one",
             f" tunnel local-network {local_net}", f" tunnel remote-network {remote_net}"]
    for direction, (spi, (ekey, akey)) in (("inbound", inbound), ("outbound", outbound)):
        lines.append(f" tunnel manual {direction} spi {spi} encryption-key {ekey} "
                     f"authentication-key {akey}")
    return "\n".join([*lines, " exit"]) + "\n"


def test_manual_sas_between_two_ipsecgw(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    capture = tb.Capture(two_sites.b, "veth-b", tmp_path / "manual.pcap")
    a = IpsecgwProcess(two_sites.a, tmp_path / "a", manual_config(
        tb.SITE_A_OUTER, tb.SITE_B_OUTER, tb.SITE_A_NET, tb.SITE_B_NET,
        (SPI_BA, KEY_BA), (SPI_AB, KEY_AB)))
    b = IpsecgwProcess(two_sites.b, tmp_path / "b", manual_config(
        tb.SITE_B_OUTER, tb.SITE_A_OUTER, tb.SITE_B_NET, tb.SITE_A_NET,
        (SPI_AB, KEY_AB), (SPI_BA, KEY_BA)))
    try:
        assert a.wait_tunnel_up("manual", 10) and b.wait_tunnel_up("manual", 10), \
            a.log() + b.log()
        assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
        assert ping_ok(two_sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
        sas = a.cli("show ipsec sa")
        assert "0x00002000   0x00001000" in sas, sas
        shown = a.cli("show configuration")
    finally:
        a.stop()
        b.stop()
        pcap = capture.stop()
    spis = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", "esp", "-T", "fields",
                           "-e", "esp.spi"], capture_output=True, text=True,
                          check=True).stdout.split()
    assert {int(spi, 16) for spi in spis} == {SPI_AB, SPI_BA}
    isakmp = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", "isakmp"],
                            capture_output=True, text=True, check=True).stdout
    assert not isakmp.strip()
    for key in (*KEY_AB, *KEY_BA):
        assert key not in shown and key not in a.log() and key not in b.log()
