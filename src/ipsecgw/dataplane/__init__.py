"""ipsecgw.dataplane: where SAs are installed and ESP and AH packets are carried.

`base` is the interface the daemon codes against, `memory` the fake every unit
test uses, `userspace` the TUN + user-space ESP/AH backend, `esp` the pure ESP
packet transform (RFC 4303), `ah` the pure AH one (RFC 4302, tunnel mode over
IPv4), `common` what they share (drop reasons, replay window) and `sadb` the
SA database the backends share.
"""

from ipsecgw.dataplane.ah import AhError, InboundAh, OutboundAh
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
    "AhError",
    "DataPlane",
    "DataPlaneError",
    "DropReason",
    "EspError",
    "EspKeys",
    "InboundAh",
    "InboundSa",
    "IpsecSa",
    "MemoryDataPlane",
    "OutboundAh",
    "OutboundSa",
    "SaCounters",
    "SendUdp",
    "UdpSocketOf",
    "TunnelCounters",
    "TunnelSpec",
    "UnknownTunnel",
]
