"""ipsecgw.dataplane: where SAs are installed and ESP packets are carried.

`base` is the interface the daemon codes against, `memory` the fake every unit
test uses, `userspace` the TUN + user-space ESP backend, `esp` the pure ESP
packet transform (RFC 4303) and `sadb` the SA database the backends share.
"""

from ipsecgw.dataplane.base import (
    DEFAULT_MTU,
    Address,
    DataPlane,
    DataPlaneError,
    IpsecSa,
    SaCounters,
    SendUdp,
    TunnelCounters,
    TunnelSpec,
    UdpSocketOf,
    UnknownTunnel,
)
from ipsecgw.dataplane.esp import DropReason, EspError, EspKeys, InboundSa, OutboundSa
from ipsecgw.dataplane.memory import MemoryDataPlane

__all__ = [
    "DEFAULT_MTU",
    "Address",
    "DataPlane",
    "DataPlaneError",
    "DropReason",
    "EspError",
    "EspKeys",
    "InboundSa",
    "IpsecSa",
    "MemoryDataPlane",
    "OutboundSa",
    "SaCounters",
    "SendUdp",
    "UdpSocketOf",
    "TunnelCounters",
    "TunnelSpec",
    "UnknownTunnel",
]
