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

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from gwlab import (
    PSK,
    IpsecgwProcess,
    linked_namespace,
    ping_ok,
    probe,
    site_config,
    wait_until,
)

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


def test_tx_invalid_cookie_per_vr(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    # A second transport VR: namespace v2, linked to site B on 10.97.0.0/24.
    with linked_namespace(two_sites.b, "igwv", "10.97.0.1", "10.97.0.2") as v2:
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
