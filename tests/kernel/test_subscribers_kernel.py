"""Dynamic IPSec subscribers on the kernel's XFRM (issue 16 on issue 14's plane), in the VM.

Two real clients at once: vpnc (its own ESP over TUN) from behind a
masquerading NAT, so its SAs are ESP-in-UDP, and strongSwan as an XAUTH
road warrior with its kernel backend (raw ESP). Each subscriber must get
its own XFRM interface and SAs in the gateway's kernel, pass traffic, be
counted from the kernel's counters, and leave nothing behind when it goes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gwlab import behind_nat, ping_ok, wait_until
from vmgw import Gateway

from ipsecgw.tools import lab_remote
from ipsecgw.tools import testbed as tb
from ipsecgw.tools import testbed_remote as tr
from ipsecgw.tools.lab_remote import GROUP, GROUP_KEY

pytestmark = pytest.mark.kernel

POOL = {f"10.200.0.{n}" for n in range(10, 21)}


def local_users_config() -> str:
    """The lab's gateway with local XAUTH users instead of RADIUS (the VM runs no FreeRADIUS)."""
    config = re.sub(r"radius (authentication|accounting) server .*?\n exit\n", "",
                    lab_remote.gateway_config(), flags=re.S)
    return config.replace("aaa authentication xauth radius\n",
                          "aaa authentication xauth local\n"
                          "username alice password wonderland\n"
                          "username carol password c4rol\n")


def subscribers(gw: Gateway) -> dict[str, list[str]]:
    rows = gw.cli("show subscribers").splitlines()[2:]
    return {row.split()[0]: row.split() for row in rows if row.strip()}


def subscriber_links(netns: tb.Netns) -> list[str]:
    return re.findall(r"\d+: (ipss\d+)[@:]", netns.ip("-d", "link", "show", "type", "xfrm"))


def test_vpnc_behind_nat_and_a_kernel_strongswan_road_warrior_on_xfrm(tmp_path: Path) -> None:
    assert "ipsec tunnel-profile" in local_users_config()
    assert "radius" not in local_users_config()
    extra = f"load = {tb.CHARON_PLUGINS.replace('kernel-libipsec ', '')} xauth-generic unity attr"
    road_warrior = lab_remote.strongswan_road_warrior()
    with tb.TwoSites("igwks") as sites, behind_nat(sites.b, "igwkh") as home, tb.StrongSwan(
            sites.b, road_warrior, charon_extra=extra, workdir=tmp_path / "swan") as swan:
        gw = Gateway(sites.a, tmp_path / "gw", local_users_config())
        try:
            assert "data plane xfrm" in gw.log(), gw.log()[:3000]
            with tr.Vpnc(home, gateway=tb.SITE_A_OUTER, group=GROUP, group_key=GROUP_KEY,
                         username="alice", password="wonderland",
                         workdir=tmp_path / "vpnc") as vpnc:
                vpnc.start()
                alice = vpnc.wait_connected(90)["INTERNAL_IP4_ADDRESS"]
                swan.start()
                out = swan.initiate("rw", "rw", timeout=60)
                assert "completed successfully" in out, swan.log()[-4000:] + gw.log()[-3000:]
                rows = subscribers(gw)
                carol = rows["carol"][3]
                assert {alice, carol} <= POOL and alice != carol, rows
                assert ping_ok(home, alice, tb.SITE_A_INNER), vpnc.log()[-3000:]
                assert wait_until(lambda: ping_ok(sites.b, carol, tb.SITE_A_INNER), timeout=10)
                # Each subscriber has its own XFRM interface and SAs in the kernel;
                # vpnc's (behind the NAT) are ESP-in-UDP, strongSwan's raw ESP.
                links = subscriber_links(sites.a)
                assert sorted(links) == sorted([rows["alice"][4].replace("ipsec:remote:", "ipss"),
                                                rows["carol"][4].replace("ipsec:remote:", "ipss")]
                                               ), (links, rows)
                states = sites.a.ip("-s", "xfrm", "state")
                assert states.count("if_id 0x495") == 4, states
                assert states.count("encap type espinudp") == 2, states
                # show subscribers counts bytes from the kernel's counters
                assert all(int(row[-1]) > 0 and int(row[-2]) > 0
                           for row in subscribers(gw).values()), (
                    gw.cli("show subscribers") + sites.a.ip("-s", "xfrm", "state")
                    + swan.list_sas())
                swan.terminate("rw")
            # both have said goodbye: nothing of theirs is left in the kernel
            assert wait_until(lambda: subscribers(gw) == {}, timeout=30), gw.cli("show subscribers")
            assert wait_until(lambda: sites.a.ip("xfrm", "state").strip() == "", timeout=20), (
                sites.a.ip("xfrm", "state"))
            assert subscriber_links(sites.a) == []
            pool = gw.cli("show ip local pool").splitlines()[2].split()
            assert pool[-2:] == ["0", "11"], pool  # both addresses back in the pool
        finally:
            gw.stop()
        assert sites.a.ip("xfrm", "policy").strip() == ""
        assert sites.a.ip("-d", "link", "show", "type", "xfrm").strip() == ""
