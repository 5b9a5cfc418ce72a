"""Dynamic IPSec subscribers end to end (issue 16): real remote-access clients log
in through XAUTH against a real FreeRADIUS, get their address and DNS by Mode
Config, pass traffic to a host behind the gateway, are listed by `show
subscribers`, are accounted in RADIUS and leave nothing behind.

The gateway (site A, 10.99.0.1, with 10.98.1.1 behind it on lo) runs ipsecgw
and FreeRADIUS (on 127.0.0.1, in the same namespace: RADIUS leaves from the
router's own VR). Clients: vpnc (Aggressive Mode, group name and key, XAUTH,
its own ESP over TUN) and strongSwan as an IKEv1 XAUTH road warrior.

Needs the engine's side of issue 16 (branch subs-engine: profiles, XAUTH,
Mode Config) as well as this branch's daemon side.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_interop
from gwlab import IpsecgwProcess, behind_nat, ping_ok, wait_until

from ipsecgw.tools import lab_remote
from ipsecgw.tools import testbed as tb
from ipsecgw.tools import testbed_remote as tr
from ipsecgw.tools.lab_remote import DNS, GROUP, GROUP_KEY, RADIUS_SECRET


@dataclass
class Lab:
    sites: tb.TwoSites
    radius: tr.FreeRadius
    gateway: IpsecgwProcess
    workdir: Path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require_interop(("ip", tr.FREERADIUS, tr.VPNC, "swanctl", tb.CHARON))
    with tb.TwoSites("igwra") as sites, tr.FreeRadius(
        sites.a, clients={"127.0.0.1": RADIUS_SECRET}, users=lab_remote.USERS,
        workdir=tmp_path / "radius",
    ) as radius:
        radius.start()
        with IpsecgwProcess(sites.a, tmp_path / "gw", lab_remote.gateway_config()) as gateway:
            yield Lab(sites, radius, gateway, tmp_path)


def subscribers(gateway: IpsecgwProcess) -> dict[str, list[str]]:
    """`show subscribers` rows by user name."""
    rows = gateway.cli("show subscribers").splitlines()[2:]
    return {row.split()[0]: row.split() for row in rows if row.strip()}


def counter(gateway: IpsecgwProcess, label: str) -> int:
    """A counter of `show ipsec statistics` (default VR), e.g. "AAA logins refused"."""
    for line in gateway.cli("show ipsec statistics").splitlines():
        if line.strip().startswith(label + "  "):
            return int(line.split()[-1])
    raise AssertionError(f"no counter {label!r}")


def accounting(lab: Lab, user: str) -> list[dict[str, str]]:
    return [r for r in lab.radius.detail_records() if r.get("User-Name") == user]


def vpnc(lab: Lab, netns: tb.Netns, user: str, password: str, name: str) -> tr.Vpnc:
    return tr.Vpnc(netns, gateway=tb.SITE_A_OUTER, group=GROUP, group_key=GROUP_KEY,
                   username=user, password=password, workdir=lab.workdir / name)


def test_vpnc_logs_in_gets_its_address_and_dns_pings_and_is_accounted(lab: Lab) -> None:
    with vpnc(lab, lab.sites.b, "alice", "wonderland", "alice") as client:
        client.start()
        given = client.wait_connected()
        # RADIUS's Framed-IP-Address, not the pool's.
        assert given["INTERNAL_IP4_ADDRESS"] == "10.200.0.77"
        assert DNS in given["INTERNAL_IP4_DNS"].split()
        assert given.get("CISCO_DEF_DOMAIN") == "example.net"
        assert given.get("CISCO_SPLIT_INC_0_ADDR") == "10.98.1.0"
        assert ping_ok(lab.sites.b, "10.200.0.77", tb.SITE_A_INNER), client.log()
        row = subscribers(lab.gateway)["alice"]
        assert row[1:4] == ["remote", row[2], "10.200.0.77"] and row[2].startswith(
            tb.SITE_B_OUTER + ":")
        assert row[4].startswith("ipsec:remote:")
        assert "Subscribers: 1" in lab.gateway.cli("show ipsec tunnel-profile remote")
        # A wrong password: refused, and the first subscriber is undisturbed.
        with vpnc(lab, lab.sites.b, "bob", "not-the-builder", "bob") as wrong:
            wrong.start()
            assert wrong.wait_exit(40) != 0
            assert "bob" not in subscribers(lab.gateway)
        assert ping_ok(lab.sites.b, "10.200.0.77", tb.SITE_A_INNER)
        assert counter(lab.gateway, "AAA logins refused") == 1
        assert counter(lab.gateway, "AAA logins accepted") == 1
    # vpnc said goodbye (Delete): the subscriber, its interface and address are gone.
    assert wait_until(lambda: subscribers(lab.gateway) == {}, timeout=20)
    assert wait_until(lambda: [r["Acct-Status-Type"] for r in accounting(lab, "alice")]
                      == ["Start", "Stop"], timeout=20), lab.radius.detail_records()
    records = accounting(lab, "alice")
    start, stop = records[0], records[-1]
    assert start["Acct-Status-Type"] == "Start" and stop["Acct-Status-Type"] == "Stop"
    assert start["Acct-Session-Id"] == stop["Acct-Session-Id"]
    assert stop["Framed-IP-Address"] == "10.200.0.77"
    assert int(stop["Acct-Input-Octets"]) > 0 and int(stop["Acct-Output-Octets"]) > 0
    assert int(stop["Acct-Input-Packets"]) >= 6
    interfaces = lab.sites.a.run("ip", "-o", "link", "show")
    assert "ipss" not in interfaces


def test_a_pool_address_when_radius_gives_none_and_local_fallback_when_radius_is_down(
        lab: Lab) -> None:
    with vpnc(lab, lab.sites.b, "bob", "builder", "bob") as client:
        client.start()
        assert client.wait_connected()["INTERNAL_IP4_ADDRESS"] == "10.200.0.10"
        pool = lab.gateway.cli("show ip local pool").splitlines()[2].split()
        assert pool == ["rapool", "10.200.0.10", "10.200.0.20", "11", "1", "10"]
    assert wait_until(lambda: subscribers(lab.gateway) == {}, timeout=20)
    lab.radius.stop()
    lab.gateway.cli("configure terminal", "username dave password d4ve",
                    "aaa authentication xauth radius local")
    with vpnc(lab, lab.sites.b, "dave", "d4ve", "dave") as client:
        client.start()
        assert client.wait_connected(60)["INTERNAL_IP4_ADDRESS"] == "10.200.0.10"
        assert ping_ok(lab.sites.b, "10.200.0.10", tb.SITE_A_INNER)
    lab.gateway.cli("configure terminal", "aaa authentication xauth radius")
    with vpnc(lab, lab.sites.b, "dave", "d4ve", "dave2") as client:
        client.start()
        assert client.wait_exit(60) != 0  # RADIUS silent and no fallback: refused
    assert counter(lab.gateway, "RADIUS timeouts") >= 2


def test_vpnc_through_a_masquerading_nat(lab: Lab) -> None:
    """Client 10.97.0.2 behind site B, which masquerades it as 10.99.0.2 (NAT-T)."""
    with behind_nat(lab.sites.b, "igwrc") as home:
        with vpnc(lab, home, "alice", "wonderland", "natted") as client:
            client.start()
            assert client.wait_connected()["INTERNAL_IP4_ADDRESS"] == "10.200.0.77"
            assert ping_ok(home, "10.200.0.77", tb.SITE_A_INNER), client.log()
            row = subscribers(lab.gateway)["alice"]
            # Seen from the gateway: the NAT's address, on the NAT-T port it mapped.
            assert row[2].startswith(tb.SITE_B_OUTER + ":")


def test_a_dead_vpnc_behind_a_nat_goes_alone(lab: Lab) -> None:
    """Two vpnc behind one NAT address; the second is killed (no Delete).
    DPD (short timers) declares that subscriber alone dead: it is logged out
    with its pool address back and a Lost-Carrier Stop, the first one stays
    up and keeps passing traffic."""
    lab.gateway.cli("configure terminal", "ipsec option dpd idle 3 silence 3 retry 1 retries 2")
    with behind_nat(lab.sites.b, "igwrd") as home, \
            vpnc(lab, home, "alice", "wonderland", "dpd-a") as alice, \
            vpnc(lab, home, "bob", "builder", "dpd-b") as bob:
        alice.start()
        assert alice.wait_connected()["INTERNAL_IP4_ADDRESS"] == "10.200.0.77"
        bob.start()
        assert bob.wait_connected()["INTERNAL_IP4_ADDRESS"] == "10.200.0.10"
        rows = subscribers(lab.gateway)
        assert rows["alice"][2].split(":")[0] == rows["bob"][2].split(":")[0] == tb.SITE_B_OUTER
        assert ping_ok(home, bob.tundev, tb.SITE_A_INNER), bob.log()
        bob.kill()
        assert wait_until(lambda: "bob" not in subscribers(lab.gateway), timeout=20)
        assert list(subscribers(lab.gateway)) == ["alice"]
        assert lab.gateway.cli("show ip local pool").splitlines()[2].split()[4] == "0"
        assert wait_until(lambda: [r.get("Acct-Terminate-Cause") for r in accounting(
            lab, "bob")] == [None, "Lost-Carrier"], timeout=10), lab.radius.detail_records()
        # Alice, probed as often, answers (vpnc does DPD) and keeps her tunnel.
        acks = counter(lab.gateway, "DPD R-U-THERE-ACK received")
        assert wait_until(lambda: counter(lab.gateway, "DPD R-U-THERE-ACK received") >= acks + 2,
                          timeout=20)
        assert list(subscribers(lab.gateway)) == ["alice"]
        assert ping_ok(home, alice.tundev, tb.SITE_A_INNER), alice.log()
        assert counter(lab.gateway, "DPD peers dead") == 1


SWAN_PLUGINS = f"load = {tb.CHARON_PLUGINS} xauth-generic unity attr"


def test_strongswan_road_warrior_gets_a_virtual_ip_and_pings(lab: Lab) -> None:
    with tb.StrongSwan(lab.sites.b, lab_remote.strongswan_road_warrior(), charon_extra=SWAN_PLUGINS,
                       workdir=lab.workdir / "swan") as swan:
        swan.start()
        out = swan.initiate("rw", "rw", timeout=30)
        assert "completed successfully" in out, swan.log()[-4000:]
        sas = swan.list_sas()
        assert "10.200.0.10" in sas, sas  # the virtual IP from the pool (RADIUS gave none)
        time.sleep(0.5)
        assert ping_ok(lab.sites.b, "10.200.0.10", tb.SITE_A_INNER), swan.log()[-4000:]
        assert subscribers(lab.gateway)["carol"][3] == "10.200.0.10"
        swan.terminate("rw")
    assert wait_until(lambda: subscribers(lab.gateway) == {}, timeout=20)


def test_strongswan_in_push_mode_gets_its_virtual_ip_from_a_mode_config_set(lab: Lab) -> None:
    """strongSwan with `pull = no` sends no Mode Config REQUEST: it waits for
    the gateway's SET after XAUTH (profile `mode-config push`), ACKs it and
    only then negotiates its CHILD_SA for the address it was given."""
    lab.gateway.cli("configure terminal", "ipsec tunnel-profile remote", "mode-config push")
    assert "Mode Config: push" in lab.gateway.cli("show ipsec tunnel-profile remote")
    with tb.StrongSwan(lab.sites.b, lab_remote.strongswan_road_warrior("\n    pull = no"), charon_extra=SWAN_PLUGINS,
                       workdir=lab.workdir / "swan") as swan:
        swan.start()
        out = swan.initiate("rw", "rw", timeout=30)
        assert "completed successfully" in out, swan.log()[-4000:]
        assert "10.200.0.10" in swan.list_sas(), swan.list_sas()
        assert wait_until(lambda: ping_ok(lab.sites.b, "10.200.0.10", tb.SITE_A_INNER),
                          timeout=10), swan.log()[-4000:]
        assert subscribers(lab.gateway)["carol"][3] == "10.200.0.10"
        assert counter(lab.gateway, "Mode Config pushes unanswered") == 0
        swan.terminate("rw")
    assert wait_until(lambda: subscribers(lab.gateway) == {}, timeout=20)


def test_radius_server_reached_from_the_vr_it_is_configured_in(lab: Lab) -> None:
    """A RADIUS server configured in another VR (site B's namespace, where a
    second FreeRADIUS listens on 127.0.0.1) is asked from there: dora, whom
    only that server knows, logs in with its Framed-IP-Address."""
    other = lab.sites.b.name
    with tr.FreeRadius(lab.sites.b, clients={"127.0.0.1": RADIUS_SECRET},
                       users=[tr.RadiusUser("dora", "expl0rer", "10.200.0.88")],
                       workdir=lab.workdir / "radius-b") as radius_b:
        radius_b.start()
        lab.gateway.cli("configure terminal", "no radius authentication server 127.0.0.1",
                        f"virtual-router {other}", "radius authentication server 127.0.0.1",
                        f"key {RADIUS_SECRET}", "timeout 1", "exit", "virtual-router default")
        shown = lab.gateway.cli("show configuration")
        assert f"virtual-router {other}\nradius authentication server 127.0.0.1" in shown
        with vpnc(lab, lab.sites.b, "dora", "expl0rer", "dora") as client:
            client.start()
            assert client.wait_connected()["INTERNAL_IP4_ADDRESS"] == "10.200.0.88"
    assert counter(lab.gateway, "RADIUS timeouts") == 0


def test_clear_and_daemon_stop_log_subscribers_out_with_accounting(lab: Lab) -> None:
    with vpnc(lab, lab.sites.b, "alice", "wonderland", "alice") as client:
        client.start()
        client.wait_connected()
        assert ping_ok(lab.sites.b, "10.200.0.77", tb.SITE_A_INNER)
        lab.gateway.cli("ipsec clear sa all")
        assert wait_until(lambda: [r.get("Acct-Terminate-Cause") for r in accounting(
            lab, "alice")] == [None, "Admin-Reset"], timeout=20), lab.radius.detail_records()
    with vpnc(lab, lab.sites.b, "bob", "builder", "bob") as client:
        client.start()
        client.wait_connected()
        lab.gateway.stop()
        assert wait_until(lambda: [r.get("Acct-Terminate-Cause") for r in accounting(
            lab, "bob")] == [None, "NAS-Reboot"], timeout=20), lab.radius.detail_records()
