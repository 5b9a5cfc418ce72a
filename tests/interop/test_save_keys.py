"""`--save-keys`: tshark decrypts a capture of ipsecgw's IKE and ESP traffic.

Wireshark reads its key tables from its personal configuration directory;
WIRESHARK_CONFIG_DIR points tshark at the directory the daemon writes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gwlab import PSK, IpsecgwProcess, ping_ok, site_config

from ipsecgw.tools import testbed as tb


def tshark(pcap: Path, keys: Path, *args: str) -> str:
    (keys / "preferences").write_text("esp.enable_encryption_decode: TRUE\n")
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(keys)}
    return subprocess.run(["tshark", "-r", str(pcap), *args], capture_output=True, text=True,
                          env=env, check=True, timeout=60).stdout


def test_tshark_decrypts_ike_and_esp(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    conf = tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK)
    with tb.StrongSwan(two_sites.b, conf, workdir=tmp_path / "swan") as swan:
        swan.start()
        capture = tb.Capture(two_sites.a, "veth-a", tmp_path / "gw.pcap", "udp or esp")
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config(), save_keys=True,
                            log_level="debug")
        try:
            assert gw.wait_tunnel_up("siteB"), gw.log()
            assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
        finally:
            pcap = capture.stop()
            keys = tmp_path / "gw" / "keys"
            ike_table = (keys / "ikev1_decryption_table").read_text()
            esp_table = (keys / "esp_sa").read_text()
            gw.stop()
    assert ike_table.count(",") >= 1 and esp_table.count("\n") >= 2
    # Not a secret in the debug log: neither the PSK nor any key material.
    log = gw.log()
    assert "DEBUG" in log and PSK not in log
    secrets = [ike_table.split(",")[1].strip()] + [
        field.strip('"')[2:] for row in esp_table.splitlines()
        for field in row.split(",")[5::2]
    ]
    assert all(len(secret) >= 32 and secret not in log for secret in secrets), "key in log"
    mode = os.stat(keys / "esp_sa").st_mode & 0o777
    assert mode == 0o600, oct(mode)
    # Main Mode messages 5 and 6 are encrypted: decrypted, they show their ID payloads.
    ids = tshark(pcap, keys, "-Y", "isakmp.id.type", "-T", "fields", "-e", "isakmp.id.type")
    assert ids.split(), "tshark decrypted the identity payloads of Main Mode"
    # The pings, decrypted from UDP-encapsulated ESP.
    icmp = tshark(pcap, keys, "-Y", "icmp.type == 8 && ip.src == 10.98.1.1", "-T", "fields",
                  "-e", "icmp.seq")
    assert len(icmp.split()) >= 3, "tshark decrypted the ESP carrying the pings"
