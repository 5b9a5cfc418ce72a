"""ipsecgw on the kernel's XFRM against strongSwan on the kernel's XFRM
(kernel-netlink, not kernel-libipsec), in the VM: raw ESP, both roles.

Each case checks the wire's other end (strongSwan's own SA and counters),
the kernel (`ip xfrm state` shows the negotiated algorithms on ipsecgw's
XFRM interface), that `show ipsec sa` reports the kernel's byte counters,
and that nothing of ipsecgw's is left in the kernel when it stops, after
a kill -9 and restart too. Rekeys under a ping, `ipsec clear sa` and DPD:
test_strongswan_kernel_ops.py; behind a NAT: test_strongswan_nat_kernel.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from gwlab import ping_ok, site_config, wait_until
from vmgw import Gateway, kernel_bytes, kernel_strongswan, nothing_left

from ipsecgw.tools import testbed as tb

pytestmark = pytest.mark.kernel


def check_tunnel(sites: tb.TwoSites, gw: Gateway, swan: tb.StrongSwan,
                 expected: list[str]) -> None:
    assert gw.wait_tunnel_up("siteB", timeout=60), gw.log()[-4000:] + swan.log()[-3000:]
    assert "data plane xfrm" in gw.log(), gw.log()[:3000]
    assert "Data plane: xfrm (the kernel carries ESP" in gw.cli("show version")
    assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), gw.log()[-3000:]
    assert ping_ok(sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
    states = sites.a.ip("xfrm", "state")
    for text in expected:
        assert states.count(text) == 2, states  # both directions
    assert states.count("if_id 0x495") == 2, states
    assert "ips-siteB" in sites.a.ip("-d", "link", "show", "type", "xfrm")
    sas = swan.list_sas()
    assert "INSTALLED" in sas and "ESTABLISHED, IKEv1" in sas, sas
    # show ipsec sa reports the kernel's counters of the same SAs
    kernel = kernel_bytes(sites.a)
    rows = [line.split() for line in gw.cli("show ipsec sa").splitlines()
            if line.startswith("ipsec:siteB")]
    assert len(rows) == 1, rows
    _, inbound_spi, outbound_spi, *_, in_bytes, out_bytes = rows[0]
    assert int(in_bytes) == kernel[inbound_spi] > 0, (rows, kernel)
    assert int(out_bytes) == kernel[outbound_spi] > 0, (rows, kernel)


def test_ipsecgw_initiates_to_kernel_strongswan_raw_esp(tmp_path: Path) -> None:
    with tb.TwoSites("igwk") as sites, kernel_strongswan(
            sites.b, tmp_path / "swan", esp="aes128-sha1-modp2048") as swan:
        swan.start()
        gw = Gateway(sites.a, tmp_path / "gw", site_config(pfs=14))
        try:
            check_tunnel(sites, gw, swan, ["enc cbc(aes)", "auth-trunc hmac(sha1)"])
        finally:
            gw.stop()
        nothing_left(sites.a)


def test_ipsecgw_responds_to_kernel_strongswan_gcm_pfs_and_survives_kill_9(
        tmp_path: Path) -> None:
    config = site_config(transforms="esp-aes256-gcm", pfs=14, responder_only=True)
    with tb.TwoSites("igwk") as sites, kernel_strongswan(
            sites.b, tmp_path / "swan", esp="aes256gcm16-modp2048") as swan:
        swan.start()
        gw = Gateway(sites.a, tmp_path / "gw", config)
        try:
            swan.initiate()
            check_tunnel(sites, gw, swan, ["aead rfc4106(gcm(aes))"])
            gw.proc.kill()  # kill -9: the kernel keeps the old run's state
        finally:
            gw.stop()
        assert "ips-siteB" in sites.a.ip("link", "show")
        # The restarted daemon first removes the old run's SAs, policies and
        # interface, then answers strongSwan's new negotiation.
        swan.terminate()
        gw = Gateway(sites.a, tmp_path / "gw2", config)
        try:
            assert wait_until(lambda: "removed what an earlier ipsecgw left" in gw.log(), 20), (
                gw.log())
            swan.initiate()
            assert gw.wait_tunnel_up("siteB", timeout=60), gw.log()[-4000:]
            assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), gw.log()[-3000:]
            assert sites.a.ip("xfrm", "state").count("if_id 0x495") == 2
        finally:
            gw.stop()
        nothing_left(sites.a)
