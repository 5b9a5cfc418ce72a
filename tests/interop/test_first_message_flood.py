"""A flood of Main Mode first messages from an address no tunnel accepts (issue 13.1).

Site A runs ipsecgw with a responder-only tunnel for site B; a second
address of site B (10.99.0.3, no key, no tunnel) sends well-formed MM1s with
fresh cookies, faster than the half-open table (1,000) can hold them, while
strongSwan at site B brings the tunnel up.  The real peer must get through
within 2 s, and the flood must get no answer at all.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from conftest import require_interop
from gwlab import PSK, IpsecgwProcess, site_config, wait_until

from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.policy import EnginePolicy, IkeRule, TunnelPolicy
from ipsecgw.tools import testbed as tb

FLOOD_IP = "10.99.0.3"
RATE = 250  # first messages per second: 1,250 in the 5 s before the peer starts

FLOODER = r"""
import os, socket, sys, time
data, rate, seconds = bytes.fromhex(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[4], 5500))
sock.setblocking(False)
sent = answers = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    sock.sendto(os.urandom(8) + data[8:], (sys.argv[5], 500))
    sent += 1
    try:
        while True:
            sock.recv(65535)
            answers += 1
    except BlockingIOError:
        pass
    time.sleep(1 / rate)
time.sleep(1)
try:
    while True:
        sock.recv(65535)
        answers += 1
except BlockingIOError:
    pass
print(sent, answers)
"""


def _first_message() -> bytes:
    """An MM1 that ipsecgw's rule (aes128, sha, group 14) accepts."""
    engine = Engine(EnginePolicy(
        vr="flood", local_addresses=(FLOOD_IP,),
        ike_rules=(IkeRule(encryption="aes128", hash="sha", group=14),),
        preshared_keys={tb.SITE_A_OUTER: PSK.encode()},
        tunnels=(TunnelPolicy(name="x", local_address=FLOOD_IP, peer_address=tb.SITE_A_OUTER,
                              local_network=tb.SITE_B_NET, remote_network=tb.SITE_A_NET),)))
    engine.handle_timer(0.0)
    (datagram,) = engine.datagrams_to_send(0.0)
    return datagram.data


def test_real_peer_gets_through_a_first_message_flood(two_sites: tb.TwoSites,
                                                      tmp_path: Path) -> None:
    require_interop(("ip", "swanctl", tb.CHARON))
    two_sites.b.ip("addr", "add", f"{FLOOD_IP}/24", "dev", "veth-b")
    conf = tb.swanctl_conf(
        local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER, local_ts=tb.SITE_B_NET,
        remote_ts=tb.SITE_A_NET, psk=PSK, proposals="aes128-sha1-modp2048",
        esp_proposals="aes128-sha1-modp2048")
    with tb.StrongSwan(two_sites.b, conf, workdir=tmp_path / "swan") as swan:
        swan.start()
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config(responder_only=True))
        flood = None
        try:
            assert wait_until(lambda: "down" in gw.cli("show ipsec tunnel").split())
            flood = subprocess.Popen(
                [*two_sites.b.exec_prefix(), sys.executable, "-c", FLOODER,
                 _first_message().hex(), str(RATE), "12", FLOOD_IP, tb.SITE_A_OUTER],
                stdout=subprocess.PIPE, text=True)
            time.sleep(5)
            started = time.monotonic()
            assert "initiate completed successfully" in swan.initiate(timeout=10)
            took = time.monotonic() - started
            assert gw.wait_tunnel_up("siteB", timeout=5), gw.log()[-3000:]
            out, _ = flood.communicate(timeout=30)
            sent, answers = (int(n) for n in out.split())
            assert took <= 2.0, took
            assert sent > 1000 and answers == 0, (sent, answers)
            stats = gw.cli("show ipsec statistics")
            assert "unknown peer" in stats.lower(), stats
        finally:
            if flood is not None and flood.poll() is None:
                flood.kill()
                flood.wait()
            gw.stop()
