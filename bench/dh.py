#!/usr/bin/env python3
"""Benchmark (not a test): Diffie-Hellman operations per second per group, and whole
phase 1 key derivations per second, on one core.

A "DH op" is one key pair generation plus one shared secret computation: what a
responder spends on each Main Mode. A "phase 1 derivation" is that plus SKEYID,
SKEYID_d/a/e, the cipher key, the first IV, HASH_I and HASH_R (PSK, SHA-1, AES-128).

Usage: python3 bench/dh.py [--seconds S] [group ...]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from ipsecgw.isakmp import crypto, keymat


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second of `operation`, run for about `seconds`."""
    operation()  # warm up (and build any lazy state)
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        operation()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def dh_op(group: crypto.DhGroup, peer_public: bytes) -> Callable[[], bytes]:
    def operation() -> bytes:
        return group.generate().shared_secret(peer_public)

    return operation


def phase1_derivation(group: crypto.DhGroup, peer_public: bytes) -> Callable[[], bytes]:
    cky_i, cky_r = crypto.random_bytes(8), crypto.random_bytes(8)
    ni_b, nr_b = crypto.random_bytes(32), crypto.random_bytes(32)
    sai_b, idii_b, idir_b = b"\x00" * 56, b"\x01\x00\x00\x00\x0a\x63\x00\x01", b"\x01" * 8

    def operation() -> bytes:
        own = group.generate()
        gxy = own.shared_secret(peer_public)
        skeyid = keymat.skeyid_psk("sha1", b"bench-psk", ni_b, nr_b)
        keys = keymat.derive_phase1(
            "sha1", "aes128", 16, skeyid, gxy, cky_i, cky_r, peer_public, own.public_value
        )
        keymat.hash_i("sha1", skeyid, peer_public, own.public_value, cky_i, cky_r, sai_b, idii_b)
        return keymat.hash_r(
            "sha1", keys.skeyid, own.public_value, peer_public, cky_r, cky_i, sai_b, idir_b
        )

    return operation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("groups", nargs="*", type=int, default=list(crypto.SUPPORTED_DH_GROUPS))
    args = parser.parse_args()
    print(f"{'group':>5} {'public bytes':>12} {'DH ops/s':>10} {'phase 1/s':>10}")
    for number in args.groups:
        group = crypto.dh_group(number)
        peer_public = group.generate().public_value
        dh_rate = rate(dh_op(group, peer_public), args.seconds)
        phase1_rate = rate(phase1_derivation(group, peer_public), args.seconds)
        print(f"{number:>5} {group.public_size:>12} {dh_rate:>10.0f} {phase1_rate:>10.0f}")


if __name__ == "__main__":
    main()
