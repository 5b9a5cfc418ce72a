"""AH in tunnel mode with IPv4 outer headers (RFC 4302), sans-IO.

One `OutboundAh` turns an inner IP packet into a complete outer IPv4 packet
carrying AH; one `InboundAh` checks such a packet (as a raw IPv4 socket
delivers it, header included) and returns the inner packet, or raises
`AhError` with the reason it was dropped.  AH authenticates but does not
encrypt: the inner packet travels in the clear.

Packet layout (RFC 4302 section 2, tunnel mode 3.1):

    +----------------------+-------------------------------+--------------+
    | outer IPv4 header    | AH: Next Header | Payload Len | inner packet |
    | protocol 51          | Reserved | SPI | Sequence     | (IPv4/IPv6)  |
    |                      | Number | ICV (12 octets)      |              |
    +----------------------+-------------------------------+--------------+

The ICV covers the outer header too, with the fields that routers may change
in transit zeroed (RFC 4302 3.3.3.1.1): TOS (DSCP and ECN), flags, fragment
offset, TTL and header checksum, and every mutable option as a whole
(appendix A.1).  So the outbound side builds the whole outer header itself,
Identification and Total Length included, and the sender must transmit it
unchanged (a raw socket with IP_HDRINCL).  IPv6 outer headers are not
supported.
"""

from __future__ import annotations

import hmac as _constant_time
import ipaddress
import os
import struct
from collections.abc import Callable

from cryptography.hazmat.primitives import hmac

from ipsecgw.dataplane.common import (
    DEFAULT_REPLAY_WINDOW,
    DropReason,
    OutboundSequence,
    PacketDropped,
    ReplayWindow,
    tunnel_inner_refusal,
    tunnel_next_header,
)
from ipsecgw.dataplane.esp import INTEGRITIES, EspKeys

IPPROTO_AH = 51
OUTER_TTL = 64

_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
_IPV4_HEADER_SIZE = 20
_IPV4_WORDS = struct.Struct("!10H")  # the header as checksum words
_AH_FIXED = struct.Struct("!BBH4sI")  # Next Header, Payload Len, Reserved, SPI, Sequence
_AH_FIXED_SIZE = 12

# IPv4 options included in the ICV as they are (RFC 4302 appendix A.1):
# End of Options List, No Operation, Security, Extended Security,
# Commercial Security, Router Alert, Sender Directed Multi-Destination
# Delivery.  Every other option, known or not, is zeroed as a whole.
_IMMUTABLE_OPTIONS = frozenset({0, 1, 130, 133, 134, 148, 149})


class AhError(PacketDropped):
    """An AH packet that must be dropped; `reason` names the counter."""


def ipv4_checksum(header: bytes) -> int:
    """The RFC 791 header checksum of a 20-octet header (checksum field zero)."""
    total: int = sum(_IPV4_WORDS.unpack(header))
    total = (total & 0xFFFF) + (total >> 16)
    total += total >> 16
    return ~total & 0xFFFF


def _outer_address(address: str) -> bytes:
    ip = ipaddress.ip_address(address)
    if ip.version != 4:
        raise ValueError(f"AH with IPv6 outer addresses ({address}) is not supported")
    return ip.packed


def _zero_mutable_options(options: bytes) -> bytes:
    """The options area as the ICV sees it (RFC 4302 3.3.3.1.1.2, appendix A.1)."""
    out = bytearray(options)
    offset, size = 0, len(options)
    while offset < size:
        kind = options[offset]
        if kind == 0:  # End of Options List: the rest is padding, kept as is
            break
        if kind == 1:  # No Operation: a single octet
            offset += 1
            continue
        if offset + 1 >= size or not 2 <= options[offset + 1] <= size - offset:
            raise AhError(DropReason.MALFORMED, f"IPv4 option {kind} has a bad length")
        length = options[offset + 1]
        if kind not in _IMMUTABLE_OPTIONS:
            out[offset : offset + length] = bytes(length)
        offset += length
    return bytes(out)


class _Integrity:
    """The SA's HMAC, validated, its key schedule built once (as ESP does)."""

    def __init__(self, keys: EspKeys) -> None:
        if len(keys.spi) != 4:
            raise ValueError(f"SPI must be 4 bytes, got {len(keys.spi)}")
        if keys.encryption != "null" or keys.encryption_key:
            raise ValueError(f"AH does not encrypt; got encryption {keys.encryption!r}")
        if keys.integrity is None:
            raise ValueError("AH needs an integrity algorithm")
        integrity = INTEGRITIES.get(keys.integrity)
        if integrity is None:
            raise ValueError(f"unsupported AH integrity {keys.integrity!r}")
        algorithm, key_size, self.icv_size = integrity
        if len(keys.integrity_key) != key_size:
            raise ValueError(
                f"{keys.integrity} needs a {key_size}-byte key, got {len(keys.integrity_key)}"
            )
        # RFC 4302 2.6: over IPv4 the AH header is a multiple of 32 bits; the
        # ICVs of these algorithms (12 or 16 octets) are, so no ICV padding.
        self.hmac = hmac.HMAC(keys.integrity_key, algorithm())
        self.zero_icv = bytes(self.icv_size)
        self.ah_size = _AH_FIXED_SIZE + self.icv_size
        # RFC 4302 2.2: Payload Len is the AH length in 32-bit words minus 2.
        self.payload_len = self.ah_size // 4 - 2

    def icv(self, *parts: bytes) -> bytes:
        mac = self.hmac.copy()
        for part in parts:
            mac.update(part)
        return mac.finalize()[: self.icv_size]


class OutboundAh(OutboundSequence):
    """The sending half of an AH SA (RFC 4302 3.3) from `local` to `peer`."""

    def __init__(
        self,
        keys: EspKeys,
        local: str,
        peer: str,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._i = _Integrity(keys)
        self._source = _outer_address(local)
        self._destination = _outer_address(peer)
        # RFC 791 / RFC 6864: the Identification must not be zero here (the
        # kernel would fill in its own after the ICV covered ours); a random
        # start keeps two SAs to one peer from marching in step.
        self._identification = int.from_bytes(random_bytes(2), "big")
        self.spi = keys.spi
        self.sequence_number = 0  # the last one sent; the first packet carries 1
        self.packets = 0
        self.bytes = 0  # inner bytes, as kilobyte lifetimes count

    def encapsulate(self, inner: bytes) -> bytes:
        """Return the outer IPv4 packet (header included) that carries `inner`."""
        header_type = tunnel_next_header(inner)
        sequence_number = self._next_sequence_number()
        i = self._i
        identification = self._identification % 0xFFFF + 1  # 1 .. 65535, never 0
        self._identification = identification
        total_length = _IPV4_HEADER_SIZE + i.ah_size + len(inner)
        if total_length > 0xFFFF:
            raise ValueError(f"{len(inner)}-byte inner packet does not fit an IPv4 packet")
        # TOS, flags and fragment offset are 0 in the packet as in the ICV;
        # TTL and checksum are zeroed for the ICV (RFC 4302 3.3.3.1.1.1).
        zeroed = _IPV4_HEADER.pack(
            0x45, 0, total_length, identification, 0, 0, IPPROTO_AH, 0,
            self._source, self._destination,
        )
        ah = _AH_FIXED.pack(header_type, i.payload_len, 0, self.spi, sequence_number)
        icv = i.icv(zeroed, ah, i.zero_icv, inner)
        header = bytearray(zeroed)
        header[8] = OUTER_TTL
        header[10:12] = ipv4_checksum(bytes(header)).to_bytes(2, "big")
        self.sequence_number = sequence_number
        self.packets += 1
        self.bytes += len(inner)
        return bytes(header) + ah + icv + inner


def fragment(packet: bytes, mtu: int) -> list[bytes]:
    """RFC 791 fragments, each at most `mtu` octets, of an outer packet that
    `OutboundAh` built (20-octet header, DF clear).

    RFC 4302 3.3.4: fragmentation happens after AH processing and the
    receiver reassembles before it; the fields it changes (flags, fragment
    offset, total length per fragment, checksum) are back to what the ICV
    covers once the datagram is whole again.
    """
    if len(packet) <= mtu:
        return [packet]
    step = (mtu - _IPV4_HEADER_SIZE) & ~7  # offsets count 8-octet units
    if step <= 0:
        raise ValueError(f"MTU {mtu} cannot carry a fragment")
    payload = memoryview(packet)[_IPV4_HEADER_SIZE:]
    fragments = []
    for offset in range(0, len(payload), step):
        part = payload[offset : offset + step]
        more = 0x2000 if offset + step < len(payload) else 0  # More Fragments
        header = bytearray(packet[:_IPV4_HEADER_SIZE])
        header[2:4] = (_IPV4_HEADER_SIZE + len(part)).to_bytes(2, "big")
        header[6:8] = (more | offset // 8).to_bytes(2, "big")
        header[10:12] = b"\0\0"
        header[10:12] = ipv4_checksum(bytes(header)).to_bytes(2, "big")
        fragments.append(bytes(header) + part)
    return fragments


class InboundAh:
    """The receiving half of an AH SA (RFC 4302 3.4) from `peer` to `local`."""

    def __init__(
        self,
        keys: EspKeys,
        local: str,
        peer: str,
        *,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
    ) -> None:
        self._window = ReplayWindow(replay_window)
        self._i = _Integrity(keys)
        self._local = _outer_address(local)
        self._peer = _outer_address(peer)
        self.spi = keys.spi
        self.packets = 0
        self.bytes = 0  # inner bytes delivered

    def decapsulate(self, packet: bytes) -> bytes:
        """Return the inner IP packet of `packet`, an outer IPv4 packet with AH.

        Raises AhError when the packet must be dropped.  The SPI is not
        checked here: the caller found this SA by it.
        """
        i = self._i
        size = len(packet)
        if size < _IPV4_HEADER_SIZE or packet[0] >> 4 != 4:
            raise AhError(DropReason.MALFORMED, "not an IPv4 packet")
        header_size = (packet[0] & 0x0F) * 4
        if header_size < _IPV4_HEADER_SIZE or size < header_size + i.ah_size:
            raise AhError(DropReason.MALFORMED, f"{size} bytes is too short")
        if int.from_bytes(packet[2:4], "big") != size:
            raise AhError(DropReason.MALFORMED, "total length is not the packet's length")
        if packet[9] != IPPROTO_AH:
            raise AhError(DropReason.MALFORMED, f"protocol {packet[9]} is not AH")
        if packet[12:16] != self._peer or packet[16:20] != self._local:
            raise AhError(DropReason.POLICY, "outer addresses are not the SA's")
        ah_end = header_size + i.ah_size
        next_header, payload_len, _, _, sequence_number = _AH_FIXED.unpack_from(
            packet, header_size
        )
        if payload_len != i.payload_len:
            raise AhError(DropReason.MALFORMED, f"payload length {payload_len} for this ICV")
        refusal = self._window.refusal(sequence_number)
        if refusal is not None:
            raise AhError(DropReason.REPLAY, refusal)
        # The outer header as the sender saw it, mutable fields zeroed:
        # keep Version/IHL, Total Length, Identification, Protocol, addresses.
        zeroed = packet[0:1] + b"\0" + packet[2:6] + b"\0\0\0" + packet[9:10] + b"\0\0"
        zeroed += packet[12:20]
        if header_size > _IPV4_HEADER_SIZE:
            zeroed += _zero_mutable_options(packet[_IPV4_HEADER_SIZE:header_size])
        icv_start = header_size + _AH_FIXED_SIZE
        expected = i.icv(
            zeroed, packet[header_size:icv_start], i.zero_icv, packet[ah_end:]
        )
        if not _constant_time.compare_digest(expected, packet[icv_start:ah_end]):
            raise AhError(DropReason.AUTH_FAILED, "ICV mismatch")
        # RFC 4302 3.4.3: the window moves only for authenticated packets.
        self._window.accept(sequence_number)
        inner = packet[ah_end:]
        refusal = tunnel_inner_refusal(next_header, inner)
        if refusal is not None:
            raise AhError(DropReason.MALFORMED, refusal)
        self.packets += 1
        self.bytes += len(inner)
        return inner
