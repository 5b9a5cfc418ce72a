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

`--tunnels N` then installs N tunnels in one run, as a daemon holding N
tunnels to N peers would: N XFRM interfaces (`add_tunnel`), then one SA
pair with its own /32 selectors and policies for each (`install_sa`, timed
as above), checks that the kernel holds 2N SAs and 3N policies, and removes
everything (`close`).

Usage: python3 bench/xfrm_install.py [--count N] [--tunnels N] [--host-reference SECONDS]
       python3 bench/xfrm_install.py --reference
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import resource
import time
from dataclasses import dataclass

from ipsecgw.dataplane import TunnelSpec
from ipsecgw.dataplane.xfrm import XfrmDataPlane
from ipsecgw.isakmp.events import SaKeys
from ipsecgw.netns import in_vr
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
    parser.add_argument("--tunnels", type=int, default=0,
                        help="then install this many tunnels' SAs in one run")
    args = parser.parse_args()
    if args.reference:
        print(f"reference {min(reference() for _ in range(3)):.4f} s")
        return
    netns = tb.Netns.create("igwb")
    try:
        plane = XfrmDataPlane()
        with in_vr(netns.name):
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
    if args.tunnels:
        many_tunnels(args.tunnels, factor)


def new_sa(tunnel: str = "t", n: int | None = None) -> Sa:
    """An SA pair of `tunnel`; with `n`, the selectors of tunnel n's own /32s."""
    if n is None:
        return Sa(tunnel, (tb.SITE_B_OUTER, 0), (tb.SITE_A_OUTER, 0), keys(), keys())
    local, remote = network(LOCAL_BASE, n), network(REMOTE_BASE, n)
    return Sa(tunnel, (tb.SITE_B_OUTER, 0), (tb.SITE_A_OUTER, 0), keys(), keys(),
              local_network=local, remote_network=remote)


LOCAL_BASE = ipaddress.IPv4Address("10.100.0.0")
REMOTE_BASE = ipaddress.IPv4Address("10.101.0.0")


def network(base: ipaddress.IPv4Address, n: int) -> str:
    return f"{base + n}/32"


def many_tunnels(count: int, factor: float | None) -> None:
    """`count` tunnels, each its interface and one SA pair, in one run."""
    netns = tb.Netns.create("igwm")
    try:
        plane = XfrmDataPlane()
        with in_vr(netns.name):
            started = time.monotonic()
            for n in range(count):
                plane.add_tunnel(TunnelSpec(f"t{n}", remote_networks=(network(REMOTE_BASE, n),),
                                            local_networks=(network(LOCAL_BASE, n),)))
            interfaces = time.monotonic() - started
            sas = [new_sa(f"t{n}", n) for n in range(count)]
            before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.monotonic()
            for sa in sas:
                plane.install_sa(sa)
            installed = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
            held = (kernel_count(netns, "state"), kernel_count(netns, "policy"))
            started = time.monotonic()
            plane.close()
            removed = time.monotonic() - started
        left = (kernel_count(netns, "state"), kernel_count(netns, "policy"))
    finally:
        netns.close()
    user = (after.ru_utime - before.ru_utime) / count * 1000
    system = (after.ru_stime - before.ru_stime) / count * 1000
    print(f"{count} tunnels in one run: {interfaces:.1f} s to create the XFRM interfaces, "
          f"{installed:.1f} s to install the SAs and policies ({user:.3f} ms user + "
          f"{system:.3f} ms system per tunnel, CPU in the VM"
          + (f"; user scaled to the host ~{user / factor:.3f} ms" if factor else "") + ")")
    print(f"  the kernel held {held[0]} SAs and {held[1]} policies (expected {2 * count} and "
          f"{3 * count}); close() removed everything in {removed:.1f} s, "
          f"left {left[0]} SAs and {left[1]} policies")
    if held != (2 * count, 3 * count) or left != (0, 0):
        raise SystemExit("the kernel did not hold what was installed")


def kernel_count(netns: tb.Netns, what: str) -> int:
    """SAs (`ip xfrm state count`: "SAD count N") or policies (`ip xfrm
    policy count`: "SPD IN i OUT o FWD f ...", the sum)."""
    shown = netns.ip("xfrm", what, "count")
    found = re.search(r"SAD count (\d+)" if what == "state"
                      else r"SPD IN\s+(\d+)\s+OUT\s+(\d+)\s+FWD\s+(\d+)", shown)
    if found is None:
        raise RuntimeError(f"ip xfrm {what} count: {shown!r}")
    return sum(int(n) for n in found.groups())


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
