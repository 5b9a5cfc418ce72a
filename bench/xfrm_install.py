#!/usr/bin/env python3
"""Benchmark (not a test): ipsecgw CPU to install one tunnel's kernel SAs and policies.

One operation is `XfrmDataPlane.install_sa` of one SA pair on a tunnel with
no SA yet (two NEWSA and three UPDPOLICY requests: in, out, fwd, sent in
one datagram), and of a rekey's pair (two NEWSA), measured as the
process's CPU time, user and system apart: the kernel handles a netlink
request in the sender's context, so system time is the kernel building the
SAs (cipher and HMAC contexts), which every IKE daemon pays the same, and
user time is ipsecgw's own.  `remove_sa` is timed apart.  Needs a kernel with ESP: run it in the VM,
`scripts/vm -- python bench/xfrm_install.py`.

The VM's CPU is emulated (TCG), so the raw figure is far above what real
hardware takes.  The same pure-Python reference loop is timed here and is
timed on the host by `--reference`; the ratio of the two scales the VM's
user time to the host, printed as the estimate (emulation slows kernel
code differently, so system time is not scaled).

Usage: python3 bench/xfrm_install.py [--count N] [--host-reference SECONDS]
       python3 bench/xfrm_install.py --reference
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import dataclass

from ipsecgw.dataplane import TunnelSpec
from ipsecgw.dataplane.tun import entered
from ipsecgw.dataplane.xfrm import XfrmDataPlane
from ipsecgw.isakmp.events import SaKeys
from ipsecgw.tools import testbed as tb


@dataclass(frozen=True)
class Sa:
    tunnel: str
    peer: tuple[str, int]
    local: tuple[str, int]
    inbound: SaKeys
    outbound: SaKeys
    protocol: str = "esp"
    encapsulation: str = "tunnel"
    local_network: str = tb.SITE_A_NET
    remote_network: str = tb.SITE_B_NET
    lifetime_seconds: int = 3600
    lifetime_kilobytes: int = 0
    rekey_of: bytes | None = None


def reference() -> float:
    """CPU seconds of a fixed pure-Python workload (dict, struct, bytes)."""
    start = time.process_time()
    table: dict[int, bytes] = {}
    for i in range(300_000):
        table[i & 1023] = i.to_bytes(8, "little") + b"x" * (i & 31)
    return time.process_time() - start


def keys() -> SaKeys:
    return SaKeys(os.urandom(4), "aes128", os.urandom(16), "hmac-sha1-96", os.urandom(20))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--reference", action="store_true", help="time the reference loop only")
    parser.add_argument("--host-reference", type=float, help="the host's --reference figure")
    args = parser.parse_args()
    if args.reference:
        print(f"reference {min(reference() for _ in range(3)):.4f} s")
        return
    netns = tb.Netns.create("igwb")
    try:
        plane = XfrmDataPlane()
        with entered(netns.name):
            plane.add_tunnel(TunnelSpec("t", remote_networks=(tb.SITE_B_NET,)))
            first = cycles(plane, args.count)
            # A rekey: the tunnel holds a pair, so its policies stay as they are.
            held = new_sa()
            plane.install_sa(held)
            rekey = cycles(plane, args.count)
            plane.close()
    finally:
        netns.close()
    vm_reference = min(reference() for _ in range(3))
    factor = vm_reference / args.host_reference if args.host_reference else None
    print(f"reference loop in the VM: {vm_reference:.4f} s")
    for what, (install, remove) in (("first SA pair (2 SAs + 3 policies)", first),
                                    ("rekey (2 SAs)", rekey)):
        print(f"{what}: install {install[0]:.3f} ms user + {install[1]:.3f} ms system, "
              f"remove {remove[0]:.3f} + {remove[1]:.3f} ms, CPU in the VM")
        if factor:
            print(f"  user (ipsecgw's Python) scaled to the host: install "
                  f"~{install[0] / factor:.3f} ms, remove ~{remove[0] / factor:.3f} ms")
    if factor:
        print(f"(VM/host slowdown of the reference loop: {factor:.1f}x)")


def new_sa() -> Sa:
    return Sa("t", (tb.SITE_B_OUTER, 0), (tb.SITE_A_OUTER, 0), keys(), keys())


def cycles(plane: XfrmDataPlane, count: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Mean (user, system) CPU milliseconds of install_sa and of remove_sa."""
    install = [0.0, 0.0]
    remove = [0.0, 0.0]
    for _ in range(count):
        sa = new_sa()
        start = resource.getrusage(resource.RUSAGE_SELF)
        plane.install_sa(sa)
        middle = resource.getrusage(resource.RUSAGE_SELF)
        plane.remove_sa("t", sa.inbound.spi, sa.outbound.spi)
        end = resource.getrusage(resource.RUSAGE_SELF)
        install[0] += middle.ru_utime - start.ru_utime
        install[1] += middle.ru_stime - start.ru_stime
        remove[0] += end.ru_utime - middle.ru_utime
        remove[1] += end.ru_stime - middle.ru_stime
    return ((install[0] / count * 1000, install[1] / count * 1000),
            (remove[0] / count * 1000, remove[1] / count * 1000))


if __name__ == "__main__":
    main()
