"""Tunnel failover against two strongSwan peers (`tunnel destination A backup B`).

Namespace A (ipsecgw, 10.99.0.1 on a bridge) reaches strongSwan B (the
primary, 10.99.0.2) and strongSwan C (the backup, 10.99.0.3); B and C both
carry the remote network 10.98.2.0/24 (10.98.2.1 on their lo).  Killing the
primary's charon makes DPD declare it dead: the tunnel renegotiates with the
backup and the ping needs the tunnel.  With the primary back, killing the
backup brings the tunnel back to the primary.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_interop
from gwlab import PSK, IpsecgwProcess, ping_ok, site_config, wait_until

from ipsecgw.tools import testbed as tb

PRIMARY = tb.SITE_B_OUTER
BACKUP = "10.99.0.3"
#: Dead within about 2 + 2 x 1 s of silence (docs/CLI.md, "Faster dead-peer detection").
DPD_FAST = "ipsec option dpd idle 2 silence 2 retry 1 retries 2"
#: DPD time plus a phase 1 and Quick Mode with a loaded machine's slack.
SWITCH_WITHIN = 25.0


@dataclass
class Sites:
    a: tb.Netns
    b: tb.Netns
    c: tb.Netns


@pytest.fixture
def sites() -> Iterator[Sites]:
    require_interop()
    made: list[tb.Netns] = []
    try:
        for prefix in ("igfa", "igfb", "igfc"):
            made.append(tb.Netns.create(prefix))
        a, b, c = made
        a.ip("link", "add", "br0", "type", "bridge")
        a.ip("addr", "add", f"{tb.SITE_A_OUTER}/24", "dev", "br0")
        a.ip("addr", "add", f"{tb.SITE_A_INNER}/24", "dev", "lo")
        a.ip("link", "set", "br0", "up")
        for peer, dev, address in ((b, "veth-b", PRIMARY), (c, "veth-c", BACKUP)):
            tb.run(["ip", "-n", a.name, "link", "add", dev, "type", "veth",
                    "peer", "name", "veth-x", "netns", peer.name])
            a.ip("link", "set", dev, "master", "br0")
            a.ip("link", "set", dev, "up")
            peer.ip("addr", "add", f"{address}/24", "dev", "veth-x")
            peer.ip("addr", "add", f"{tb.SITE_B_INNER}/24", "dev", "lo")
            peer.ip("link", "set", "veth-x", "up")
        for ns in made:
            ns.flush_xfrm()
        yield Sites(a, b, c)
    finally:
        for ns in made:
            ns.close()


def swan_conf(local: str) -> str:
    return tb.swanctl_conf(local_addr=local, remote_addr=tb.SITE_A_OUTER,
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK)


def gateway_config() -> str:
    return site_config(
        peer=f"{PRIMARY} backup {BACKUP}", psk_peer=PRIMARY,
        extra_global=f"{DPD_FAST}\nipsec key manual pre-share {BACKUP}\n key {PSK}\n exit")


def carried_by(swan: tb.StrongSwan, sites: Sites) -> bool:
    """The ping needs the tunnel, and this peer holds its child SA."""
    return ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER, 2) and \
        "INSTALLED" in swan.list_sas()


def detail(gw: IpsecgwProcess) -> str:
    return gw.cli("show ipsec tunnel ipsec:siteB detail")


def test_failover_to_the_backup_and_back(sites: Sites, tmp_path: Path) -> None:
    primary = tb.StrongSwan(sites.b, swan_conf(PRIMARY), workdir=tmp_path / "swan-b")
    backup = tb.StrongSwan(sites.c, swan_conf(BACKUP), workdir=tmp_path / "swan-c")
    gw: IpsecgwProcess | None = None
    try:
        primary.start()
        backup.start()
        gw = IpsecgwProcess(sites.a, tmp_path / "gw", gateway_config())
        assert gw.wait_tunnel_up("siteB"), gw.log()
        assert wait_until(lambda: carried_by(primary, sites)), gw.log()
        assert "active: primary (10.99.0.2)" in detail(gw)

        primary.kill()
        killed = time.monotonic()
        assert wait_until(lambda: carried_by(backup, sites), timeout=SWITCH_WITHIN), \
            gw.log()[-4000:] + detail(gw)
        took = time.monotonic() - killed
        text = detail(gw)
        assert "active: backup (10.99.0.3)" in text, text
        assert re.search(r"Switchovers: 1, last .* dead peer", text), text
        print(f"primary killed -> traffic through the backup in {took:.1f} s")

        primary = tb.StrongSwan(sites.b, swan_conf(PRIMARY), workdir=tmp_path / "swan-b2")
        primary.start()
        backup.kill()
        assert wait_until(lambda: carried_by(primary, sites), timeout=SWITCH_WITHIN), \
            gw.log()[-4000:] + detail(gw)
        text = detail(gw)
        assert "active: primary (10.99.0.2)" in text and "Switchovers: 2" in text, text
    finally:
        if gw is not None:
            gw.stop()
        primary.close()
        backup.close()
