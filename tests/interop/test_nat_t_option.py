"""`no ipsec option nat-t` on the wire (tshark).

strongSwan's kernel-libipsec (the user-space ESP of this test bed, TESTBED.md)
only does UDP-encapsulated ESP: it forces encapsulation with a peer that
announces NAT-T (`encap = yes`: it fakes a NAT in its NAT-D payloads), and
refuses to install an SA without it ("only UDP encapsulation is supported").
So against strongSwan the option is checked on the wire: on, ESP travels in
UDP 4500; off, no NAT-T vendor ID and no NAT-D payload from anyone, nothing
on 4500, and our ESP is raw IP protocol 50, which strongSwan then cannot
take.  Two ipsecgw gateways with the option off pass pings over raw ESP.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from gwlab import PSK, IpsecgwProcess, ping, ping_ok, site_config, wait_until

from ipsecgw.isakmp.constants import (
    VENDOR_ID_NAT_T_DRAFT_02_N,
    VENDOR_ID_NAT_T_DRAFT_03,
    VENDOR_ID_NAT_T_RFC3947,
)
from ipsecgw.tools import testbed as tb

NAT_T_IDS = {v.hex() for v in (VENDOR_ID_NAT_T_RFC3947, VENDOR_ID_NAT_T_DRAFT_03,
                               VENDOR_ID_NAT_T_DRAFT_02_N)}


def tshark(pcap: Path, display_filter: str, field: str) -> list[str]:
    out = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields",
                          "-E", "occurrence=a", "-E", "aggregator=|", "-e", field],
                         capture_output=True, text=True, check=True).stdout
    return [value for line in out.splitlines() for value in line.split("|") if value]


def strongswan_conf() -> str:
    return tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK,
                           extra_conn="encap = yes")


def nat_t_payloads(pcap: Path) -> tuple[set[str], list[str]]:
    """(NAT-T vendor IDs, NAT-D payloads) anyone sent."""
    vids = set(tshark(pcap, "isakmp", "isakmp.vid_bytes")) & NAT_T_IDS
    nat_d = tshark(pcap, "isakmp.typepayload == 20 || isakmp.typepayload == 130",
                   "isakmp.typepayload")
    return vids, nat_d


def test_nat_t_on_against_strongswan(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    with tb.StrongSwan(two_sites.b, strongswan_conf(), workdir=tmp_path / "swan") as swan:
        swan.start()
        capture = tb.Capture(two_sites.b, "veth-b", tmp_path / "on.pcap")
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config())
        try:
            assert gw.wait_tunnel_up("siteB"), gw.log() + swan.log()[-3000:]
            assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
        finally:
            gw.stop()
            pcap = capture.stop()
    vids, nat_d = nat_t_payloads(pcap)
    assert vids and nat_d
    assert tshark(pcap, "udp.port == 4500 && esp", "esp.spi")
    assert not tshark(pcap, "ip.proto == 50", "esp.spi")


def test_nat_t_off_against_strongswan(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    with tb.StrongSwan(two_sites.b, strongswan_conf(), workdir=tmp_path / "swan") as swan:
        swan.start()
        capture = tb.Capture(two_sites.b, "veth-b", tmp_path / "off.pcap")
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw",
                            site_config(extra_global="no ipsec option nat-t"))
        try:
            assert gw.wait_tunnel_up("siteB"), gw.log() + swan.log()[-3000:]
            ping(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER, 2)  # ESP from us, raw
            assert wait_until(lambda: "only UDP encapsulation is supported" in swan.log())
        finally:
            gw.stop()
            pcap = capture.stop()
    assert nat_t_payloads(pcap) == (set(), [])
    assert not tshark(pcap, "udp.port == 4500", "udp.port")
    assert tshark(pcap, f"ip.proto == 50 && ip.src == {tb.SITE_A_OUTER}", "esp.spi")


def test_nat_t_off_between_two_ipsecgw(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    capture = tb.Capture(two_sites.b, "veth-b", tmp_path / "pair.pcap")
    off = "no ipsec option nat-t"
    a = IpsecgwProcess(two_sites.a, tmp_path / "a", site_config(extra_global=off))
    b = IpsecgwProcess(two_sites.b, tmp_path / "b", site_config(
        hostname="siteB", local=tb.SITE_B_OUTER, peer=tb.SITE_A_OUTER,
        local_net=tb.SITE_B_NET, remote_net=tb.SITE_A_NET, tunnel="siteA", extra_global=off,
        responder_only=True))
    try:
        assert a.wait_tunnel_up("siteB") and b.wait_tunnel_up("siteA"), a.log() + b.log()
        assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
        assert ping_ok(two_sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
    finally:
        a.stop()
        b.stop()
        pcap = capture.stop()
    assert nat_t_payloads(pcap) == (set(), [])
    assert not tshark(pcap, "udp.port == 4500", "udp.port")
    for source in (tb.SITE_A_OUTER, tb.SITE_B_OUTER):
        assert tshark(pcap, f"ip.proto == 50 && ip.src == {source}", "esp.spi")
