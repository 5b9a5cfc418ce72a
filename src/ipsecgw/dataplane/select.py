"""Which data plane the daemon runs: `--dataplane {auto,xfrm,userspace,memory}`.

`auto` asks the kernel once, in the daemon's own namespace, whether it can
carry ESP through an XFRM interface: it adds an XFRM interface and an
AES-CBC/HMAC-SHA1 ESP SA, both with ipsecgw's probe if_id, and removes them
again.  Where both work the kernel plane is chosen (XFRM, several Gbit/s per
core), otherwise the user-space plane (ESP in Python over TUN), which runs
wherever TUN does, e.g. on kernels built without ESP.  The reason is logged.
"""

from __future__ import annotations

import logging
import os

from ipsecgw.dataplane.rtnl import Rtnl
from ipsecgw.dataplane.xfrm import IF_ID_PROBE
from ipsecgw.dataplane.xfrm_netlink import StateSpec, XfrmSocket, algorithms

log = logging.getLogger("ipsecgw.dataplane")

KINDS = ("auto", "xfrm", "userspace", "memory")
_PROBE_PEER = "192.0.2.1"  # RFC 5737 TEST-NET-1: never a real peer
_PROBE_LINK = "ipsgw-probe"


def probe_xfrm() -> str | None:
    """None when the kernel can carry ESP on an XFRM interface, else why not."""
    try:
        rtnl = Rtnl()
    except OSError as error:
        return f"no rtnetlink: {error}"
    try:
        try:
            index = rtnl.add_xfrm_link(_PROBE_LINK, IF_ID_PROBE)
        except OSError as error:
            return f"the kernel cannot create an XFRM interface: {error}"
        rtnl.delete_link(index)
    finally:
        rtnl.close()
    try:
        xfrm = XfrmSocket()
    except OSError as error:
        return f"no NETLINK_XFRM socket: {error}"
    spi = os.urandom(4)
    keys = algorithms("aes128", bytes(16), "hmac-sha1-96", bytes(20), "esp")
    try:
        xfrm.add_state(StateSpec("192.0.2.2", _PROBE_PEER, spi, "esp", keys, IF_ID_PROBE))
        xfrm.delete_state(_PROBE_PEER, spi, "esp")
    except OSError as error:
        return f"the kernel refused an ESP SA (AES-CBC/HMAC-SHA1): {error}"
    finally:
        xfrm.close()
    return None


def resolve(kind: str) -> tuple[str, str]:
    """The data plane to run for `--dataplane kind` and why, logging both.

    The reason is what `show version` prints next to the choice, so that an
    operator sees where ESP runs without reading the daemon's log."""
    if kind not in KINDS:
        raise ValueError(f"unknown data plane {kind!r} (one of {', '.join(KINDS)})")
    if kind != "auto":
        why = "chosen on the command line"
    else:
        problem = probe_xfrm()
        if problem is None:
            kind, why = "xfrm", "the kernel carries ESP on XFRM interfaces"
        else:
            kind, why = "userspace", f"{problem}; ESP runs in this process over TUN"
    log.info("data plane %s: %s", kind, why)
    return kind, why
