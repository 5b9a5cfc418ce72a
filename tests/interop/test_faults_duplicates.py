"""Duplicated and replayed IKE and ESP change nothing (issue 13's fault suite).

Every IKE message and ESP packet delivered twice (nftables `dup to`), and a
whole captured exchange sent again later: the SAs on both ends stay what
they were, each extra copy is answered at most from the reply cache (RFC
2408 5: a retransmitted request gets the same answer) or dropped and
counted, and anti-replay (RFC 4303 3.4.3) drops every repeated ESP packet.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from faultlab import (
    both_ends,
    gw_and_swan,
    gw_ike_sas,
    gw_ipsec_sas,
    is_ike,
    pcap_ip_packets,
    replay,
    settled,
    source_of,
    statistic,
    swan_child_sas,
    swan_ike_sas,
)
from gwlab import IpsecgwProcess, ping, site_config, wait_until

from ipsecgw.tools import testbed as tb

# Without faults the tunnel is up in well under a second; duplicates must
# not slow it down.
BRING_UP_BOUND = 10.0


def ike_counters(gw: IpsecgwProcess) -> dict[str, int]:
    return {label: statistic(gw, label) for label in (
        "Retransmissions", "Dropped, duplicate", "Dropped, unexpected", "Unknown cookie pairs",
        "Phase 1 SAs established", "Phase 2 SAs established")}


def test_duplicated_delivery_changes_nothing(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    with tb.Faults(two_sites.a) as dup_a, tb.Faults(two_sites.b) as dup_b:
        dup_a.duplicate(tb.SITE_B_OUTER, "veth-a")
        dup_b.duplicate(tb.SITE_A_OUTER, "veth-b")
        with gw_and_swan(two_sites, tmp_path) as (gw, swan):
            assert gw.wait_tunnel_up("siteB", timeout=BRING_UP_BOUND)
            assert wait_until(lambda: settled(gw, swan), timeout=10), both_ends(gw, swan)
            out = ping(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER, count=10)
            assert "10 received" in out and "duplicates" not in out, out
            counters = ike_counters(gw)
            assert settled(gw, swan), both_ends(gw, swan)
            # One of each, although every message arrived twice.
            assert counters["Phase 1 SAs established"] == 1, counters
            assert counters["Phase 2 SAs established"] == 1, counters
            # The copies were seen and answered from the cache or dropped.
            assert counters["Retransmissions"] + counters["Dropped, duplicate"] > 0, counters
            # Every echo reply arrived twice; the copy failed anti-replay.
            assert statistic(gw, "ESP dropped, replayed") >= 10


def sa_tables(gw: IpsecgwProcess, swan: tb.StrongSwan) -> tuple[object, ...]:
    """What must not change: cookies and SPIs of both ends."""
    cookies = re.findall(r"\b([0-9a-f]{16}:[0-9a-f]{16})\b", gw.cli("show ipsec ike-sa"))
    return (cookies, gw_ike_sas(gw), gw_ipsec_sas(gw), swan_ike_sas(swan), swan_child_sas(swan),
            re.findall(r"IKEv1, ([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r", swan.list_sas()))


def test_replayed_exchange_changes_nothing(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    pcap = tmp_path / "bring-up.pcap"
    capture = tb.Capture(two_sites.a, "veth-a", pcap, "udp port 500 or udp port 4500")
    with gw_and_swan(two_sites, tmp_path, gw_config=site_config()) as (gw, swan):
        try:
            assert gw.wait_tunnel_up("siteB", timeout=BRING_UP_BOUND)
            assert wait_until(lambda: settled(gw, swan), timeout=10), both_ends(gw, swan)
            assert "3 received" in ping(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
        finally:
            capture.stop()
        packets = pcap_ip_packets(pcap)
        from_swan = [p for p in packets if source_of(p) == tb.SITE_B_OUTER]
        from_gw = [p for p in packets if source_of(p) == tb.SITE_A_OUTER]
        assert sum(map(is_ike, from_swan)) >= 4, "Main Mode and Quick Mode answers captured"
        esp_from_swan = [p for p in from_swan if not is_ike(p)]
        assert len(esp_from_swan) >= 3, "the echo replies captured"

        def replay_everything(to_swan: bool = True) -> None:
            """strongSwan's messages and ESP to ipsecgw, ipsecgw's to strongSwan."""
            replay(two_sites.b, from_swan)
            if to_swan:
                replay(two_sites.a, from_gw)
            time.sleep(1)  # let both ends act on them

        # +2 s: within the reply cache (RFC 2408 5: answered again, nothing new).
        before, counters = sa_tables(gw, swan), ike_counters(gw)
        replayed_esp = statistic(gw, "ESP dropped, replayed")
        replay_everything()
        assert sa_tables(gw, swan) == before, both_ends(gw, swan)
        after = ike_counters(gw)
        assert after["Phase 1 SAs established"] == counters["Phase 1 SAs established"]
        assert after["Phase 2 SAs established"] == counters["Phase 2 SAs established"]
        seen = sum(after[k] - counters[k] for k in (
            "Retransmissions", "Dropped, duplicate", "Dropped, unexpected"))
        assert seen >= sum(map(is_ike, from_swan)), (counters, after)
        assert statistic(gw, "ESP dropped, replayed") - replayed_esp >= len(esp_from_swan)
        assert "3 received" in ping(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)

        # Past the reply cache: a restarted ipsecgw remembers nothing of the
        # exchange (its cookies, its replies); the replay must not start or
        # change anything there either. (Not to strongSwan: a replayed Main
        # Mode first message is a new contact for any responder, which keeps
        # a half-open SA for it, RFC 2408 2.5.3.)
        gw.proc.kill()
        gw.proc.wait()
        gw.stop()
        with IpsecgwProcess(two_sites.a, tmp_path / "gw", site_config()) as gw2:
            assert gw2.wait_tunnel_up("siteB", timeout=BRING_UP_BOUND)
            assert wait_until(lambda: settled(gw2, swan), timeout=10), both_ends(gw2, swan)
            before, counters = sa_tables(gw2, swan), ike_counters(gw2)
            unknown_spi = statistic(gw2, "ESP dropped, unknown SPI")
            replay_everything(to_swan=False)
            assert sa_tables(gw2, swan) == before, both_ends(gw2, swan)
            after = ike_counters(gw2)
            assert after["Unknown cookie pairs"] - counters["Unknown cookie pairs"] >= 1, after
            assert after["Phase 1 SAs established"] == counters["Phase 1 SAs established"]
            assert statistic(gw2, "ESP dropped, unknown SPI") - unknown_spi >= len(esp_from_swan)
            assert "3 received" in ping(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
