"""ipsecgw against Debian's strongSwan 5.9.8 (kernel-libipsec) in namespaces.

Site A runs ipsecgw (user-space ESP over TUN), site B runs charon. Every
case brings a tunnel up, passes pings both ways and a TCP transfer through
it, and checks that strongSwan itself counted the traffic on its CHILD_SA.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gwlab import PSK, IpsecgwProcess, Suite, ping_ok, site_config, tcp_transfer, wait_until

from ipsecgw.tools import testbed as tb

SUITES = [
    Suite("aes128-sha1-modp2048", "aes128", "sha", 14, "esp-aes128-hmac-sha", 14,
          "aes128-sha1-modp2048", "aes128-sha1-modp2048"),
    Suite("aes256-sha256-modp2048-gcm", "aes256", "sha256", 14, "esp-aes256-gcm", 14,
          "aes256-sha256-modp2048", "aes256gcm16-modp2048"),
    Suite("3des-md5-modp1024-legacy", "3des", "md5", 2, "esp-3des-hmac-md5", None,
          "3des-md5-modp1024", "3des-md5"),
]


def child_packets(list_sas: str) -> tuple[int, int]:
    """(inbound, outbound) packets over all CHILD_SAs in swanctl --list-sas."""
    inbound = re.findall(r"\bin\s+[0-9a-f]{8},\s+\d+ bytes,\s+(\d+) packets", list_sas)
    outbound = re.findall(r"\bout\s+[0-9a-f]{8},\s+\d+ bytes,\s+(\d+) packets", list_sas)
    return sum(map(int, inbound)), sum(map(int, outbound))


def strongswan_b(suite: Suite, *, aggressive: bool = False, local_id: str | None = None,
                 remote_id: str | None = None) -> str:
    return tb.swanctl_conf(
        local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
        local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET,
        psk=PSK, proposals=suite.peer_ike, esp_proposals=suite.peer_esp,
        aggressive=aggressive, local_id=local_id, remote_id=remote_id,
    )


def check_traffic(sites: tb.TwoSites, swan: tb.StrongSwan) -> None:
    assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), "ping A -> B through the tunnel"
    assert ping_ok(sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER), "ping B -> A through the tunnel"
    assert tcp_transfer(sites.b, tb.SITE_B_INNER, sites.a, tb.SITE_A_INNER) == 200_000
    assert tcp_transfer(sites.a, tb.SITE_A_INNER, sites.b, tb.SITE_B_INNER, port=5002) == 200_000
    sas = swan.list_sas()
    assert "INSTALLED" in sas, sas
    inbound, outbound = child_packets(sas)
    assert inbound >= 6 and outbound >= 6, sas


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_ipsecgw_initiates_main_mode_psk(two_sites: tb.TwoSites, tmp_path: Path,
                                        suite: Suite) -> None:
    with tb.StrongSwan(two_sites.b, strongswan_b(suite), workdir=tmp_path / "swan") as swan:
        swan.start()
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config(
            encryption=suite.encryption, hash_=suite.hash_, group=suite.group,
            transforms=suite.transforms, pfs=suite.pfs))
        try:
            assert gw.wait_tunnel_up("siteB"), gw.log() + swan.log()[-3000:]
            check_traffic(two_sites, swan)
            assert "ESTABLISHED, IKEv1" in swan.list_sas()
        finally:
            gw.stop()


@pytest.mark.parametrize("suite", SUITES[:2], ids=lambda s: s.name)
def test_ipsecgw_responds_main_mode_psk(two_sites: tb.TwoSites, tmp_path: Path,
                                       suite: Suite) -> None:
    with tb.StrongSwan(two_sites.b, strongswan_b(suite), workdir=tmp_path / "swan") as swan:
        swan.start()
        # Responder-only at our end: only strongSwan initiates.
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config(
            encryption=suite.encryption, hash_=suite.hash_, group=suite.group,
            transforms=suite.transforms, pfs=suite.pfs, responder_only=True))
        try:
            assert wait_until(lambda: "down" in gw.cli("show ipsec tunnel").split())
            assert "initiate completed successfully" in swan.initiate()
            assert gw.wait_tunnel_up("siteB"), gw.log()
            assert "responder" in gw.cli("show ipsec ike-sa")
            check_traffic(two_sites, swan)
        finally:
            gw.stop()


def test_ipsecgw_responder_carries_traffic(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    suite = SUITES[0]
    with tb.StrongSwan(two_sites.b, strongswan_b(suite), workdir=tmp_path / "swan") as swan:
        swan.start()
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config(
            encryption=suite.encryption, hash_=suite.hash_, group=suite.group,
            transforms=suite.transforms, pfs=suite.pfs))
        try:
            # Both ends want the tunnel: whoever wins, traffic must pass.
            swan.initiate()
            assert gw.wait_tunnel_up("siteB"), gw.log()
            check_traffic(two_sites, swan)
            # This kernel has no ESP: `--dataplane auto` (the default) must
            # have said so and fallen back to ESP over TUN.
            assert "Data plane: userspace (the kernel " in gw.cli("show version")
        finally:
            gw.stop()


@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_aggressive_mode_psk_fqdn(two_sites: tb.TwoSites, tmp_path: Path, role: str) -> None:
    suite = SUITES[0]
    conf = strongswan_b(suite, aggressive=True, local_id="siteb.example.net",
                        remote_id="sitea.example.net")
    conf = conf.replace("secrets {", "secrets {", 1)
    with tb.StrongSwan(two_sites.b, conf, workdir=tmp_path / "swan",
                       charon_extra="i_dont_care_about_security_and_use_aggressive_mode_psk = yes",
                       ) as swan:
        swan.start()
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config(
            encryption=suite.encryption, hash_=suite.hash_, group=suite.group,
            transforms=suite.transforms, pfs=suite.pfs,
            aggressive="required" if role == "initiator" else "accepted",
            local_identity="domain-name sitea.example.net",
            peer_identity="domain-name siteb.example.net",
            psk_peer="siteb.example.net",
            responder_only=role == "responder"))
        try:
            if role == "responder":
                assert "initiate completed successfully" in swan.initiate()
            assert gw.wait_tunnel_up("siteB"), gw.log() + swan.log()[-3000:]
            check_traffic(two_sites, swan)
            log = swan.log()
            assert "AGGRESSIVE" in log, log[-3000:]
        finally:
            gw.stop()


def test_ipsecgw_to_ipsecgw_raw_esp(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    """Without NAT and without libipsec on either side, ESP goes raw (IP protocol 50)."""
    a = IpsecgwProcess(two_sites.a, tmp_path / "a", site_config())
    b = IpsecgwProcess(two_sites.b, tmp_path / "b", site_config(
        hostname="siteB", local=tb.SITE_B_OUTER, peer=tb.SITE_A_OUTER,
        local_net=tb.SITE_B_NET, remote_net=tb.SITE_A_NET, tunnel="siteA"))
    capture = tb.Capture(two_sites.b, "veth-b", tmp_path / "esp.pcap", "esp or udp")
    try:
        assert a.wait_tunnel_up("siteB"), a.log() + b.log()
        assert b.wait_tunnel_up("siteA"), b.log()
        assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
        assert tcp_transfer(two_sites.b, tb.SITE_B_INNER, two_sites.a, tb.SITE_A_INNER) == 200_000
    finally:
        pcap = capture.stop()
        a.stop()
        b.stop()
    protocols = tb.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "ip.proto"]).split()
    assert "50" in protocols, "ESP travelled as IP protocol 50"
    assert "1" not in protocols, "no clear ICMP on the wire"
