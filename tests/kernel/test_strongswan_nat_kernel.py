"""ipsecgw on the kernel's XFRM as the public gateway of strongSwan (kernel
ESP) behind a masquerading NAT, in the VM; and `ipsec option
tx-invalid-cookie` in one of two VRs while the kernel reads ESP-in-UDP off
the daemon's port-4500 socket.

The NAT maps the peer's ports into NAT_PORTS, so ipsecgw's two SAs must
carry the mapped port (ESP-in-UDP, RFC 3948) for the pings to pass either
way; the peer's NAT-keepalives pass the NAT to ipsecgw's socket. Then IKE
messages under unknown cookies: only the VR with the option answers
INVALID-COOKIE, on port 500 and on port 4500, where IKE behind the non-ESP
marker still reaches the daemon through the kernel's ESP-in-UDP socket."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gwlab import (
    HOME_ADDRESS,
    KeepaliveCounter,
    linked_namespace,
    nat_sites,
    ping_ok,
    probe,
    site_config,
    wait_until,
)
from vmgw import Gateway, kernel_strongswan, nothing_left

from ipsecgw.isakmp.constants import NotifyType
from ipsecgw.tools import testbed as tb

pytestmark = pytest.mark.kernel
NAT_PORTS = "40000-40999"
# The second VR's transport network, joined to the NAT router (the prober).
SECOND_VR, PROBER = "10.95.0.1", "10.95.0.2"


def vr_section(statistics: str, vr: str) -> str:
    """One VR's part of `show ipsec statistics`."""
    for part in statistics.split("Virtual router ")[1:]:
        if part.split()[0] == vr:
            return part
    return ""


def test_strongswan_behind_nat_and_invalid_cookies_per_vr(tmp_path: Path) -> None:
    with nat_sites("igkn", ports=NAT_PORTS) as sites, \
            linked_namespace(sites.r, "igkv", SECOND_VR, PROBER, other_device="veth-p") as v2, \
            kernel_strongswan(sites.a, tmp_path / "swan", esp="aes128-sha1-modp2048",
                              charon_extra="keep_alive = 2s", local_addr=HOME_ADDRESS,
                              remote_addr=tb.SITE_B_OUTER, local_ts=tb.SITE_A_NET,
                              remote_ts=tb.SITE_B_NET) as swan:
        config = site_config(
            hostname="siteB", local=tb.SITE_B_OUTER, peer=tb.SITE_A_OUTER,
            local_net=tb.SITE_B_NET, remote_net=tb.SITE_A_NET, tunnel="siteA",
            peer_identity=f"address {HOME_ADDRESS}", responder_only=True,
            extra_global="ipsec option tx-invalid-cookie") + (
            f"virtual-router {v2.name}\n"
            f"ipsec local-endpoint {SECOND_VR} transport-virtual-router {v2.name}\n")
        keepalives = KeepaliveCounter(sites.b)
        swan.start()
        with Gateway(sites.b, tmp_path / "gw", config, dataplane="xfrm") as gw:
            swan.initiate()
            assert gw.wait_tunnel_up("siteA", timeout=60), gw.log()[-4000:] + swan.log()[-3000:]
            assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), (
                gw.log()[-3000:] + sites.b.ip("-s", "xfrm", "state"))
            assert ping_ok(sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
            assert "TUNNEL-in-UDP" in swan.list_sas(), swan.list_sas()
            assert "udp-tunnel" in gw.cli("show ipsec sa")
            # Both of ipsecgw's SAs: ESP in UDP between its 4500 and the NAT's mapping.
            states = sites.b.ip("xfrm", "state")
            inbound = re.findall(rf"src {tb.SITE_A_OUTER} dst {tb.SITE_B_OUTER}.*?"
                                 r"encap type espinudp sport (\d+) dport (\d+)", states, re.S)
            outbound = re.findall(rf"src {tb.SITE_B_OUTER} dst {tb.SITE_A_OUTER}.*?"
                                  r"encap type espinudp sport (\d+) dport (\d+)", states, re.S)
            assert len(inbound) == len(outbound) == 1, states
            (mapped, ours), (ours_out, mapped_out) = inbound[0], outbound[0]
            assert ours == ours_out == "4500" and mapped == mapped_out, states
            assert 40000 <= int(mapped) <= 40999, states
            # strongSwan behind the NAT keeps its mapping open (keep_alive = 2s)
            assert wait_until(lambda: keepalives.count() >= 2, 30), keepalives.count()
            assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)

            assert wait_until(lambda: re.search(
                rf"{SECOND_VR}\s.*\bup\b", gw.cli("show ipsec local-endpoint")) is not None, 30)
            for port in (500, 4500):
                answered = probe(sites.r, tb.SITE_B_OUTER, port=port)
                assert answered["notifies"] == [NotifyType.INVALID_COOKIE], (port, answered)
            assert probe(sites.r, SECOND_VR)["notifies"] == [], "the second VR has it off"
            statistics = gw.cli("show ipsec statistics")
            assert re.search(r"Invalid cookies sent\s+2\b", vr_section(statistics, "default")), (
                statistics)
            assert not re.search(r"Invalid cookies sent\s+[1-9]",
                                 vr_section(statistics, v2.name)), statistics
            # the tunnel is still carried by the kernel
            assert ping_ok(sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
        nothing_left(sites.b)
