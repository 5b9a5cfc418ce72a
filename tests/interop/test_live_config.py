"""Live configuration changes through the CLI, against strongSwan, and restarts.

- `shutdown` deletes the tunnel's SAs with Delete payloads; `no shutdown`
  brings it back.
- A changed transform set takes effect at the next negotiation.
- A changed interface (MTU) is re-created, its IPsec SAs renegotiated.
- Removing a transform set in use is refused and changes nothing.
- `write memory` then a restart gives the same `show configuration`.
"""

from __future__ import annotations

from pathlib import Path

from gwlab import PSK, IpsecgwProcess, ping_ok, site_config, wait_until

from ipsecgw.tools import testbed as tb


def strongswan_b() -> str:
    return tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK,
                           esp_proposals="aes128-sha1-modp2048,aes256-sha256-modp2048")


def test_shutdown_and_transform_change(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    with tb.StrongSwan(two_sites.b, strongswan_b(), workdir=tmp_path / "swan") as swan:
        swan.start()
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config())
        try:
            assert gw.wait_tunnel_up("siteB"), gw.log()
            gw.cli("configure terminal", "interface tunnel ipsec:siteB", "shutdown")
            assert wait_until(lambda: "received DELETE for ESP CHILD_SA" in swan.log())
            assert wait_until(lambda: "disabled" in gw.cli("show ipsec tunnel").split())
            assert wait_until(lambda: "INSTALLED" not in swan.list_sas())
            assert not ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER, 1)

            # A new transform set, then back up: the new SA uses it.
            gw.cli("configure terminal", "ipsec transform-set strong esp-aes256-hmac-sha256",
                   "interface tunnel ipsec:siteB", "tunnel transform-set strong",
                   "no shutdown")
            assert gw.wait_tunnel_up("siteB"), gw.log()
            assert "esp-aes256-hmac-sha256" in gw.cli("show ipsec sa")
            assert wait_until(lambda: "AES_CBC-256/HMAC_SHA2_256_128" in swan.list_sas())
            assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)

            # An interface change (MTU) re-creates the TUN device and renews
            # the SAs on it (the new device has none of their state).
            gw.cli("configure terminal", "interface tunnel ipsec:siteB", "tunnel mtu 1300")
            assert wait_until(lambda: "mtu 1300" in two_sites.a.ip("link", "show", "ips-siteB"))
            assert gw.wait_tunnel_up("siteB")
            assert wait_until(lambda: ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER, 1))
            assert "esp-aes256-hmac-sha256" in gw.cli("show ipsec sa")

            # The set in use cannot go; nothing changes.
            before = gw.cli("show configuration")
            refused = gw.cli("configure terminal", "no ipsec transform-set strong", check=False)
            assert "strong" in gw.cli("show ipsec transform-set")
            assert gw.cli("show configuration") == before, refused
        finally:
            gw.stop()


def test_write_memory_and_restart(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config(shutdown=True))
    try:
        gw.cli("configure terminal", "ipsec option tx-invalid-cookie",
               "ipsec option dpd idle 30 retries 5", "ipsec lifetime seconds 3600",
               "ipsec key manual pre-share 10.99.0.9", "key \"another secret\"",
               "exit", "write memory")
        running = gw.cli("show configuration")
    finally:
        gw.stop()
    saved = gw.config_path.read_text()
    assert "another secret" not in saved and "s3cr3t" not in saved, "keys saved masked only"
    assert "masked-key" in saved
    assert (gw.config_path.stat().st_mode & 0o777) == 0o600
    again = IpsecgwProcess(two_sites.a, tmp_path / "gw", saved)
    try:
        assert again.cli("show configuration") == running
        assert "another secret" not in again.log()
    finally:
        again.stop()
