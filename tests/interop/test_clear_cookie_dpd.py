"""The guide's two features and stale-state detection, against strongSwan.

- ``ipsec clear sa``: SPIs and cookies compared before and after, strongSwan's
  log showing the Delete it received, traffic passing afterwards.
- ``ipsec option tx-invalid-cookie``: only the VR with the option answers
  crafted unknown-cookie datagrams, the ``no`` form silences it, the rate
  limit holds under a flood, and a spoofed INVALID-COOKIE changes nothing.
- DPD: a killed strongSwan is declared dead; a restarted one gets its tunnel
  back without anyone touching ipsecgw.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gwlab import PSK, IpsecgwProcess, ping_ok, site_config, wait_until

from ipsecgw.tools import testbed as tb

DPD_FAST = "ipsec option dpd idle 2 silence 2 retry 1 retries 2"


def strongswan_b(extra_conn: str = "") -> str:
    return tb.swanctl_conf(
        local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
        local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK,
        extra_conn=extra_conn,
    )


def swan_state(list_sas: str) -> tuple[str, list[str]]:
    """(IKE SA cookie pair, child SPIs) from swanctl --list-sas."""
    cookies = re.search(r"IKEv1, ([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r", list_sas)
    spis = re.findall(r"(?:in|out)\s+([0-9a-f]{8})", list_sas)
    return (cookies.group(0) if cookies else "", sorted(spis))


@pytest.fixture
def tunnel(two_sites: tb.TwoSites, tmp_path: Path) -> Iterator[
        tuple[tb.TwoSites, tb.StrongSwan, IpsecgwProcess]]:
    swan = tb.StrongSwan(two_sites.b, strongswan_b(), workdir=tmp_path / "swan")
    swan.start()
    gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config())
    try:
        assert gw.wait_tunnel_up("siteB"), gw.log()
        assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
        yield two_sites, swan, gw
    finally:
        gw.stop()
        swan.close()


def _settled(swan: tb.StrongSwan, gw: IpsecgwProcess, sites: tb.TwoSites) -> bool:
    return "INSTALLED" in swan.list_sas() and ping_ok(sites.a, tb.SITE_A_INNER,
                                                      tb.SITE_B_INNER, 2)


def test_clear_sa_all_phase_2_renews_spis_and_keeps_phase_1(tunnel) -> None:  # type: ignore[no-untyped-def]
    sites, swan, gw = tunnel
    cookies_before, spis_before = swan_state(swan.list_sas())
    out = gw.cli("configure terminal", "ipsec clear sa all phase 2")
    assert re.search(r"\b1\b", out) or "cleared" in out.lower(), out
    assert wait_until(lambda: "received DELETE for ESP CHILD_SA" in swan.log())
    assert wait_until(lambda: _settled(swan, gw, sites))
    cookies_after, spis_after = swan_state(swan.list_sas())
    assert cookies_after == cookies_before, "phase 2 clear keeps the ISAKMP SA"
    assert not set(spis_after) & set(spis_before), (spis_before, spis_after)


def test_clear_sa_tunnel_both_phases(tunnel) -> None:  # type: ignore[no-untyped-def]
    sites, swan, gw = tunnel
    cookies_before, spis_before = swan_state(swan.list_sas())
    gw.cli("ipsec clear sa tunnel ipsec:siteB")  # privileged exec works too
    assert wait_until(lambda: "received DELETE for IKE_SA" in swan.log()
                      or "deleting IKE_SA" in swan.log())
    assert wait_until(lambda: _settled(swan, gw, sites), timeout=30)
    cookies_after, spis_after = swan_state(swan.list_sas())
    assert cookies_after and cookies_after != cookies_before
    assert not set(spis_after) & set(spis_before)


def test_clear_sa_state_and_errors(tunnel) -> None:  # type: ignore[no-untyped-def]
    sites, swan, gw = tunnel
    cookies_before, spis_before = swan_state(swan.list_sas())
    # Errors clear nothing.
    for bad in ("ipsec clear sa tunnel ipsec:nosuch", "ipsec clear sa state bogus",
                "no ipsec clear sa all"):
        proc_out = gw.cli("configure terminal", bad, check=False)
        assert "cleared" not in proc_out.lower()
    assert swan_state(swan.list_sas()) == (cookies_before, spis_before)
    gw.cli("configure terminal", "ipsec clear sa state up phase 1")
    assert wait_until(lambda: "received DELETE for IKE_SA" in swan.log()
                      or "deleting IKE_SA" in swan.log())
    assert wait_until(lambda: _settled(swan, gw, sites), timeout=30)
    assert swan_state(swan.list_sas())[0] != cookies_before


_COOKIE_PROBE = r"""
import json, os, socket, sys, time
from ipsecgw.isakmp import Message, ExchangeType, Notification, NotifyType, decode_payloads
target, count, spoof = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
sent = received = 0
notify = []
for i in range(count):
    if spoof:
        ck = bytes.fromhex(spoof)
        m = Message(ck[:8], ck[8:], ExchangeType.INFORMATIONAL, 0, 0,
                    (Notification(1, 1, NotifyType.INVALID_COOKIE, ck, b""),))
    else:
        # What a peer with a stale phase 1 sends: an encrypted Quick Mode
        # under cookies we never had. (An unknown-cookie Informational is
        # never answered: two gateways could otherwise notify each other forever.)
        m = Message(os.urandom(8), os.urandom(8), ExchangeType.QUICK_MODE, 1,
                    int.from_bytes(os.urandom(4), "big") | 1,
                    encrypted_body=os.urandom(96), first_payload=8)
    data = m.encode()
    s.sendto(data, (target, 500)); sent += len(data)
deadline = time.time() + 1.5
while time.time() < deadline:
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        continue
    received += len(data)
    msg = Message.decode(data)
    notify += [p.notify_type for p in msg.payloads if isinstance(p, Notification)]
print(json.dumps({"sent_bytes": sent, "reply_bytes": received, "notifies": notify}))
"""


def probe(ns: tb.Netns, target: str, count: int = 1, spoof: str = "") -> dict[str, object]:
    out = ns.run(sys.executable, "-c", _COOKIE_PROBE, target, str(count), spoof, timeout=60)
    return json.loads(out)  # type: ignore[no-any-return]


def test_tx_invalid_cookie_per_vr(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    # A second transport VR: namespace v2, linked to site B on 10.97.0.0/24.
    with tb.Netns.create("igwv") as v2:
        tb.run(["ip", "-n", v2.name, "link", "add", "veth-v", "type", "veth",
                "peer", "name", "veth-w", "netns", two_sites.b.name])
        v2.ip("addr", "add", "10.97.0.1/24", "dev", "veth-v")
        two_sites.b.ip("addr", "add", "10.97.0.2/24", "dev", "veth-w")
        v2.ip("link", "set", "veth-v", "up")
        two_sites.b.ip("link", "set", "veth-w", "up")
        config = site_config(shutdown=True) + (
            f"virtual-router {v2.name}\n"
            f"ipsec local-endpoint 10.97.0.1 transport-virtual-router {v2.name}\n"
            "ipsec option tx-invalid-cookie\n"
        )
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", config)
        try:
            assert wait_until(lambda: "10.97.0.1" in gw.cli("show ipsec local-endpoint"))
            quiet = probe(two_sites.b, tb.SITE_A_OUTER)
            assert quiet["notifies"] == [], "VR default has the option off: silent"
            answered = probe(two_sites.b, "10.97.0.1")
            assert answered["notifies"] == [4], answered  # INVALID-COOKIE
            stats = gw.cli("show ipsec statistics")
            assert re.search(r"[Ii]nvalid cookies? sent\s*:?\s*1\b", stats), stats
            # A flood: a bounded number of replies, never more bytes than received.
            flood = probe(two_sites.b, "10.97.0.1", count=2000)
            assert 0 < len(flood["notifies"]) <= 50, len(flood["notifies"])  # type: ignore[arg-type]
            assert flood["reply_bytes"] < flood["sent_bytes"]  # type: ignore[operator]
            assert re.search(r"suppressed\s*:?\s*[1-9]", gw.cli("show ipsec statistics"))
            # The no form silences it.
            gw.cli("configure terminal", f"virtual-router {v2.name}",
                   "no ipsec option tx-invalid-cookie")
            assert probe(two_sites.b, "10.97.0.1")["notifies"] == []
        finally:
            gw.stop()


def test_spoofed_invalid_cookie_changes_nothing(tunnel) -> None:  # type: ignore[no-untyped-def]
    sites, swan, gw = tunnel
    cookies_before, spis_before = swan_state(swan.list_sas())
    m = re.search(r"([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r", cookies_before)
    assert m
    # An unprotected INVALID-COOKIE naming the live ISAKMP SA, from a third party
    # that can reach ipsecgw's port 500 (here: site B's namespace, port 500 busy).
    probe(sites.b, tb.SITE_A_OUTER, count=3, spoof=m.group(1) + m.group(2))
    assert wait_until(lambda: re.search(r"Invalid cookies received\s*:?\s*[1-9]",
                                        gw.cli("show ipsec statistics")) is not None, 5)
    assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
    assert swan_state(swan.list_sas()) == (cookies_before, spis_before)
    assert "up" in gw.cli("show ipsec tunnel ipsec:siteB")


def test_dpd_dead_peer_and_recovery(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    swan = tb.StrongSwan(two_sites.b, strongswan_b(), workdir=tmp_path / "swan")
    swan.start()
    gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config(extra_global=DPD_FAST))
    try:
        assert gw.wait_tunnel_up("siteB"), gw.log()
        swan.kill()  # no Delete, all state lost
        # idle 2 + retries 2 x retry 1: dead within a few seconds.
        assert wait_until(lambda: "up" not in gw.cli("show ipsec tunnel ipsec:siteB").split(),
                          timeout=15), gw.cli("show ipsec tunnel")
        assert re.search(r"[Pp]eers? dead\s*:?\s*[1-9]|DPD.*dead\s*:?\s*[1-9]",
                         gw.cli("show ipsec statistics"))
        swan.start()  # back with no state: the tunnel returns by itself
        assert gw.wait_tunnel_up("siteB", timeout=45), gw.log()
        assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
    finally:
        gw.stop()
        swan.close()
