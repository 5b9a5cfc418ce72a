#!/usr/bin/env python3
"""Benchmark (not a test): user-space ESP packet transform throughput, one core.

Each operation is one `OutboundSa.encapsulate` plus one `InboundSa.decapsulate`
of a 1400-byte inner IPv4 packet: the work one packet costs the two ends of
a tunnel, without the TUN and socket system calls.  The figure is in inner
Mbit/s (1400 bytes x 8 per operation), to set beside strongSwan's
kernel-libipsec at ~240 Mbit/s TCP end to end on this machine (TESTBED.md).
Encapsulate alone and decapsulate alone are printed too.

Usage: python3 bench/esp.py [--seconds S] [--size BYTES] [suite ...]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ipsecgw.dataplane.esp import ENCRYPTIONS, INTEGRITIES, InboundSa, OutboundSa

# suite -> (encryption, integrity)
SUITES: dict[str, tuple[str, str | None]] = {
    "aes128-cbc/hmac-sha1": ("aes128", "hmac-sha1-96"),
    "aes256gcm": ("aes256gcm", None),
    "aes256-cbc/hmac-sha256": ("aes256", "hmac-sha256-128"),
    "3des-cbc/hmac-md5": ("3des", "hmac-md5-96"),
    "null/hmac-sha1": ("null", "hmac-sha1-96"),
}
DEFAULT_SUITES = ("aes128-cbc/hmac-sha1", "aes256gcm")
DECAPSULATE_BATCH = 4096


@dataclass(frozen=True)
class Keys:
    spi: bytes
    encryption: str
    encryption_key: bytes = field(repr=False)
    integrity: str | None
    integrity_key: bytes = field(repr=False)


def rate(operation: Callable[[], object], seconds: float, repeats: int = 3) -> float:
    """Operations per second of `operation`: the best of `repeats` runs of
    `seconds / repeats` each (the first run also warms the CPU up; the best
    run is the one least disturbed by other work on the machine)."""
    best = 0.0
    for _ in range(repeats):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / repeats
        while True:
            for _ in range(100):
                operation()
            count += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def bench_suite(
    encryption: str, integrity: str | None, size: int, seconds: float
) -> dict[str, float]:
    keys = Keys(
        os.urandom(4),
        encryption,
        os.urandom(ENCRYPTIONS[encryption].key_size),
        integrity,
        os.urandom(INTEGRITIES[integrity][1]) if integrity else b"",
    )
    inner = b"\x45" + os.urandom(size - 1)
    outbound, inbound = OutboundSa(keys), InboundSa(keys)

    def round_trip() -> bytes:
        return inbound.decapsulate(outbound.encapsulate(inner))

    results = {"round trip": rate(round_trip, seconds)}
    sender = OutboundSa(keys)
    results["encapsulate"] = rate(lambda: sender.encapsulate(inner), seconds)
    # The anti-replay window refuses a packet seen twice, so decapsulation
    # alone is timed over a batch of distinct packets made beforehand, each
    # pass with a fresh SA; the best pass counts, as in `rate`.
    fresh = OutboundSa(keys)
    packets = [fresh.encapsulate(inner) for _ in range(DECAPSULATE_BATCH)]
    best = 0.0
    deadline = time.perf_counter() + seconds
    while best == 0.0 or time.perf_counter() < deadline:
        receiver = InboundSa(keys)
        start = time.perf_counter()
        for packet in packets:
            receiver.decapsulate(packet)
        best = max(best, len(packets) / (time.perf_counter() - start))
    results["decapsulate"] = best
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=", ".join(SUITES))
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--size", type=int, default=1400, help="inner packet size in bytes")
    args = parser.parse_args()
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    print(f"{'suite':<24} {'operation':<12} {'packets/s':>11} {'Mbit/s':>8} {'us/packet':>10}")
    for name in args.suites or DEFAULT_SUITES:
        for operation, per_second in bench_suite(*SUITES[name], args.size, args.seconds).items():
            print(
                f"{name:<24} {operation:<12} {per_second:>11,.0f} "
                f"{per_second * args.size * 8 / 1e6:>8,.0f} {1e6 / per_second:>10.1f}"
            )


if __name__ == "__main__":
    main()
