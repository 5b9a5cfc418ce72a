"""Random loss of IKE and ESP during bring-up and rekeys (issue 13's fault suite).

nftables drops a share of the arriving UDP 500/4500 and ESP packets at
random in both sites (`numgen random mod 100 < P drop`), from before the
daemons start, while ipsecgw renews phase 2 every ~9 s and phase 1 every
~13 s. The tunnel must come up within a bound and keep renewing; once the
loss stops, each end must hold exactly one ISAKMP/IKE SA and one IPsec SA
pair, the same pair, with nothing half-open or left over from a lost
Delete.

The bounds come from strongSwan against strongSwan under the same loss on
this test bed (10 %: up in 0.1-8.1 s over 5 trials; 30 %: 12.1 s in each
of its trials, issue 13: 0.4-19.5 s) and from the issue's wants.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from faultlab import Pinger, both_ends, gw_and_swan, settled, swan_conf_b
from gwlab import ping_ok, site_config, wait_until

from ipsecgw.tools import testbed as tb

# Short lifetimes: several renewals within the loss period.
PHASE1_SECONDS = 15
PHASE2_SECONDS = 10
LOSS_PERIOD = 20.0  # seconds of loss after the tunnel is up: two phase 2 rekeys, one phase 1
# Once the loss stops: stale SAs left by lost Deletes go at their (short)
# hard lifetimes, and half-open ones at strongSwan's 30 s half-open timeout.
SETTLE_BOUND = 40.0


def swan_short_lifetimes() -> str:
    """strongSwan set up as an operator would for these lifetimes. An IKEv1
    Delete is one-way and unacknowledged (RFC 2408 4.8): when loss eats the
    Delete of a renewed SA, the peer keeps the old one until its own
    lifetime ends (strongSwan does not take a shorter one from the
    proposal: it kept such leftovers for its default 3,960 s), or, for a
    phase 1, until DPD finds nobody answering on it."""
    return swan_conf_b(extra_conn="dpd_delay = 5s\n    dpd_timeout = 15s",
                       extra_child="rekey_time = 0s\n           life_time = 20s")


def short_lifetimes() -> str:
    config = site_config(
        extra_tunnel=f"tunnel lifetime seconds {PHASE2_SECONDS} kilobytes 1000000")
    return config.replace(" group 14\n", f" group 14\n lifetime seconds {PHASE1_SECONDS}\n", 1)


def loss_bring_up_and_rekeys(sites: tb.TwoSites, workdir: Path, percent: int,
                             bring_up_bound: float) -> None:
    with tb.Faults(sites.a) as loss_a, tb.Faults(sites.b) as loss_b:
        loss_a.loss(percent)
        loss_b.loss(percent)
        with gw_and_swan(sites, workdir, gw_config=short_lifetimes(),
                         swan_conf=swan_short_lifetimes()) as (gw, swan):
            started = time.monotonic()
            assert gw.wait_tunnel_up("siteB", timeout=bring_up_bound), (
                f"not up within {bring_up_bound} s under {percent} % loss:\n"
                + gw.log()[-3000:])
            up_after = time.monotonic() - started
            pinger = Pinger(sites, workdir / "ping.txt")
            try:
                time.sleep(LOSS_PERIOD)
            finally:
                pinger.stop()
            loss_a.clear()
            loss_b.clear()
            assert wait_until(lambda: settled(gw, swan), timeout=SETTLE_BOUND, interval=0.5), (
                f"not one SA pair per end {SETTLE_BOUND} s after the loss stopped "
                f"(up after {up_after:.1f} s):\n" + both_ends(gw, swan))
            assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
            stats = gw.cli("show ipsec statistics")
    # The phase 2 lifetime is half the loss period, so renewals ran under
    # loss; whether one of them got through the loss is chance (at 30 % a
    # Quick Mode can lose every try), so what is required is that renewal
    # went on and, with the loss gone, converged: more than one phase 2.
    phase2 = re.search(r"Phase 2 SAs established\s+(\d+)", stats)
    assert phase2 and int(phase2.group(1)) >= 2, stats
    assert pinger.reply_times(), "no echo came back during the loss period"


def test_10_percent_loss_bring_up_and_rekeys(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    loss_bring_up_and_rekeys(two_sites, tmp_path, 10, bring_up_bound=20)


def test_30_percent_loss_bring_up_and_rekeys(two_sites: tb.TwoSites, tmp_path: Path) -> None:
    """Bound: an attempt that gets no answer is abandoned after ~30 s and
    restarted with fresh cookies (issue 13 item 9). At 30 % an attempt (five
    request/answer steps, four tries each within its 30 s) fails about one
    time in three, so 150 s (four to five attempts with back-off) keeps a
    false failure near 1 in 200; strongSwan pairs came up in 12-28 s in 4
    of 5 trials here (one not in 150 s)."""
    loss_bring_up_and_rekeys(two_sites, tmp_path, 30, bring_up_bound=150)


def test_unanswered_main_mode_restarts_within_the_peers_window(
        two_sites: tb.TwoSites, tmp_path: Path) -> None:
    """Issue 13 item 9, without chance: every answer from strongSwan is lost
    for the first 35 s. Want: an exchange without answer for the
    peer-compatible ~30 s (strongSwan drops its half-open SA then) is
    abandoned and started again with fresh cookies, so the tunnel is up a
    few seconds after the answers come through again. Bound: 15 s after;
    strongSwan initiating to strongSwan under the same fault was up 12.7 s
    after (its fourth retransmission, at 47.5 s). An initiator repeating
    the same first message on a 2, 4, 8, 16, 30 s schedule sends its next
    copy only at 60 s, and issue 13 saw such copies ignored until ~98 s."""
    blackout = 35.0
    with tb.Faults(two_sites.a) as faults:
        faults.drop(tb.IKE_ONLY)
        with gw_and_swan(two_sites, tmp_path) as (gw, swan):
            started = time.monotonic()
            time.sleep(blackout)
            faults.clear()
            assert gw.wait_tunnel_up("siteB", timeout=15), (
                f"not up {time.monotonic() - started:.0f} s after start, "
                f"{time.monotonic() - started - blackout:.0f} s after the answers came back:\n"
                + both_ends(gw, swan) + gw.log()[-2000:])
            assert wait_until(lambda: settled(gw, swan), timeout=SETTLE_BOUND), \
                both_ends(gw, swan)
