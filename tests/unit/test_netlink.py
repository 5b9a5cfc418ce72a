"""The netlink framing shared by rtnl.py and xfrm_netlink.py, against this kernel's rtnetlink."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from ipsecgw.dataplane.netlink import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NetlinkSocket,
    attribute,
    attributes,
)

RTM_GETLINK = 18
RTM_NEWLINK = 16
IFLA_IFNAME = 3
_IFINFOMSG = struct.Struct("=BxHiII")
_MISSING = 0x7FFFFFF0  # no interface has this index


class Refused(OSError):
    pass


def test_attributes_are_padded_and_read_back_without_their_flag_bits() -> None:
    data = attribute(IFLA_IFNAME, b"lo\0") + attribute(0x8000 | 18, attribute(1, b"xfrm"))
    assert len(data) % 4 == 0
    walked = list(attributes(data))
    assert walked[0] == (IFLA_IFNAME, b"lo\0")
    assert walked[1][0] == 18  # NLA_F_NESTED is not part of the type
    assert list(attributes(walked[1][1])) == [(1, b"xfrm")]
    assert list(attributes(struct.pack("=HH", 2, 1))) == []  # a length below the header ends the walk


def test_a_dump_returns_every_answer_and_a_refusal_raises_the_familys_error() -> None:
    netlink = NetlinkSocket(socket.NETLINK_ROUTE, Refused)
    try:
        links = netlink.request(RTM_GETLINK, NLM_F_DUMP, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))
        names = {dict(attributes(body[_IFINFOMSG.size :]))[IFLA_IFNAME] for _, body in links}
        assert b"lo\0" in names and {kind for kind, _ in links} == {RTM_NEWLINK}
        with pytest.raises(Refused) as refused:
            netlink.request(RTM_GETLINK, NLM_F_ACK,
                            _IFINFOMSG.pack(socket.AF_UNSPEC, 0, _MISSING, 0, 0))
        assert refused.value.errno == errno.ENODEV and "No such device" in str(refused.value)
    finally:
        netlink.close()


def test_a_batch_reports_each_requests_own_result() -> None:
    netlink = NetlinkSocket(socket.NETLINK_ROUTE, Refused)
    try:
        loopback = socket.if_nametoindex("lo")
        results = netlink.batch([
            (RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, loopback, 0, 0)),
            (RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, _MISSING, 0, 0)),
            (RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, loopback, 0, 0)),
        ])
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], Refused) and results[1].errno == errno.ENODEV
        # The socket is in step afterwards: the next request gets its own answers.
        assert netlink.request(RTM_GETLINK, NLM_F_ACK,
                               _IFINFOMSG.pack(socket.AF_UNSPEC, 0, loopback, 0, 0))
    finally:
        netlink.close()
