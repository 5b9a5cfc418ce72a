"""clear-all: with N tunnels up, the time until every one is back after they are all cleared.

Same setup as tunnels-held: the gateway under test in site A initiates N
tunnels (100 and 1,000; 100 with --quick), each to its own address of a strongSwan
load responder in site B. Two ways to clear them:

- ``local``: ``ipsec clear sa all`` on ipsecgw (SPEC 1.1: Delete to the peer,
  remove, renegotiate every tunnel that is administratively up). strongSwan
  has no single command that clears and re-establishes every SA (swanctl
  terminates one connection per call and does not re-initiate), so this row
  has no strongSwan number.
- ``peer``: the responder deletes every SA (``swanctl --terminate --ike load``:
  a Delete for each phase 1 and IPsec SA), and the gateway under test brings
  its tunnels back by itself: ipsecgw because its tunnels are administratively
  up, charon through ``close_action = start``. Same trigger for both.

"Back" means: every tunnel up with an IPsec SA negotiated after the clear
(ipsecgw: the phase-2-established counter grew by N and N tunnels are up;
charon: N IKE SAs, none half-open, N CHILD_SAs installed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import bench_common as bc
from bench_common import Context, Row

from ipsecgw.tools import testbed as tb

NAME = "clear-all"
SUITE = "aes128-sha1-modp2048"
PHASE2_LABEL = "Phase 2 SAs established"


def _responder(ctx: Context, sites: tb.TwoSites, count: int) -> tb.StrongSwan:
    bc.add_peer_addresses(sites, count)
    swan = tb.StrongSwan(sites.b, bc.many_peers_responder_conf(SUITE),
                         charon_extra=bc.LOAD_CHARON_EXTRA, workdir=ctx.subdir("responder"))
    bc.quiet_strongswan(swan)
    swan.start()
    return swan


def _timed(trigger: Callable[[], None], done: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    trigger()
    if not bc.wait_until(done, timeout, interval=0.3):
        raise RuntimeError(f"not all tunnels back after {timeout:.0f} s")
    return time.monotonic() - started


def _peer_clear(responder: tb.StrongSwan, count: int) -> Callable[[], None]:
    def trigger() -> None:
        responder.swanctl("--terminate", "--ike", "load", "--timeout", "-1", check=False,
                          timeout=max(60, count / 10))
    return trigger


def ipsecgw_side(ctx: Context, count: int) -> dict[str, Any]:
    timeout = count / 10 + 120
    with bc.two_sites() as sites:
        responder = _responder(ctx, sites, count)
        try:
            config = bc.ipsecgw_initiator_config(SUITE, count)
            with bc.Ipsecgw(sites.a, ctx.subdir("ipsecgw"), config, dataplane="memory") as gw:
                if not bc.wait_until(lambda: gw.all_up(count), timeout, interval=1.0):
                    raise RuntimeError(f"only {gw.count_up()} of {count} tunnels came up")
                result: dict[str, Any] = {}
                for variant, trigger in (
                        ("local", lambda: gw.cli("ipsec clear sa all", timeout=120) and None),
                        ("peer", _peer_clear(responder, count))):
                    before = gw.statistics().get(PHASE2_LABEL, 0)

                    def back(before: int = before) -> bool:
                        return gw.statistics().get(PHASE2_LABEL, 0) >= before + count and \
                            gw.all_up(count)

                    meter = bc.CpuMeter(gw.pid).start()
                    seconds = _timed(trigger, back, timeout)
                    meter.stop()
                    result[variant] = {"seconds": round(seconds, 2),
                                       "cpu_s": round(meter.cpu[gw.pid], 2)}
                    ctx.log(f"  ipsecgw {variant}: {seconds:.2f} s")
                    time.sleep(2)  # let stragglers (Deletes of the old SAs) settle
        finally:
            responder.close()
    return result


def strongswan_side(ctx: Context, count: int) -> dict[str, Any]:
    timeout = count / 10 + 120
    with bc.two_sites() as sites:
        responder = _responder(ctx, sites, count)
        try:
            gateway = tb.StrongSwan(
                sites.a, bc.strongswan_initiator_conf(SUITE, count, extra_child="close_action = start"),
                charon_extra=bc.INITIATOR_CHARON_EXTRA, workdir=ctx.subdir("swan-a"))
            with gateway:
                bc.quiet_strongswan(gateway)
                gateway.start()

                def all_up() -> bool:
                    total, half_open = bc.swan_stats(gateway)
                    return total >= count and half_open == 0

                if not bc.wait_until(all_up, timeout, interval=1.0):
                    raise RuntimeError(f"only {bc.swan_stats(gateway)} of {count} IKE SAs up")
                pid = bc.charon_pid(gateway)
                mark = max(bc.swan_established(gateway))

                def back() -> bool:
                    fresh = [up for sa, up in bc.swan_established(gateway).items() if sa > mark]
                    return sum(fresh) >= count

                meter = bc.CpuMeter(pid).start()
                seconds = _timed(_peer_clear(responder, count), back, timeout)
                meter.stop()
                ctx.log(f"  strongswan peer: {seconds:.2f} s")
                return {"peer": {"seconds": round(seconds, 2), "cpu_s": round(meter.cpu[pid], 2)}}
        finally:
            responder.close()


def run(ctx: Context) -> list[Row]:
    # 100 as well: a size ipsecgw can bring up today (see docs/BENCHMARKS.md).
    counts = (100,) if ctx.quick else (100, 1000)
    rows = []
    for count in counts:
        results: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}
        for side, fn in (("strongswan", strongswan_side), ("ipsecgw", ipsecgw_side)):
            ctx.log(f"{count} tunnels at {side}, cleared")
            try:
                results[side] = fn(ctx, count)
            except Exception as exc:  # one side failing must not hide the other's numbers
                errors[side] = bc.error_text(exc)
                ctx.log(f"  FAILED: {errors[side]}")
        common: dict[str, Any] = {"tunnels": count, "suite": SUITE,
                                  **{f"{side}_error": e for side, e in errors.items()}}
        for variant, what in (("local", "`ipsec clear sa all` until all tunnels are back"),
                              ("peer", "peer deletes every SA until all tunnels are back")):
            details = {**common, "what": what,
                       **{f"{side}_detail": r[variant] for side, r in results.items()
                          if variant in r}}
            if variant == "local":
                details["strongswan_note"] = "no clear-and-reinitiate-all command in strongSwan"
            rows.append(Row(f"{NAME}/{count}/{variant}", "s", False,
                            _seconds(results, "ipsecgw", variant),
                            _seconds(results, "strongswan", variant), details))
    return rows


def _seconds(results: dict[str, dict[str, Any]], side: str, variant: str) -> float | None:
    value = results.get(side, {}).get(variant, {}).get("seconds")
    return None if value is None else float(value)
