"""Virtual routers are Linux network namespaces (SPEC 2).

VR ``default`` is the namespace the daemon was started in; any other VR NAME
is the namespace ``/run/netns/NAME`` (where ``ip netns add`` puts it).
Sockets and TUN devices belong to the namespace that was current when they
were created, so the daemon (UDP sockets) and the data plane (TUN devices,
raw sockets) enter the VR's namespace just long enough to create them.

This module is neutral ground: it imports nothing of ipsecgw, so that the
configuration, the daemon and the data plane can all use it without
depending on one another.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_VR = "default"
NETNS_RUN_DIR = "/run/netns"


class NetnsError(OSError):
    """The namespace of a virtual router does not exist or cannot be entered."""


def vr_exists(vr: str) -> bool:
    """Whether virtual router `vr` has a network namespace to enter."""
    return vr == DEFAULT_VR or os.path.exists(os.path.join(NETNS_RUN_DIR, vr))


@contextmanager
def in_vr(vr: str) -> Iterator[None]:
    """Run the body inside the network namespace of virtual router ``vr``."""
    if vr == DEFAULT_VR:
        yield
        return
    from pyroute2 import netns

    # pyroute2 would create a missing namespace (O_CREAT): a mistyped VR must
    # be an error, not a new empty namespace.
    if not vr_exists(vr):
        raise NetnsError(f"virtual router {vr}: no network namespace {vr!r}")
    try:
        netns.pushns(vr)
    except OSError as exc:
        raise NetnsError(f"virtual router {vr}: no network namespace {vr!r} ({exc})") from exc
    try:
        yield
    finally:
        netns.popns()
