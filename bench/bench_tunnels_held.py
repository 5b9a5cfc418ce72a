"""tunnels-held: resident memory per held tunnel and idle CPU, ipsecgw vs charon.

The gateway under test in site A initiates N tunnels, one per address of a
strongSwan load responder in site B (bench_common: distinct peers, so that
each tunnel owns its ISAKMP SA and its IPsec SA pair on either gateway),
with DPD on (probe after 30 s idle). Once all are up it holds them through
an idle window. Memory per tunnel = (RSS with N up - RSS of a fresh process
with no tunnel configured) / N, so a tunnel's configuration counts too.
Idle CPU = the gateway's CPU time over the window / the window.

ipsecgw runs with `--dataplane memory` (no TUN devices, SAs recorded only);
charon runs kernel-libipsec without routes. The responder's own memory per
tunnel and idle CPU (charon answering N) are in the details.

charon cannot be the initiator of 10,000 connections here: `swanctl
--load-all` initiates each connection as it loads it, in time that grows with
what it already holds (1,000 in 13 s, 3,000 in 81 s, ~8,800 after 23 min).
Above INITIATOR_LIMIT the strongSwan column is therefore charon as the
responder holding the same N tunnels in ipsecgw's run (the row says so in
`strongswan_role`): the same IKE and CHILD SAs, DPD and all, held by the
other end of the same tunnels.
"""

from __future__ import annotations

import time
from typing import Any

import bench_common as bc
from bench_common import Context, Row

from ipsecgw.tools import testbed as tb

NAME = "tunnels-held"
SUITE = "aes128-sha1-modp2048"
DPD_SECONDS = 30
INITIATOR_LIMIT = 3000  # larger N: charon measured as the responder (see above)


def _responder(ctx: Context, sites: tb.TwoSites, count: int) -> tuple[tb.StrongSwan, int]:
    """The strongSwan responder in B and its RSS before any tunnel."""
    bc.add_peer_addresses(sites, count)
    swan = tb.StrongSwan(sites.b, bc.many_peers_responder_conf(SUITE),
                         charon_extra=bc.LOAD_CHARON_EXTRA, workdir=ctx.subdir("responder"))
    bc.quiet_strongswan(swan)
    swan.start()
    time.sleep(0.5)
    return swan, bc.rss_kib(bc.charon_pid(swan))


def _responder_growth(responder: tb.StrongSwan, baseline: int, count: int) -> float:
    return round((bc.rss_kib(bc.charon_pid(responder)) - baseline) / count, 2)


def _bring_up_timeout(count: int) -> float:
    return 120 + count * count / 40_000


def _hold(ctx: Context, pid: int, count: int, up: Any, window: float,
          started: float, responder: tb.StrongSwan) -> dict[str, Any]:
    """Wait for `count` tunnels up, then measure RSS and CPU over an idle window.

    `started`: when the gateway was given its tunnels (monotonic clock).
    """
    timeout = _bring_up_timeout(count)
    if not bc.wait_until(lambda: (up() or 0) >= count, timeout, interval=1.0):
        total, half_open = bc.swan_stats(responder)
        raise RuntimeError(
            f"not all {count} tunnels up after {timeout:.0f} s: the gateway says {up()} "
            f"(None: it did not answer), the responder has {total - half_open} ISAKMP SAs "
            f"established and {half_open} half-open; gateway CPU {bc.cpu_seconds(pid):.0f} s")
    bring_up = time.monotonic() - started
    rss_up = bc.rss_kib(pid)
    responder_pid = bc.charon_pid(responder)
    meter = bc.CpuMeter(pid, responder_pid).start()
    time.sleep(window)
    meter.stop()
    still_up = up()
    return {
        "responder_idle_cpu_percent": round(100 * meter.cpu[responder_pid] / meter.wall, 2),
        "bring_up_s": round(bring_up, 1),
        "rss_kib": bc.rss_kib(pid),
        "rss_kib_when_up": rss_up,
        "idle_cpu_percent": round(100 * meter.cpu[pid] / meter.wall, 2),
        "idle_window_s": window,
        "up_after_window": still_up,
    }


def strongswan_side(ctx: Context, count: int, window: float) -> dict[str, Any]:
    with bc.two_sites() as sites:
        responder, responder_baseline = _responder(ctx, sites, count)
        try:
            # Baseline: charon with no connection loaded.
            gateway = tb.StrongSwan(sites.a, "connections {}\n",
                                    charon_extra=bc.INITIATOR_CHARON_EXTRA,
                                    workdir=ctx.subdir("swan-a"))
            with gateway:
                bc.quiet_strongswan(gateway)
                gateway.start()
                pid = bc.charon_pid(gateway)
                time.sleep(1)
                baseline = bc.rss_kib(pid)
                started = time.monotonic()
                (gateway.dir / "swanctl" / "swanctl.conf").write_text(
                    bc.strongswan_initiator_conf(SUITE, count, dpd_delay=f"{DPD_SECONDS}s"))
                # charon initiates each connection as it loads it, in time that
                # grows with the IKE SAs it already has: 1,000 take ~15 s, 3,000 ~80 s.
                gateway.swanctl("--load-all", "--noprompt", "--file",
                                str(gateway.dir / "swanctl" / "swanctl.conf"),
                                timeout=_bring_up_timeout(count))

                def up() -> int:
                    total, half_open = bc.swan_stats(gateway)
                    return total - half_open

                result = _hold(ctx, pid, count, up, window, started, responder)
                result["child_sas"] = bc.swan_child_count(gateway)
                if result["child_sas"] < count:
                    raise RuntimeError(f"only {result['child_sas']} of {count} CHILD_SAs "
                                       "installed (see charon.log with --keep)")
                result["baseline_rss_kib"] = baseline
                result["responder_kib_per_tunnel"] = _responder_growth(
                    responder, responder_baseline, count)
        finally:
            responder.close()
    return result


def ipsecgw_side(ctx: Context, count: int, window: float) -> dict[str, Any]:
    with bc.two_sites() as sites:
        with bc.Ipsecgw(sites.a, ctx.subdir("ipsecgw-empty"),
                        bc.ipsecgw_initiator_config(SUITE, 0, dpd_idle=DPD_SECONDS),
                        dataplane="memory") as empty:
            time.sleep(1)
            baseline = bc.rss_kib(empty.pid)
        responder, responder_baseline = _responder(ctx, sites, count)
        try:
            config = bc.ipsecgw_initiator_config(SUITE, count, dpd_idle=DPD_SECONDS)
            started = time.monotonic()
            # Loading the configuration takes time that grows with the square of
            # the tunnel count (about 30 s for 4,000 tunnels today).
            with bc.Ipsecgw(sites.a, ctx.subdir("ipsecgw"), config, dataplane="memory",
                            start_timeout=30 + count * count / 300_000) as gw:
                result = _hold(ctx, gw.pid, count, gw.count_up, window, started,
                               responder)
                result["baseline_rss_kib"] = baseline
                result["statistics"] = gw.statistics()
            result["responder_kib_per_tunnel"] = _responder_growth(
                responder, responder_baseline, count)
        finally:
            responder.close()
    return result


def run(ctx: Context) -> list[Row]:
    # 100 as well: a size ipsecgw can bring up today (see docs/BENCHMARKS.md).
    counts = (100, 300) if ctx.quick else (100, 1000, 10000)
    window = 5.0 if ctx.quick else 60.0
    rows = []
    failed: dict[str, int] = {}
    for count in counts:
        results: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}
        for side, fn in (("strongswan", strongswan_side), ("ipsecgw", ipsecgw_side)):
            if side == "strongswan" and count > INITIATOR_LIMIT:
                continue  # taken from the responder in ipsecgw's run, below
            if side in failed:
                errors[side] = f"not run: {failed[side]} tunnels did not come up"
                continue
            ctx.log(f"{count} tunnels held by {side}, idle window {window:.0f} s")
            try:
                r = fn(ctx, count, window)
                r["kib_per_tunnel"] = round((r["rss_kib"] - r["baseline_rss_kib"]) / count, 2)
                results[side] = r
                ctx.log(f"  {r['kib_per_tunnel']} KiB/tunnel (RSS {r['rss_kib']} KiB, "
                        f"baseline {r['baseline_rss_kib']}), idle CPU {r['idle_cpu_percent']}%, "
                        f"up in {r['bring_up_s']} s")
            except Exception as exc:  # one side failing must not hide the other's numbers
                errors[side] = bc.error_text(exc)
                failed[side] = count
                ctx.log(f"  FAILED: {errors[side]}")
        if count > INITIATOR_LIMIT and "ipsecgw" in results:
            held = results["ipsecgw"]
            results["strongswan"] = {
                "kib_per_tunnel": held["responder_kib_per_tunnel"],
                "idle_cpu_percent": held["responder_idle_cpu_percent"],
                "role": "responder to ipsecgw's tunnels (charon cannot initiate this many)",
            }
        elif count > INITIATOR_LIMIT:
            errors["strongswan"] = "charon is measured as ipsecgw's responder, and that run failed"
        details: dict[str, Any] = {
            "tunnels": count, "dpd_idle_s": DPD_SECONDS, "suite": SUITE,
            **{f"{side}_detail": r for side, r in results.items()},
            **{f"{side}_error": e for side, e in errors.items()},
        }
        rows.append(Row(f"{NAME}/{count}/memory", "KiB/tunnel", False,
                        bc.pick(results, "ipsecgw", "kib_per_tunnel"),
                        bc.pick(results, "strongswan", "kib_per_tunnel"), details))
        rows.append(Row(f"{NAME}/{count}/idle-cpu", "% of a core", False,
                        bc.pick(results, "ipsecgw", "idle_cpu_percent"),
                        bc.pick(results, "strongswan", "idle_cpu_percent"),
                        {"tunnels": count, "window_s": window, "dpd_idle_s": DPD_SECONDS}))
    return rows

