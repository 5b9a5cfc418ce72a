"""cookie-flood: unknown-cookie datagrams at a gateway holding tunnels.

The gateway under test in site A holds 100 tunnels (one per address of a
strongSwan responder in site B, as in tunnels-held), with DPD probing after
4 s of silence and IPsec SA lifetimes of 12 s, so that DPD exchanges and
rekeys fall inside the flood. Then 16 source addresses in B send
20,000 ISAKMP datagrams per second for 10 s to A's port 500 (quick: 5 s),
each with fresh random cookies (an encrypted Main Mode message for an ISAKMP
SA that does not exist). Measured: the gateway's CPU over the flood, its RSS
before and after, the lowest number of tunnels up during and after it, the
replies the flooders received (ipsecgw has `ipsec option tx-invalid-cookie`
on: its INVALID-COOKIE replies must stay within its rate limits), and, for
ipsecgw, DPD and rekey counters over the window.

Run as a script (`python3 bench_cookie_flood.py flood ...`) this module is
the flooder itself.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

NAME = "cookie-flood"
SUITE = "aes128-sha1-modp2048"
TUNNELS = 100
RATE = 20_000
SOURCES = [f"10.99.0.{200 + i}" for i in range(16)]
DPD_IDLE = 4
LIFETIME = 12

# RFC 2408 3.1 header: CKY-I, CKY-R, next payload, version, exchange, flags,
# message id, length. Exchange 2 (Identity Protection) with the E flag: an
# encrypted Main Mode message, which only an existing ISAKMP SA could open.
_HEADER = struct.Struct("!16sBBBBII")
_BODY = bytes(48)


def flood_datagrams(count: int) -> list[bytes]:
    cookies = os.urandom(16 * count)
    length = _HEADER.size + len(_BODY)
    return [_HEADER.pack(cookies[16 * i:16 * i + 16], 5, 0x10, 2, 1, 0, length) + _BODY
            for i in range(count)]


def flood(target: str, port: int, rate: int, seconds: float, sources: list[str],
          report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Send `rate` datagrams/s for `seconds` from `sources`, then listen until the
    replies stop (3 s of silence, at most 60 s: a gateway may still be working
    through its receive queue); count what comes back."""
    socks = []
    for source in sources:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((source, 0))
        sock.setblocking(False)
        socks.append(sock)
    counts = {"replies": 0, "reply_bytes": 0, "last_reply": 0.0}

    def drain() -> None:
        for sock in socks:
            while True:
                try:
                    data = sock.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                counts["replies"] += 1
                counts["reply_bytes"] += len(data)
                counts["last_reply"] = time.monotonic()

    tick = 0.005
    per_tick = max(1, round(rate * tick))
    sent = errors = 0
    started = time.monotonic()
    next_at = started
    while time.monotonic() - started < seconds:
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += tick
        for i, datagram in enumerate(flood_datagrams(per_tick)):
            try:
                socks[i % len(socks)].sendto(datagram, (target, port))
                sent += 1
            except OSError:
                errors += 1
        drain()
    elapsed = time.monotonic() - started
    replies_during = counts["replies"]
    report({"phase": "sent", "sent": sent, "elapsed_s": round(elapsed, 3)})
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 3 and time.monotonic() - started < seconds + 60:
        time.sleep(0.05)
        before = counts["replies"]
        drain()
        if counts["replies"] != before:
            quiet_since = time.monotonic()
    for sock in socks:
        sock.close()
    return {"sent": sent, "send_errors": errors, "elapsed_s": round(elapsed, 3),
            "rate": round(sent / elapsed), "replies": counts["replies"],
            "replies_during_flood": replies_during, "reply_bytes": counts["reply_bytes"],
            "last_reply_after_s": round(counts["last_reply"] - started, 2)
            if counts["replies"] else None}


def flood_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_cookie_flood.py flood")
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, default=500)
    parser.add_argument("--rate", type=int, default=RATE)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--sources", default=",".join(SOURCES))
    args = parser.parse_args(argv)
    result = flood(args.target, args.port, args.rate, args.seconds, args.sources.split(","),
                   lambda line: print(json.dumps(line), flush=True))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["flood"]:
    sys.exit(flood_main(sys.argv[2:]))

# --- the benchmark (imported by bench/run) -----------------------------------------

import bench_common as bc  # noqa: E402
from bench_common import Context, Row  # noqa: E402

from ipsecgw.isakmp.policy import EnginePolicy  # noqa: E402
from ipsecgw.tools import testbed as tb  # noqa: E402


def _sites_with_flooders(sites: tb.TwoSites) -> None:
    bc.add_peer_addresses(sites, TUNNELS)
    for source in SOURCES:
        sites.b.ip("addr", "add", f"{source}/24", "dev", "veth-b")


def _responder(ctx: Context, sites: tb.TwoSites) -> tb.StrongSwan:
    swan = tb.StrongSwan(sites.b, bc.many_peers_responder_conf(SUITE),
                         charon_extra=bc.LOAD_CHARON_EXTRA, workdir=ctx.subdir("responder"))
    bc.quiet_strongswan(swan)
    swan.start()
    return swan


def _flood(ctx: Context, sites: tb.TwoSites, pid: int, seconds: float,
           up: Callable[[], int | None]) -> dict[str, Any]:
    """Flood A from B, sampling the tunnels up once a second, until the replies stop."""
    rss_before = bc.rss_kib(pid)
    flood_meter = bc.CpuMeter(pid).start()
    proc = sites.b.popen(
        [bc.python(), str(bc.BENCH_DIR / "bench_cookie_flood.py"), "flood", "--target",
         tb.SITE_A_OUTER, "--rate", str(RATE), "--seconds", str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    samples: list[int | None] = []
    sampler = _Sampler(up, samples)
    sampler.start()
    try:
        first = proc.stdout.readline()  # {"phase": "sent"}: the flood is over
        flood_meter.stop()
        drain_meter = bc.CpuMeter(pid).start()
        flood_samples = len(samples)
        out = proc.stdout.read()
        proc.wait()
        drain_meter.stop()
    finally:
        sampler.stop()
    lines = bc.json_lines(out)
    if not bc.json_lines(first) or not lines:
        raise RuntimeError(f"flooder failed: {proc.stderr.read()[-1000:]}")
    after: list[int | None] = []
    for _ in range(3):
        time.sleep(1.0)
        after.append(up())
    during = [n for n in samples[:flood_samples] if n is not None]
    later = [n for n in samples[flood_samples:] + after if n is not None]
    return {
        "flooder": lines[-1],
        "cpu_percent": round(100 * flood_meter.cpu[pid] / flood_meter.wall, 1),
        "cpu_s_after_flood": round(drain_meter.cpu[pid], 2),
        "after_flood_s": round(drain_meter.wall, 1),
        "rss_kib_before": rss_before,
        "rss_kib_after": bc.rss_kib(pid),
        # None: the gateway never answered `show` in time.
        "min_up_during": min(during) if during else None,
        "min_up_after": min(later) if later else None,
        "status_unanswered": len(samples) + len(after) - len(during) - len(later),
        "tunnels": TUNNELS,
    }


class _Sampler(threading.Thread):
    """Tunnels up, once a second, in the background."""

    def __init__(self, up: Callable[[], int | None], samples: list[int | None]) -> None:
        super().__init__(daemon=True)
        self.up = up
        self.samples = samples
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append(self.up())
            self._stop_event.wait(1.0)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(60)


def ipsecgw_side(ctx: Context, seconds: float) -> dict[str, Any]:
    extra = f"""ipsec option tx-invalid-cookie
ipsec option dpd idle {DPD_IDLE} retry 2
ipsec lifetime seconds {LIFETIME}"""
    with bc.two_sites() as sites:
        _sites_with_flooders(sites)
        responder = _responder(ctx, sites)
        try:
            config = bc.ipsecgw_initiator_config(SUITE, TUNNELS, dpd_idle=DPD_IDLE,
                                                 extra_global=extra)
            with bc.Ipsecgw(sites.a, ctx.subdir("ipsecgw"), config, dataplane="memory") as gw:
                if not bc.wait_until(lambda: gw.all_up(TUNNELS), 120, interval=1.0):
                    raise RuntimeError(f"only {gw.count_up()} of {TUNNELS} tunnels came up")
                before = gw.statistics()
                result = _flood(ctx, sites, gw.pid, seconds, gw.count_up)
                after = gw.statistics()
                result["counters"] = {k: after.get(k, 0) - before.get(k, 0) for k in after
                                      if after.get(k, 0) != before.get(k, 0)}
        finally:
            responder.close()
    policy = EnginePolicy()
    # Replies keep coming while the gateway works through its receive queue.
    window = max(result["flooder"]["elapsed_s"],
                 result["flooder"]["last_reply_after_s"] or 0.0) + 0.5
    per_source = len(SOURCES) * (policy.invalid_cookie_burst
                                 + policy.invalid_cookie_rate * window)
    total = policy.invalid_cookie_total_burst + policy.invalid_cookie_total_rate * window
    result["reply_limit"] = int(min(per_source, total))
    result["replies_within_limit"] = result["flooder"]["replies"] <= result["reply_limit"]
    return result


def strongswan_side(ctx: Context, seconds: float) -> dict[str, Any]:
    with bc.two_sites() as sites:
        _sites_with_flooders(sites)
        responder = _responder(ctx, sites)
        try:
            gateway = tb.StrongSwan(
                sites.a, bc.strongswan_initiator_conf(
                    SUITE, TUNNELS, dpd_delay=f"{DPD_IDLE}s",
                    extra_child=f"rekey_time = {LIFETIME - 2}s\n life_time = {LIFETIME}s\n"
                                "rand_time = 0s"),
                charon_extra=bc.INITIATOR_CHARON_EXTRA, workdir=ctx.subdir("swan-a"))
            with gateway:
                bc.quiet_strongswan(gateway)
                gateway.start()

                def up() -> int:
                    return sum(bc.swan_established(gateway).values())

                if not bc.wait_until(lambda: up() >= TUNNELS, 120, interval=1.0):
                    raise RuntimeError(f"only {up()} of {TUNNELS} tunnels came up")
                return _flood(ctx, sites, bc.charon_pid(gateway), seconds, up)
        finally:
            responder.close()


def run(ctx: Context) -> list[Row]:
    seconds = 5.0 if ctx.quick else 10.0
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for side, fn in (("strongswan", strongswan_side), ("ipsecgw", ipsecgw_side)):
        ctx.log(f"{side} holding {TUNNELS} tunnels, {RATE}/s unknown cookies for {seconds:.0f} s")
        try:
            r = fn(ctx, seconds)
            results[side] = r
            ctx.log(f"  CPU {r['cpu_percent']}%, RSS {r['rss_kib_before']} -> "
                    f"{r['rss_kib_after']} KiB, up during >= {r['min_up_during']}, after >= "
                    f"{r['min_up_after']}, sent {r['flooder']['sent']} at {r['flooder']['rate']}/s,"
                    f" replies {r['flooder']['replies']}")
        except Exception as exc:  # one side failing must not hide the other's numbers
            errors[side] = bc.error_text(exc)
            ctx.log(f"  FAILED: {errors[side]}")
    common: dict[str, Any] = {"tunnels": TUNNELS, "rate": RATE, "seconds": seconds,
                              "sources": len(SOURCES),
                              **{f"{side}_error": e for side, e in errors.items()}}
    details = {**common, **{f"{side}_detail": r for side, r in results.items()}}
    return [
        Row(f"{NAME}/cpu", "% of a core", False, bc.pick(results, "ipsecgw", "cpu_percent"),
            bc.pick(results, "strongswan", "cpu_percent"), details),
        Row(f"{NAME}/tunnels-up", "tunnels (min)", True,
            bc.pick(results, "ipsecgw", "min_up_during"),
            bc.pick(results, "strongswan", "min_up_during"), common),
        Row(f"{NAME}/replies", "datagrams", False,
            _replies(results, "ipsecgw"), _replies(results, "strongswan"),
            {**common, "ipsecgw_limit": results.get("ipsecgw", {}).get("reply_limit")}),
    ]


def _replies(results: dict[str, dict[str, Any]], side: str) -> float | None:
    r = results.get(side)
    return None if r is None else float(r["flooder"]["replies"])
