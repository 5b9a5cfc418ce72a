"""Just enough rtnetlink (RFC 3549; linux/rtnetlink.h) to set up a tunnel device.

Link up and MTU, one address, routes through the device, and the list of
addresses present (to choose a route's preferred source); XFRM interfaces
(`ip link add ... type xfrm if_id N`) are created, listed and deleted here
too, for the `xfrm` data plane.  Requests are
synchronous and answered within microseconds by the kernel, so they can be
made from the event loop; pyroute2's synchronous API cannot (it runs an
event loop of its own).  The socket belongs to the network namespace that
was current when it was created.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct

from ipsecgw.dataplane.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NetlinkSocket,
    attribute,
    attributes,
)

_IFINFOMSG = struct.Struct("=BxHiII")  # family, device type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
_RTMSG = struct.Struct(
    "=BBBBBBBBI"
)  # family, dst len, src len, tos, table, protocol, scope, type, flags

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25


IFF_UP = 0x1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_XFRM_IF_ID = 2  # linux/if_link.h: after IFLA_XFRM_LINK (1)
IFLA_TXQLEN = 13
IFLA_AF_SPEC = 26
IFLA_INET6_ADDR_GEN_MODE = 8
IN6_ADDR_GEN_MODE_NONE = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_F_NODAD = 0x02  # an address on a point-to-point tunnel has no one to collide with
RTA_DST = 1
RTA_OIF = 4
RTA_PREFSRC = 7
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1


def _family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


class Rtnl:
    """A NETLINK_ROUTE socket in the current network namespace."""

    def __init__(self) -> None:
        self._netlink = NetlinkSocket(socket.NETLINK_ROUTE)

    def close(self) -> None:
        self._netlink.close()

    def _request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one request; return the (type, body) of the answers, raise OSError on NACK."""
        return self._netlink.request(kind, flags, body)

    def set_link(self, index: int, *, mtu: int, up: bool, tx_queue_length: int | None = None) -> None:
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP)
        body += attribute(IFLA_MTU, struct.pack("=I", mtu))
        if tx_queue_length is not None:
            body += attribute(IFLA_TXQLEN, struct.pack("=I", tx_queue_length))
        self._request(RTM_NEWLINK, NLM_F_ACK, body)

    def add_xfrm_link(self, name: str, if_id: int) -> int:
        """Create XFRM interface `name` bound to `if_id` (down); its index.
        EEXIST if the name is taken."""
        data = attribute(IFLA_XFRM_IF_ID, struct.pack("=I", if_id))
        info = attribute(IFLA_INFO_KIND, b"xfrm\0") + attribute(IFLA_INFO_DATA, data)
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        body += attribute(IFLA_IFNAME, name.encode() + b"\0") + attribute(IFLA_LINKINFO, info)
        self._request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)
        return self.link_index(name)

    def link_index(self, name: str) -> int:
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        body += attribute(IFLA_IFNAME, name.encode() + b"\0")
        for _, payload in self._request(RTM_GETLINK, NLM_F_ACK, body):
            return int(_IFINFOMSG.unpack_from(payload)[2])
        raise OSError(errno.ENODEV, f"no device {name}")

    def move_link(self, index: int, netns_fd: int) -> None:
        """Move the device into the namespace of `netns_fd`."""
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
        body += attribute(IFLA_NET_NS_FD, struct.pack("=I", netns_fd))
        self._request(RTM_NEWLINK, NLM_F_ACK, body)

    def delete_link(self, index: int) -> None:
        self._request(RTM_DELLINK, NLM_F_ACK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0))

    def xfrm_links(self) -> list[tuple[int, str, int]]:
        """(index, name, if_id) of every XFRM interface in the namespace."""
        found: list[tuple[int, str, int]] = []
        request = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        for _, payload in self._request(RTM_GETLINK, NLM_F_DUMP, request):
            index = _IFINFOMSG.unpack_from(payload)[2]
            link = dict(attributes(payload[_IFINFOMSG.size :]))
            info = dict(attributes(link.get(IFLA_LINKINFO, b"")))
            if info.get(IFLA_INFO_KIND, b"").rstrip(b"\0") != b"xfrm":
                continue
            data = dict(attributes(info.get(IFLA_INFO_DATA, b"")))
            if_id = data.get(IFLA_XFRM_IF_ID)
            name = link.get(IFLA_IFNAME, b"").rstrip(b"\0").decode()
            if if_id is not None and len(if_id) >= 4:
                found.append((index, name, struct.unpack_from("=I", if_id)[0]))
        return found

    def disable_link_local(self, index: int) -> None:
        """No IPv6 link-local address, hence no router solicitations or MLD
        reports that the host would route into the device.  Must precede `up`."""
        mode = attribute(IFLA_INET6_ADDR_GEN_MODE, bytes((IN6_ADDR_GEN_MODE_NONE,)))
        spec = attribute(IFLA_AF_SPEC, attribute(socket.AF_INET6, mode))
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0) + spec
        self._request(RTM_NEWLINK, NLM_F_ACK, body)

    def add_address(self, index: int, interface: str) -> None:
        """Add "ip/len" to the device (replacing it if already there)."""
        address = ipaddress.ip_interface(interface)
        packed = address.ip.packed
        body = _IFADDRMSG.pack(
            _family(address.version),
            address.network.prefixlen,
            IFA_F_NODAD if address.version == 6 else 0,
            RT_SCOPE_UNIVERSE,
            index,
        )
        body += attribute(IFA_LOCAL, packed) + attribute(IFA_ADDRESS, packed)
        self._request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, body)

    def addresses(self) -> list[str]:
        """Every address in the namespace, in the kernel's order."""
        found: list[str] = []
        for _, payload in self._request(RTM_GETADDR, NLM_F_DUMP, _IFADDRMSG.pack(0, 0, 0, 0, 0)):
            family = payload[0]
            address = dict(attributes(payload[_IFADDRMSG.size :]))
            # IPv4 keeps the local address in IFA_LOCAL (IFA_ADDRESS is the
            # peer on point-to-point links); IPv6 has only IFA_ADDRESS.
            value = address.get(IFA_LOCAL) or address.get(IFA_ADDRESS)
            if value is not None and family in (socket.AF_INET, socket.AF_INET6):
                found.append(str(ipaddress.ip_address(value)))
        return found

    def route(self, add: bool, network: str, index: int, source: str | None = None) -> None:
        """Add (replacing) or delete the route to `network` through device `index`."""
        destination = ipaddress.ip_network(network, strict=False)
        body = _RTMSG.pack(
            _family(destination.version),
            destination.prefixlen,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_STATIC,
            RT_SCOPE_LINK,
            RTN_UNICAST,
            0,
        )
        body += attribute(RTA_DST, destination.network_address.packed)
        body += attribute(RTA_OIF, struct.pack("=I", index))
        if source is not None:
            body += attribute(RTA_PREFSRC, ipaddress.ip_address(source).packed)
        if add:
            self._request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, body)
        else:
            self._request(RTM_DELROUTE, NLM_F_ACK, body)
