"""A synchronous netlink socket (RFC 3549): the framing both rtnl.py and xfrm_netlink.py speak.

One request at a time (or a batch in one datagram), answered by the kernel
within microseconds, so the daemon makes them from its event loop; what the
messages mean stays in the modules of each family.  The socket belongs to
the network namespace that was current when it was created.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct
from collections.abc import Iterator

_NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_NLATTR = struct.Struct("=HH")  # length, type
#: The flags in an attribute's type (NLA_F_NESTED, NLA_F_NET_BYTEORDER).
_NLA_TYPE_MASK = 0x3FFF

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_DUMP = 0x300
NLM_F_CREATE = 0x400


def attribute(kind: int, value: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = _NLATTR.size + len(value)
    return _NLATTR.pack(length, kind) + value + bytes(-length % 4)


def attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The (type, value) of each attribute in `data`; a truncated one ends the walk."""
    offset = 0
    while offset + _NLATTR.size <= len(data):
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < _NLATTR.size:
            return
        yield kind & _NLA_TYPE_MASK, data[offset + _NLATTR.size : offset + length]
        offset += (length + 3) & ~3


def _messages(data: bytes, error: type[OSError]) -> Iterator[tuple[int, int, bytes]]:
    """The (type, sequence, body) of each message in one datagram."""
    offset = 0
    while offset + _NLMSG_HEADER.size <= len(data):
        length, kind, _, sequence, _ = _NLMSG_HEADER.unpack_from(data, offset)
        if length < _NLMSG_HEADER.size:
            raise error(errno.EPROTO, "truncated netlink message")
        yield kind, sequence, data[offset + _NLMSG_HEADER.size : offset + length]
        offset += (length + 3) & ~3


def _nack(body: bytes, error: type[OSError]) -> OSError | None:
    """An NLMSG_ERROR's error (None for an acknowledgement)."""
    (code,) = struct.unpack_from("=i", body)
    return error(-code, os.strerror(-code)) if code else None


class NetlinkSocket:
    """A netlink socket of one protocol; a refused request raises `error`
    (an OSError subclass of the family's) carrying the kernel's reason."""

    def __init__(self, protocol: int, error: type[OSError] = OSError) -> None:
        self._socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        try:
            self._socket.bind((0, 0))
        except OSError:
            self._socket.close()
            raise
        self._error = error
        self._sequence = itertools.count(1)

    def close(self) -> None:
        self._socket.close()

    def _send(self, kind: int, flags: int, sequence: int, body: bytes) -> bytes:
        return _NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(body), kind,
                                  NLM_F_REQUEST | flags, sequence, 0) + body

    def request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one request; the (type, body) of its answers until DONE or the ACK."""
        sequence = next(self._sequence)
        self._socket.send(self._send(kind, flags, sequence, body))
        answers: list[tuple[int, bytes]] = []
        while True:
            for answer, answer_sequence, payload in _messages(self._socket.recv(1 << 20),
                                                             self._error):
                if answer_sequence != sequence:
                    continue  # a late answer to an earlier request
                if answer == NLMSG_DONE:
                    return answers
                if answer == NLMSG_ERROR:
                    nack = _nack(payload, self._error)
                    if nack is not None:
                        raise nack
                    return answers
                answers.append((answer, payload))

    def batch(self, requests: list[tuple[int, bytes]]) -> list[OSError | None]:
        """Send several acknowledged requests in one datagram (the kernel handles
        them in order and acknowledges each); each one's error, None where it
        worked.  One system call each way instead of one per request."""
        first = next(self._sequence)
        for _ in requests[1:]:
            next(self._sequence)
        self._socket.send(b"".join(self._send(kind, NLM_F_ACK, first + i, body)
                                   for i, (kind, body) in enumerate(requests)))
        results: dict[int, OSError | None] = {}
        while len(results) < len(requests):
            for answer, sequence, payload in _messages(self._socket.recv(1 << 20), self._error):
                if answer == NLMSG_ERROR and 0 <= sequence - first < len(requests):
                    results[sequence - first] = _nack(payload, self._error)
        return [results[i] for i in range(len(requests))]
