"""AH tunnel mode over IPv4 (RFC 4302): known answer, mutable fields, drop reasons."""

from __future__ import annotations

import hashlib
import hmac as stdlib_hmac
import os
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_esp import Keys  # the same SA parameters as ESP's tests use

from ipsecgw.dataplane.ah import AhError, InboundAh, OutboundAh, fragment, ipv4_checksum
from ipsecgw.dataplane.common import SEQUENCE_MAX, DropReason, SequenceExhausted
from ipsecgw.dataplane.esp import INTEGRITIES

LOCAL, PEER = "192.0.2.1", "192.0.2.2"
SPI = b"\x51\x00\x00\x07"


def keys(integrity: str = "hmac-sha1-96", spi: bytes = SPI) -> Keys:
    return Keys(spi, "null", b"", integrity, os.urandom(INTEGRITIES[integrity][1]))


def ipv4_packet(payload: bytes = b"ping" * 10, src: str = "10.98.1.1",
                dst: str = "10.98.2.1") -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, 1, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header + payload


def ipv6_packet(payload: bytes = b"six") -> bytes:
    return (struct.pack("!IHBB", 6 << 28, len(payload), 17, 64)
            + socket.inet_pton(socket.AF_INET6, "2001:db8:1::1")
            + socket.inet_pton(socket.AF_INET6, "2001:db8:2::1") + payload)


def pair(integrity: str = "hmac-sha1-96") -> tuple[OutboundAh, InboundAh]:
    k = keys(integrity)
    return OutboundAh(k, PEER, LOCAL), InboundAh(k, LOCAL, PEER)


def checksum_by_hand(header: bytes) -> int:
    """RFC 1071 one's complement sum, written independently of the module's."""
    total = 0
    for i in range(0, len(header), 2):
        if i == 10:
            continue  # the checksum field itself
        total += header[i] << 8 | header[i + 1]
        while total > 0xFFFF:
            total = (total & 0xFFFF) + 1
    return 0xFFFF - total


# Known answer


def test_known_answer_sha1() -> None:
    """One packet with fixed key, SPI and Identification, checked octet by
    octet against a header built by hand and an ICV computed with the
    standard library over the RFC 4302 3.3.3.1 zeroed header."""
    key = bytes(range(1, 21))
    k = Keys(b"\x00\x00\x10\x01", "null", b"", "hmac-sha1-96", key)
    inner = ipv4_packet(b"known answer")  # 32 octets
    out = OutboundAh(k, "192.0.2.1", "192.0.2.2", random_bytes=lambda n: b"\x12\x33"[:n])
    packet = out.encapsulate(inner)

    zeroed_header = bytes.fromhex(
        "45 00 004c"  # version 4, IHL 5, TOS zeroed, total length 20 + 24 + 32 = 76
        "1234 0000"  # Identification 0x1233 + 1; flags and offset zeroed
        "00 33 0000"  # TTL zeroed, protocol 51, checksum zeroed
        "c0000201 c0000202"
    )
    ah_without_icv = bytes.fromhex(
        "04 04 0000"  # Next Header IPv4, Payload Len (24 / 4) - 2 = 4, Reserved
        "00001001 00000001"  # SPI, sequence number 1
    )
    icv = stdlib_hmac.new(
        key, zeroed_header + ah_without_icv + bytes(12) + inner, hashlib.sha1
    ).digest()[:12]
    header = bytearray(zeroed_header)
    header[8] = 64  # TTL
    header[10:12] = checksum_by_hand(bytes(header)).to_bytes(2, "big")
    assert packet == bytes(header) + ah_without_icv + icv + inner
    assert len(packet) == 76
    assert InboundAh(k, "192.0.2.2", "192.0.2.1").decapsulate(packet) == inner


def test_known_answer_md5() -> None:
    key = b"\x0b" * 16
    k = Keys(b"\x00\x00\x20\x02", "null", b"", "hmac-md5-96", key)
    inner = ipv6_packet(b"md5")
    out = OutboundAh(k, "198.51.100.7", "203.0.113.9", random_bytes=lambda n: b"\x00\x00"[:n])
    out.encapsulate(inner)
    packet = out.encapsulate(inner)  # the second: sequence 2, Identification 2
    total = 20 + 24 + len(inner)
    zeroed = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 2, 0, 0, 51, 0,
                         bytes([198, 51, 100, 7]), bytes([203, 0, 113, 9]))
    ah = bytes([41, 4, 0, 0]) + k.spi + (2).to_bytes(4, "big")
    icv = stdlib_hmac.new(key, zeroed + ah + bytes(12) + inner, hashlib.md5).digest()[:12]
    assert packet[20:] == ah + icv + inner
    assert packet[:8] == zeroed[:8] and packet[9:10] == b"\x33" and packet[12:20] == zeroed[12:]


# Round trips and the outer header


@pytest.mark.parametrize("integrity", ["hmac-md5-96", "hmac-sha1-96", "hmac-sha256-128"])
@pytest.mark.parametrize("inner", [ipv4_packet(), ipv6_packet(), ipv4_packet(bytes(1400))])
def test_round_trip(integrity: str, inner: bytes) -> None:
    out, inbound = pair(integrity)
    for sequence_number in (1, 2, 3):
        packet = out.encapsulate(inner)
        icv_size = INTEGRITIES[integrity][2]
        assert packet[9] == 51 and packet[8] == 64
        assert int.from_bytes(packet[2:4], "big") == len(packet) == 20 + 12 + icv_size + len(inner)
        assert packet[12:16] == socket.inet_aton(PEER) and packet[16:20] == socket.inet_aton(LOCAL)
        assert int.from_bytes(packet[10:12], "big") == checksum_by_hand(packet[:20])
        assert packet[21] == (12 + icv_size) // 4 - 2
        assert packet[24:28] == SPI
        assert int.from_bytes(packet[28:32], "big") == sequence_number
        assert packet.endswith(inner)  # AH does not encrypt
        assert inbound.decapsulate(packet) == inner
    assert (out.packets, out.bytes, out.sequence_number) == (3, 3 * len(inner), 3)
    assert (inbound.packets, inbound.bytes) == (3, 3 * len(inner))


def test_identification_is_never_zero_and_advances() -> None:
    k = keys()
    out = OutboundAh(k, PEER, LOCAL, random_bytes=lambda n: b"\xff\xfe"[:n])
    ids = [int.from_bytes(out.encapsulate(ipv4_packet())[4:6], "big") for _ in range(3)]
    assert ids == [0xFFFF, 1, 2]
    assert ipv4_checksum(bytes(20)) == 0xFFFF


# Mutable fields change in transit; immutable ones may not


def _with_checksum(packet: bytes) -> bytes:
    """What a router does after changing a header field: fix the checksum."""
    header = bytearray(packet[:20])
    header[10:12] = b"\0\0"
    header[10:12] = ipv4_checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header) + packet[20:]


def _set(packet: bytes, offset: int, value: bytes) -> bytes:
    return packet[:offset] + value + packet[offset + len(value):]


@pytest.mark.parametrize(
    ("offset", "value"),
    [
        (1, b"\xb8"),  # DSCP EF
        (1, b"\x03"),  # ECN CE (congestion marked on the way)
        (6, b"\x40\x00"),  # DF set by a router
        (6, b"\x1f\xff"),  # flags and fragment offset, all ones
        (8, b"\x01"),  # TTL decremented down to 1
        (10, b"\xde\xad"),  # checksum (wrong, even: it is not covered)
    ],
)
def test_mutable_field_changed_in_transit_still_verifies(offset: int, value: bytes) -> None:
    out, inbound = pair()
    inner = ipv4_packet()
    packet = out.encapsulate(inner)
    changed = _set(packet, offset, value)
    if offset != 10:
        changed = _with_checksum(changed)
    assert changed != packet
    assert inbound.decapsulate(changed) == inner


def test_every_immutable_octet_is_covered() -> None:
    """Changing any octet outside the mutable fields fails (each in a fresh SA
    so that replay does not interfere)."""
    k = keys()
    packet = OutboundAh(k, PEER, LOCAL).encapsulate(ipv4_packet(b"payload!"))
    mutable = {1, 6, 7, 8, 10, 11}
    for offset in range(len(packet)):
        if offset in mutable:
            continue
        flip = 0x02 if offset == 31 else 0x01  # sequence number 0 would be a replay
        changed = _set(packet, offset, bytes([packet[offset] ^ flip]))
        source, destination = changed[12:16], changed[16:20]
        # An SA that expects exactly these addresses: what is left is the ICV.
        inbound = InboundAh(k, socket.inet_ntoa(destination), socket.inet_ntoa(source))
        with pytest.raises(AhError) as error:
            inbound.decapsulate(changed)
        if offset in (0, 2, 3, 9, 21):  # version/IHL, length, protocol, Payload Len
            assert error.value.reason is DropReason.MALFORMED, offset
        else:
            assert error.value.reason is DropReason.AUTH_FAILED, offset
        assert inbound.packets == 0


def test_longer_packet_with_matching_total_length_fails() -> None:
    out, inbound = pair()
    packet = out.encapsulate(ipv4_packet())
    longer = _set(packet, 2, (len(packet) + 1).to_bytes(2, "big")) + b"x"
    with pytest.raises(AhError) as error:
        inbound.decapsulate(longer)
    assert error.value.reason is DropReason.AUTH_FAILED


@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
@settings(max_examples=200, deadline=None)
def test_any_payload_byte_changed_fails(position: int, flip: int) -> None:
    k = keys("hmac-md5-96")
    inner = ipv4_packet(os.urandom(64))
    packet = OutboundAh(k, PEER, LOCAL).encapsulate(inner)
    offset = 44 + position % len(inner)
    changed = _set(packet, offset, bytes([packet[offset] ^ flip]))
    with pytest.raises(AhError) as error:
        InboundAh(k, LOCAL, PEER).decapsulate(changed)
    assert error.value.reason is DropReason.AUTH_FAILED


# IPv4 options (RFC 4302 appendix A.1)


def _with_options(k: Keys, inner: bytes, options: bytes, sequence_number: int = 1) -> bytes:
    """A packet with IPv4 options as another implementation would send it,
    signed here with the standard library over the zeroed header."""
    header_size = 20 + len(options)
    total = header_size + 24 + len(inner)
    base = struct.pack("!BBHHHBBH4s4s", 0x40 | header_size // 4, 0, total, 77, 0, 0, 51, 0,
                       socket.inet_aton(PEER), socket.inet_aton(LOCAL))
    zeroed_options = bytearray(options)
    offset = 0
    while offset < len(options) and options[offset] != 0:
        if options[offset] == 1:
            offset += 1
            continue
        length = options[offset + 1]
        if options[offset] not in (130, 133, 134, 148, 149):
            zeroed_options[offset:offset + length] = bytes(length)
        offset += length
    ah = bytes([4, 4, 0, 0]) + k.spi + sequence_number.to_bytes(4, "big")
    icv = stdlib_hmac.new(k.integrity_key, base + bytes(zeroed_options) + ah + bytes(12) + inner,
                          hashlib.sha1).digest()[:12]
    return _set(base, 8, b"\x3f") + options + ah + icv + inner


ROUTER_ALERT = bytes([148, 4, 0, 0])  # offset 20
RECORD_ROUTE = bytes([7, 7, 4]) + bytes(4)  # offset 24, one empty slot
UNLISTED = bytes([222, 3, 5])  # offset 31, an option RFC 4302 does not list
OPTIONS = ROUTER_ALERT + RECORD_ROUTE + UNLISTED + bytes([1, 1])  # NOPs pad to 16 octets


@pytest.mark.parametrize(
    ("offset", "value", "verifies"),
    [
        (26, bytes([8, 10, 0, 0, 1]), True),  # a router records itself in Record Route
        (33, b"\x06", True),  # unlisted options are zeroed ...
        (31, b"\xdf", True),  # ... as a whole, type and length included
        (22, b"\x00\x01", False),  # the Router Alert value is immutable
        (34, b"\x00", False),  # so is a No Operation (becoming End of List)
    ],
)
def test_options_immutable_covered_mutable_zeroed(offset: int, value: bytes,
                                                   verifies: bool) -> None:
    k = keys()
    inner = ipv4_packet()
    packet = _with_options(k, inner, OPTIONS)
    assert InboundAh(k, LOCAL, PEER).decapsulate(packet) == inner
    changed = _set(packet, offset, value)
    if verifies:
        assert InboundAh(k, LOCAL, PEER).decapsulate(changed) == inner
    else:
        with pytest.raises(AhError) as error:
            InboundAh(k, LOCAL, PEER).decapsulate(changed)
        assert error.value.reason is DropReason.AUTH_FAILED


def test_bad_option_length_is_malformed() -> None:
    k = keys()
    packet = _with_options(k, ipv4_packet(), bytes([7, 9, 4, 0]))  # length beyond the options
    with pytest.raises(AhError) as error:
        InboundAh(k, LOCAL, PEER).decapsulate(packet)
    assert error.value.reason is DropReason.MALFORMED


# Replay, addresses, malformed packets


def test_replay_and_window() -> None:
    out, inbound = pair()
    packets = [out.encapsulate(ipv4_packet()) for _ in range(70)]
    inbound.decapsulate(packets[0])
    with pytest.raises(AhError) as error:
        inbound.decapsulate(packets[0])
    assert error.value.reason is DropReason.REPLAY
    inbound.decapsulate(packets[69])  # sequence 70: number 1..6 now left of the window
    inbound.decapsulate(packets[10])  # reordered but inside the window
    for old in (packets[1], packets[10]):
        with pytest.raises(AhError) as error:
            inbound.decapsulate(old)
        assert error.value.reason is DropReason.REPLAY
    assert inbound.packets == 3


def test_forged_packet_does_not_move_the_window() -> None:
    out, inbound = pair()
    genuine = out.encapsulate(ipv4_packet())
    forged = _set(genuine, 28, (1000).to_bytes(4, "big"))  # far ahead, ICV now wrong
    with pytest.raises(AhError) as error:
        inbound.decapsulate(forged)
    assert error.value.reason is DropReason.AUTH_FAILED
    assert inbound.decapsulate(genuine) == ipv4_packet()


def test_wrong_spi_fails_authentication() -> None:
    """The SA is found by SPI before decapsulate; a packet made under another
    SPI with the same key still does not verify under this one."""
    k = keys()
    other = Keys(b"\x51\x00\x00\x08", "null", b"", k.integrity, k.integrity_key)
    packet = OutboundAh(other, PEER, LOCAL).encapsulate(ipv4_packet())
    with pytest.raises(AhError) as error:
        InboundAh(k, LOCAL, PEER).decapsulate(_set(packet, 24, SPI))
    assert error.value.reason is DropReason.AUTH_FAILED


def test_outer_addresses_must_be_the_sas() -> None:
    k = keys()
    packet = OutboundAh(k, PEER, LOCAL).encapsulate(ipv4_packet())
    for inbound in (InboundAh(k, LOCAL, "192.0.2.99"), InboundAh(k, "192.0.2.98", PEER)):
        with pytest.raises(AhError) as error:
            inbound.decapsulate(packet)
        assert error.value.reason is DropReason.POLICY


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p[:43],  # shorter than the header and AH
        lambda p: p[:-1],  # total length says more
        lambda p: b"\x65" + p[1:],  # IP version 6
        lambda p: b"\x44" + p[1:],  # IHL below 5
        lambda p: _set(p, 9, b"\x32"),  # protocol ESP
        lambda p: _set(p, 21, b"\x05"),  # Payload Len of a 16-octet ICV
        lambda p: b"",
    ],
)
def test_malformed(mangle: object) -> None:
    out, inbound = pair()
    packet = mangle(out.encapsulate(ipv4_packet()))  # type: ignore[operator]
    with pytest.raises(AhError) as error:
        inbound.decapsulate(packet)
    assert error.value.reason is DropReason.MALFORMED


@pytest.mark.parametrize(("inner", "next_header"), [(ipv4_packet(), 17), (ipv4_packet(), 41),
                                                    (ipv6_packet(), 4)])
def test_bad_next_header_after_authentication(inner: bytes, next_header: int) -> None:
    k = keys()
    base = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 44 + len(inner), 9, 0, 0, 51, 0,
                       socket.inet_aton(PEER), socket.inet_aton(LOCAL))
    ah = bytes([next_header, 4, 0, 0]) + k.spi + (1).to_bytes(4, "big")
    icv = stdlib_hmac.new(k.integrity_key, base + ah + bytes(12) + inner,
                          hashlib.sha1).digest()[:12]
    with pytest.raises(AhError) as error:
        InboundAh(k, LOCAL, PEER).decapsulate(base + ah + icv + inner)
    assert error.value.reason is DropReason.MALFORMED


# Fragmentation after AH (RFC 4302 3.3.4)


def reassemble(fragments: list[bytes]) -> bytes:
    """RFC 791 reassembly as a receiver's kernel does it, written here."""
    parts = {}
    for piece in fragments:
        flags_offset = int.from_bytes(piece[6:8], "big")
        parts[(flags_offset & 0x1FFF) * 8] = piece[20:]
    payload = b"".join(parts[offset] for offset in sorted(parts))
    header = bytearray(fragments[0][:20])
    header[2:4] = (20 + len(payload)).to_bytes(2, "big")
    header[6:8] = b"\0\0"
    return bytes(header) + payload


@pytest.mark.parametrize("mtu", [68, 576, 1000, 1443])
def test_fragments_reassemble_to_a_packet_that_verifies(mtu: int) -> None:
    out, inbound = pair()
    inner = ipv4_packet(os.urandom(1400 - 20))
    packet = out.encapsulate(inner)
    fragments = fragment(packet, mtu)
    assert len(fragments) > 1
    offsets = []
    for n, piece in enumerate(fragments):
        assert len(piece) <= mtu and int.from_bytes(piece[2:4], "big") == len(piece)
        assert piece[4:6] == packet[4:6]  # one Identification for the datagram
        assert int.from_bytes(piece[10:12], "big") == checksum_by_hand(piece[:20])
        flags_offset = int.from_bytes(piece[6:8], "big")
        assert bool(flags_offset & 0x2000) == (n < len(fragments) - 1)  # More Fragments
        offsets.append((flags_offset & 0x1FFF) * 8)
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert all(len(piece[20:]) % 8 == 0 for piece in fragments[:-1])
    whole = reassemble(fragments)  # the first fragment's checksum aside, the original
    assert whole[:10] + whole[12:] == packet[:10] + packet[12:]
    assert inbound.decapsulate(reassemble(fragments)) == inner


def test_fragment_leaves_small_packets_alone() -> None:
    out, _ = pair()
    packet = out.encapsulate(ipv4_packet())
    assert fragment(packet, len(packet)) == [packet]
    with pytest.raises(ValueError, match="cannot carry"):
        fragment(packet, 27)


# SA parameters


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Keys(SPI, "aes128", bytes(16), "hmac-sha1-96", bytes(20)), "does not encrypt"),
        (Keys(SPI, "null", b"", None, b""), "needs an integrity"),
        (Keys(SPI, "null", b"", "hmac-sha1-96", bytes(16)), "20-byte key"),
        (Keys(SPI, "null", b"", "hmac-whirlpool", bytes(16)), "unsupported AH integrity"),
        (Keys(b"\x01", "null", b"", "hmac-sha1-96", bytes(20)), "SPI must be 4 bytes"),
    ],
)
def test_bad_keys(bad: Keys, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OutboundAh(bad, PEER, LOCAL)
    with pytest.raises(ValueError, match=message):
        InboundAh(bad, LOCAL, PEER)


def test_ipv6_outer_addresses_are_refused() -> None:
    with pytest.raises(ValueError, match="IPv6 outer"):
        OutboundAh(keys(), "2001:db8::1", "2001:db8::2")
    with pytest.raises(ValueError, match="IPv6 outer"):
        InboundAh(keys(), LOCAL, "2001:db8::2")


def test_replay_window_minimum() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        InboundAh(keys(), LOCAL, PEER, replay_window=16)


def test_not_an_ip_packet_or_too_big_is_refused_on_output() -> None:
    out, _ = pair()
    with pytest.raises(ValueError, match="not an IP packet"):
        out.encapsulate(b"\x00" * 40)
    with pytest.raises(ValueError, match="does not fit"):
        out.encapsulate(ipv4_packet(bytes(65535 - 44 - 20 + 1)))
    assert out.sequence_number == 0


def test_sequence_numbers_run_out() -> None:
    out, _ = pair()
    assert not out.rekey_needed
    out.sequence_number = SEQUENCE_MAX - 1
    assert out.rekey_needed
    packet = out.encapsulate(ipv4_packet())
    assert int.from_bytes(packet[28:32], "big") == SEQUENCE_MAX
    with pytest.raises(SequenceExhausted):
        out.encapsulate(ipv4_packet())
    assert out.sequence_number == SEQUENCE_MAX


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_hostile_input_only_raises_ah_error(data: bytes) -> None:
    _, inbound = pair()
    candidates = [data]
    if len(data) >= 20:
        # Make it look like an IPv4 AH packet to the SA so that deeper code runs.
        head = bytes([0x40 | max(5, data[0] & 0x0F)]) + data[1:2]
        candidates.append(head + len(data).to_bytes(2, "big") + data[4:9] + b"\x33"
                          + data[10:12] + socket.inet_aton(PEER) + socket.inet_aton(LOCAL)
                          + data[20:])
    for candidate in candidates:
        try:
            inbound.decapsulate(candidate)
        except AhError:
            pass
