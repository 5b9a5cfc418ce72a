"""ISAKMP codec: known bytes, round trips per payload, validation errors."""

from __future__ import annotations

import hashlib
import ipaddress
import struct

import pytest
from payload_factories import main_mode_first_message, phase1_sa, quick_mode_sa

from ipsecgw.isakmp import (
    Attribute,
    BadProposalSyntax,
    Certificate,
    CertificateRequest,
    DecodeError,
    Delete,
    DoiNotSupported,
    ExchangeType,
    Flags,
    Hash,
    Identification,
    IdType,
    InvalidExchangeType,
    InvalidFlags,
    InvalidMajorVersion,
    InvalidMessageId,
    InvalidMinorVersion,
    InvalidPayloadType,
    InvalidSpi,
    KeyExchange,
    MalformedIdentification,
    Message,
    NatD,
    NatOA,
    Nonce,
    Notification,
    NotifyType,
    Payload,
    PayloadMalformed,
    PayloadType,
    Proposal,
    ProtocolId,
    SecurityAssociation,
    Signature,
    SituationNotSupported,
    Transform,
    UnknownPayload,
    VendorId,
    decode_attributes,
    decode_payloads,
    encode_attributes,
    encode_payloads,
)
from ipsecgw.isakmp import constants as c

ICKY = bytes.fromhex("0011223344556677")
RCKY = bytes.fromhex("8899aabbccddeeff")


def header(
    first: int, exchange: int, flags: int, msgid: int, length: int, version: int = 0x10
) -> bytes:
    return ICKY + RCKY + struct.pack("!BBBBII", first, version, exchange, flags, msgid, length)


def generic(next_payload: int, body: bytes) -> bytes:
    return struct.pack("!BBH", next_payload, 0, 4 + len(body)) + body


def message_bytes(
    first: int, body: bytes, exchange: int = 2, flags: int = 0, msgid: int = 0
) -> bytes:
    return header(first, exchange, flags, msgid, 28 + len(body)) + body


def msg(
    *payloads: Payload, exchange: int = ExchangeType.IDENTITY_PROTECTION, msgid: int = 0
) -> Message:
    return Message(ICKY, RCKY, exchange, message_id=msgid, payloads=payloads)


# ------------------------------------------------------------------ known bytes


def test_main_mode_sa_known_bytes() -> None:
    """An SA built byte by byte from the RFC 2408 diagrams decodes to the dataclasses."""
    attrs = (
        struct.pack("!HH", 0x8000 | 1, 7)  # encryption AES-CBC (TV)
        + struct.pack("!HH", 0x8000 | 14, 128)  # key length 128 (TV)
        + struct.pack("!HH", 12, 4)
        + (86400).to_bytes(4, "big")  # life duration (TLV)
    )
    transform = struct.pack("!BBH", 1, 1, 0) + attrs
    proposal = struct.pack("!BBBB", 1, 1, 0, 1) + generic(0, transform)
    sa = struct.pack("!II", 1, 1) + generic(0, proposal)
    vid = c.VENDOR_ID_DPD
    body = generic(PayloadType.VENDOR_ID, sa) + generic(0, vid)
    data = message_bytes(PayloadType.SA, body)

    decoded = Message.decode(data)

    assert decoded == Message(
        ICKY,
        RCKY,
        ExchangeType.IDENTITY_PROTECTION,
        payloads=(
            SecurityAssociation(
                1,
                1,
                (
                    Proposal(
                        1,
                        ProtocolId.ISAKMP,
                        b"",
                        (
                            Transform(
                                1,
                                1,
                                (
                                    Attribute(1, 7, True),
                                    Attribute(14, 128, True),
                                    Attribute(12, b"\x00\x01\x51\x80", False),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
            VendorId(vid),
        ),
    )
    assert decoded.encode() == data
    assert decoded.payloads[0].proposals[0].transforms[0].attributes[2].as_int() == 86400  # type: ignore[union-attr]


def test_header_fields_encode_at_rfc_offsets() -> None:
    m = Message(
        ICKY,
        RCKY,
        ExchangeType.QUICK_MODE,
        Flags.ENCRYPTION | Flags.COMMIT,
        0x01020304,
        encrypted_body=b"\xaa" * 16,
        first_payload=PayloadType.HASH,
    )
    data = m.encode()
    assert data[:8] == ICKY and data[8:16] == RCKY
    assert data[16:20] == bytes([8, 0x10, 32, 3])
    assert data[20:24] == bytes.fromhex("01020304")
    assert data[24:28] == (44).to_bytes(4, "big")
    assert Message.decode(data) == m


# ------------------------------------------------------------- round trips


ROUND_TRIP_PAYLOADS: list[Payload] = [
    phase1_sa(4),
    quick_mode_sa(),
    SecurityAssociation(
        proposals=(
            Proposal(
                1, ProtocolId.IPSEC_AH, b"\x00\x00\x10\x01", (Transform(1, c.AhTransform.SHA),)
            ),
            Proposal(
                1,
                ProtocolId.IPSEC_ESP,
                b"\x00\x00\x10\x02",
                (Transform(1, c.EspTransform.AES_GCM_16),),
            ),
            Proposal(2, ProtocolId.IPCOMP, b"\x12\x34", (Transform(1, c.IpcompTransform.DEFLATE),)),
            Proposal(3, ProtocolId.ISAKMP, bytes(range(16)), (Transform(1, 1),)),
            Proposal(4, 200, b"odd", (Transform(1, 1),)),
        )
    ),
    KeyExchange(bytes(range(256))),
    Identification.ipv4("192.0.2.1"),
    Identification.ipv6("2001:db8::1"),
    Identification.fqdn("vpn.example.com"),
    Identification.user_fqdn("alice@example.com"),
    Identification.subnet("10.98.1.0/24", protocol_id=17, port=500),
    Identification.subnet("2001:db8::/48"),
    Identification.address_range("10.0.0.1", "10.0.0.9"),
    Identification.address_range("2001:db8::1", "2001:db8::ff"),
    Identification.der_asn1_dn(bytes.fromhex("3012311030")),
    Identification(IdType.DER_ASN1_GN, 0, 0, b"\x30\x00"),
    Identification.key_id(b"key-1"),
    Identification(250, 0, 0, b"private use"),
    Certificate(c.CertEncoding.X509_SIGNATURE, b"\x30\x82\x01\x00"),
    Certificate(c.CertEncoding.CRL, b""),
    CertificateRequest(c.CertEncoding.X509_SIGNATURE),
    CertificateRequest(c.CertEncoding.X509_SIGNATURE, b"\x30\x10authority-dn"),
    Hash(b"h" * 20),
    Signature(b"s" * 256),
    Nonce(b"n" * 32),
    Notification(1, ProtocolId.ISAKMP, NotifyType.INITIAL_CONTACT, ICKY + RCKY),
    Notification(
        1,
        ProtocolId.IPSEC_ESP,
        NotifyType.RESPONDER_LIFETIME,
        b"\x01\x02\x03\x04",
        encode_attributes([Attribute.make(1, 1), Attribute.make(2, 3600)]),
    ),
    Notification(1, ProtocolId.ISAKMP, NotifyType.R_U_THERE, ICKY + RCKY, b"\x00\x00\x00\x2a"),
    Notification(1, ProtocolId.ISAKMP, NotifyType.R_U_THERE_ACK, ICKY + RCKY, b"\x00\x00\x00\x2a"),
    Notification(0, 0, NotifyType.INVALID_COOKIE),
    Delete(1, ProtocolId.ISAKMP, 16, (ICKY + RCKY,)),
    Delete(1, ProtocolId.IPSEC_ESP, 4, (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02")),
    Delete(1, ProtocolId.IPSEC_ESP, 4, ()),
    VendorId(c.VENDOR_ID_NAT_T_RFC3947),
    NatD(b"d" * 20),
    NatD(b"d" * 16, draft=True),
    NatOA.address("192.0.2.7"),
    NatOA.address("2001:db8::7", draft=True),
    UnknownPayload(200, b"private"),
    UnknownPayload(128, b""),
]


@pytest.mark.parametrize("payload", ROUND_TRIP_PAYLOADS, ids=lambda p: type(p).__name__)
def test_payload_round_trip(payload: Payload) -> None:
    m = msg(payload, Nonce(b"tail-nonce"))
    data = m.encode()
    assert Message.decode(data) == m
    assert Message.decode(data).encode() == data
    first, body = encode_payloads([payload])
    assert first == payload.payload_type
    assert decode_payloads(first, body) == (payload,)
    # The generic header's length covers header plus body (RFC 2408 3.2).
    assert int.from_bytes(body[2:4], "big") == len(body) == 4 + len(payload.encode_body())


def test_payload_types_on_the_wire() -> None:
    assert NatD(b"x").payload_type == 20 and NatD(b"x", draft=True).payload_type == 130
    assert NatOA(1, b"abcd").payload_type == 21 and NatOA(1, b"abcd", True).payload_type == 131
    data = msg(NatD(b"x" * 16, draft=True)).encode()
    assert data[16] == 130
    assert Message.decode(data).payloads == (NatD(b"x" * 16, draft=True),)


def test_every_payload_in_one_message() -> None:
    m = msg(*ROUND_TRIP_PAYLOADS)
    assert Message.decode(m.encode()) == m


def test_empty_message() -> None:
    m = msg(exchange=ExchangeType.INFORMATIONAL, msgid=5)
    data = m.encode()
    assert len(data) == 28 and data[16] == 0
    assert Message.decode(data) == m


# ------------------------------------------------------------------ attributes


@pytest.mark.parametrize(
    ("value", "tv", "wire"),
    [
        (0, True, "800c0000"),
        (65535, True, "800cffff"),
        (65536, False, "000c0003010000"),
        (86400, False, "000c0003015180"),
        (2**32, False, "000c00050100000000"),
    ],
)
def test_attribute_make_picks_form(value: int, tv: bool, wire: str) -> None:
    attr = Attribute.make(12, value)
    assert attr.tv is tv
    assert attr.as_int() == value
    assert attr.encode().hex() == wire
    assert decode_attributes(bytes.fromhex(wire)) == (attr,)


def test_tlv_with_leading_zeros_is_preserved() -> None:
    """A peer may send a TLV with a small value padded to 4 octets; keep its form."""
    attr = Attribute(12, b"\x00\x00\x0e\x10", False)
    assert attr.as_int() == 3600
    assert decode_attributes(attr.encode()) == (attr,)
    assert Attribute(2, b"", False).as_int() == 0


def test_attribute_order_is_preserved() -> None:
    attrs = (
        Attribute.make(4, 14),
        Attribute.make(1, 7),
        Attribute(12, b"\x00\x00\x70\x80", False),
        Attribute.make(1, 5),
    )
    transform = Transform(1, 1, attrs)
    m = msg(SecurityAssociation(proposals=(Proposal(1, 1, b"", (transform,)),)))
    assert Message.decode(m.encode()) == m


def test_attribute_encode_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Attribute.make(1, -1)
    with pytest.raises(ValueError):
        Attribute(0x8000, 1, True).encode()
    with pytest.raises(ValueError):
        Attribute(1, 70000, True).encode()
    with pytest.raises(ValueError):
        Attribute(1, b"x", True).encode()
    with pytest.raises(ValueError):
        Attribute(1, 5, False).encode()


def test_attribute_past_end_names_offset() -> None:
    with pytest.raises(PayloadMalformed, match="attribute at offset 4 has length 9"):
        decode_attributes(bytes.fromhex("800b0001000c000901020304"))
    with pytest.raises(PayloadMalformed, match="truncated"):
        decode_attributes(bytes.fromhex("800b00"))


# -------------------------------------------------------------- identification


def test_identification_helpers() -> None:
    assert Identification.ipv4("10.0.0.1") == Identification(1, 0, 0, b"\x0a\x00\x00\x01")
    assert Identification.address("10.0.0.1") == Identification.ipv4("10.0.0.1")
    assert Identification.address("::1").id_type == IdType.IPV6_ADDR
    assert Identification.fqdn("a.example").data == b"a.example"
    assert Identification.user_fqdn("u@a.example").id_type == IdType.USER_FQDN
    subnet = Identification.subnet("10.98.1.0/24")
    assert subnet.id_type == IdType.IPV4_ADDR_SUBNET
    assert subnet.data == bytes([10, 98, 1, 0, 255, 255, 255, 0])
    assert Identification.subnet("2001:db8::/32").data[16:] == bytes([255] * 4 + [0] * 12)
    with pytest.raises(ValueError):
        Identification.subnet("10.98.1.1/24")  # host bits: a configuration mistake
    with pytest.raises(ValueError):
        Identification.address_range("10.0.0.1", "::1")


@pytest.mark.parametrize(
    ("identification", "network", "bounds"),
    [
        (Identification.ipv4("10.0.0.1"), "10.0.0.1/32", ("10.0.0.1", "10.0.0.1")),
        (Identification.ipv6("2001:db8::1"), "2001:db8::1/128", ("2001:db8::1", "2001:db8::1")),
        (Identification.subnet("10.98.0.0/16"), "10.98.0.0/16", ("10.98.0.0", "10.98.255.255")),
        (Identification.subnet("0.0.0.0/0"), "0.0.0.0/0", ("0.0.0.0", "255.255.255.255")),
        (
            Identification.subnet("2001:db8::/64"),
            "2001:db8::/64",
            ("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"),
        ),
        # RFC 2407 4.6.2.5: the address is masked; host bits do not widen the subnet.
        (
            Identification(4, 0, 0, bytes([10, 1, 2, 3, 255, 255, 0, 0])),
            "10.1.0.0/16",
            ("10.1.0.0", "10.1.255.255"),
        ),
        (
            Identification.address_range("10.0.0.0", "10.0.0.255"),
            "10.0.0.0/24",
            ("10.0.0.0", "10.0.0.255"),
        ),
        (Identification.address_range("10.0.0.1", "10.0.0.255"), None, ("10.0.0.1", "10.0.0.255")),
        # A netmask with holes and a backwards range describe no address set.
        (Identification(4, 0, 0, bytes([10, 0, 0, 0, 255, 0, 255, 0])), None, None),
        (Identification.address_range("10.0.0.9", "10.0.0.1"), None, None),
        (Identification.fqdn("x.example"), None, None),
    ],
)
def test_identification_to_network(
    identification: Identification, network: str | None, bounds: tuple[str, str] | None
) -> None:
    expected = ipaddress.ip_network(network) if network else None
    assert identification.to_network() == expected
    got = identification.to_address_range()
    assert got == (None if bounds is None else tuple(ipaddress.ip_address(b) for b in bounds))


# ------------------------------------------------------------ encrypted / padding


def test_encrypted_message_is_opaque() -> None:
    body = bytes(range(32))
    data = message_bytes(
        PayloadType.HASH, body, exchange=ExchangeType.QUICK_MODE, flags=Flags.ENCRYPTION, msgid=7
    )
    m = Message.decode(data)
    assert m.payloads == () and m.encrypted_body == body and m.first_payload == PayloadType.HASH
    assert m.encode() == data


def test_decrypted_body_with_padding() -> None:
    first, body = encode_payloads([Hash(b"h" * 20), Delete(1, 3, 4, (b"spi!",))])
    padded = body + bytes(7) + b"\x07"
    with pytest.raises(PayloadMalformed, match="8 octets after the last payload"):
        decode_payloads(first, padded)
    assert decode_payloads(first, padded, allow_padding=True) == (
        Hash(b"h" * 20),
        Delete(1, 3, 4, (b"spi!",)),
    )


def test_datagram_longer_than_length_field_is_truncated_to_it() -> None:
    m = main_mode_first_message(2)
    data = m.encode()
    assert Message.decode(data + b"\x00" * 5) == m


def test_encode_rejects_inconsistent_messages() -> None:
    with pytest.raises(ValueError):
        Message(b"short", RCKY, 2).encode()
    with pytest.raises(ValueError):
        Message(ICKY, RCKY, 32, Flags.ENCRYPTION, 1).encode()  # E flag without body
    with pytest.raises(ValueError):
        Message(ICKY, RCKY, 32, 0, 1, encrypted_body=b"x").encode()
    with pytest.raises(ValueError):
        Message(ICKY, RCKY, 32, Flags.ENCRYPTION, 1, (Hash(b""),), encrypted_body=b"x").encode()
    with pytest.raises(ValueError):
        Message(ICKY, RCKY, 2, message_id=2**32).encode()
    with pytest.raises(ValueError):
        msg(SecurityAssociation()).encode()
    with pytest.raises(ValueError):
        msg(Delete(1, 3, 4, (b"123",))).encode()
    with pytest.raises(ValueError):
        msg(UnknownPayload(130, b"")).encode()
    with pytest.raises(ValueError):
        msg(KeyExchange(bytes(70000))).encode()


def test_find() -> None:
    m = msg(VendorId(b"a"), Nonce(b"n" * 8), VendorId(b"b"))
    assert m.find(Nonce) == Nonce(b"n" * 8)
    assert m.find(KeyExchange) is None
    assert m.find_all(VendorId) == [VendorId(b"a"), VendorId(b"b")]


# ------------------------------------------------------------------ bad input


def assert_rejects(data: bytes, error: type[DecodeError], match: str) -> DecodeError:
    with pytest.raises(error, match=match) as info:
        Message.decode(data)
    return info.value


def test_header_errors_map_to_notify_types() -> None:
    good = message_bytes(0, b"")
    assert Message.decode(good).payloads == ()
    cases: list[tuple[bytes, type[DecodeError], int]] = [
        (good[:27], PayloadMalformed, 16),
        (header(0, 2, 0, 0, 28, version=0x20), InvalidMajorVersion, 5),
        (header(0, 2, 0, 0, 28, version=0x11), InvalidMinorVersion, 6),
        (header(0, 7, 0, 0, 28), InvalidExchangeType, 7),
        (header(0, 0, 0, 0, 28), InvalidExchangeType, 7),
        (header(0, 2, 8, 0, 28), InvalidFlags, 8),
        (header(0, 2, 0x80, 0, 28), InvalidFlags, 8),
        (header(0, 2, 0, 1, 28), InvalidMessageId, 9),
        (header(0, 32, 0, 0, 28), InvalidMessageId, 9),
        (header(0, 2, 0, 0, 27), PayloadMalformed, 16),
        (header(0, 2, 0, 0, 29), PayloadMalformed, 16),
    ]
    for data, error, notify in cases:
        with pytest.raises(error) as info:
            Message.decode(data)
        assert info.value.notify_type == notify
        assert "ISAKMP header" in str(info.value)


def test_payload_chain_errors() -> None:
    nonce = generic(0, b"n" * 8)
    assert_rejects(
        message_bytes(PayloadType.NONCE, nonce[:-1]),
        PayloadMalformed,
        "NONCE payload at offset 28: payload length 12 invalid",
    )
    # Length field below the generic header size, including zero.
    for bad_length in (0, 3):
        body = struct.pack("!BBH", 0, 0, bad_length) + b"xxxx"
        assert_rejects(
            message_bytes(PayloadType.NONCE, body),
            PayloadMalformed,
            f"payload length {bad_length} invalid",
        )
    assert_rejects(
        message_bytes(PayloadType.NONCE, b"\x00\x01\x00\x08abcd"),
        PayloadMalformed,
        "NONCE payload at offset 28: reserved octet is 1",
    )
    assert_rejects(
        message_bytes(PayloadType.NONCE, nonce + b"junk"),
        PayloadMalformed,
        "4 octets after the last payload at offset 40",
    )
    # The chain says another payload follows but the message ends.
    assert_rejects(
        message_bytes(PayloadType.NONCE, generic(PayloadType.HASH, b"n" * 8)),
        PayloadMalformed,
        "HASH payload at offset 40: truncated",
    )
    err = assert_rejects(
        message_bytes(PayloadType.NONCE, generic(17, b"n" * 8) + nonce),
        InvalidPayloadType,
        "payload at offset 40 has invalid type 17",
    )
    assert err.offset == 40 and err.notify_type == 1
    # Proposal and Transform exist only inside an SA.
    assert_rejects(message_bytes(PayloadType.PROPOSAL, nonce), InvalidPayloadType, "type 2")
    assert_rejects(message_bytes(PayloadType.TRANSFORM, nonce), InvalidPayloadType, "type 3")


def sa_bytes(proposals: bytes, doi: int = 1, situation: int = 1) -> bytes:
    return message_bytes(PayloadType.SA, generic(0, struct.pack("!II", doi, situation) + proposals))


def proposal_bytes(
    next_payload: int, transforms: bytes, count: int = 1, protocol: int = 1, spi: bytes = b""
) -> bytes:
    return generic(
        next_payload, struct.pack("!BBBB", 1, protocol, len(spi), count) + spi + transforms
    )


TRANSFORM = generic(0, struct.pack("!BBH", 1, 1, 0) + struct.pack("!HH", 0x8001, 7))


def test_sa_nesting_errors() -> None:
    assert Message.decode(sa_bytes(proposal_bytes(0, TRANSFORM)))
    assert_rejects(sa_bytes(proposal_bytes(0, TRANSFORM), doi=2), DoiNotSupported, "DOI 2")
    for situation in (3, 8, 0x80000001):
        assert_rejects(
            sa_bytes(proposal_bytes(0, TRANSFORM), situation=situation),
            SituationNotSupported,
            f"situation {situation:#x}",
        )
    assert_rejects(sa_bytes(b""), BadProposalSyntax, "Proposal at offset 40 truncated")
    assert_rejects(
        sa_bytes(proposal_bytes(0, TRANSFORM, count=2)),
        BadProposalSyntax,
        "1 transforms for a count of 2",
    )
    assert_rejects(
        sa_bytes(proposal_bytes(0, TRANSFORM + TRANSFORM, count=2)),
        BadProposalSyntax,
        "1 transforms for a count of 2, 12 octets left over",
    )
    two = generic(3, TRANSFORM[4:]) + TRANSFORM
    assert Message.decode(sa_bytes(proposal_bytes(0, two, count=2)))
    assert_rejects(
        sa_bytes(proposal_bytes(0, two, count=1)),
        BadProposalSyntax,
        "transform chain does not match its count 1",
    )
    assert_rejects(sa_bytes(proposal_bytes(0, b"", count=0)), BadProposalSyntax, "no transforms")
    assert_rejects(
        sa_bytes(proposal_bytes(2, TRANSFORM)), BadProposalSyntax, "Proposal at offset 60 truncated"
    )
    assert_rejects(
        sa_bytes(proposal_bytes(5, TRANSFORM)),
        BadProposalSyntax,
        "proposal chain has next payload 5",
    )
    assert_rejects(
        sa_bytes(proposal_bytes(0, TRANSFORM) + b"xx"),
        BadProposalSyntax,
        "2 octets after the last proposal",
    )
    # A transform whose next payload is not Transform (3) or None.
    assert_rejects(
        sa_bytes(proposal_bytes(0, generic(2, TRANSFORM[4:]) + TRANSFORM, count=2)),
        BadProposalSyntax,
        "next payload 2",
    )
    bad_reserved = generic(0, struct.pack("!BBH", 1, 1, 1))
    assert_rejects(sa_bytes(proposal_bytes(0, bad_reserved)), BadProposalSyntax, "RESERVED2")
    assert_rejects(
        sa_bytes(proposal_bytes(0, TRANSFORM[:4] + TRANSFORM[4:6])),
        BadProposalSyntax,
        "Transform at offset 48 truncated",
    )
    long_attr = generic(0, struct.pack("!BBH", 1, 1, 0) + struct.pack("!HH", 12, 8) + b"1234")
    assert_rejects(
        sa_bytes(proposal_bytes(0, long_attr)),
        PayloadMalformed,
        "Transform at offset 48: attribute at offset 56 has length 8",
    )
    assert_rejects(
        sa_bytes(proposal_bytes(0, TRANSFORM, protocol=3, spi=b"123")),
        InvalidSpi,
        "SPI size 3 invalid for protocol 3",
    )
    assert_rejects(
        sa_bytes(proposal_bytes(0, TRANSFORM, protocol=1, spi=b"12345678")),
        InvalidSpi,
        "SPI size 8",
    )
    spi_too_big = generic(0, struct.pack("!BBBB", 1, 9, 200, 1) + b"abc")
    assert_rejects(sa_bytes(spi_too_big), BadProposalSyntax, "SPI size 200 past the end")
    assert_rejects(
        message_bytes(PayloadType.SA, generic(0, b"\x00\x00\x00\x01")),
        PayloadMalformed,
        "SA payload at offset 28: shorter than DOI and situation",
    )


def test_other_payload_errors() -> None:
    def one(payload_type: int, body: bytes) -> bytes:
        return message_bytes(payload_type, generic(0, body))

    assert_rejects(
        one(PayloadType.ID, b"\x01\x00\x00"), PayloadMalformed, "ID payload at offset 28"
    )
    assert_rejects(
        one(PayloadType.ID, b"\x01\x00\x00\x00" + b"12345"),
        MalformedIdentification,
        "ID type 1 needs 4 octets, has 5",
    )
    assert_rejects(
        one(PayloadType.ID, b"\x06\x00\x00\x00" + bytes(16)),
        MalformedIdentification,
        "ID type 6 needs 32",
    )
    assert_rejects(one(PayloadType.CERT, b""), PayloadMalformed, "CERT payload at offset 28")
    assert_rejects(one(PayloadType.CR, b""), PayloadMalformed, "CR payload at offset 28")
    assert_rejects(one(PayloadType.NOTIFICATION, bytes(7)), PayloadMalformed, "NOTIFICATION")
    assert_rejects(
        one(PayloadType.NOTIFICATION, struct.pack("!IBBH", 1, 1, 16, 4) + bytes(8)),
        PayloadMalformed,
        "SPI size 16 past the end",
    )
    assert_rejects(one(PayloadType.DELETE, bytes(7)), PayloadMalformed, "DELETE")
    assert_rejects(
        one(PayloadType.DELETE, struct.pack("!IBBH", 1, 3, 4, 2) + bytes(4)),
        PayloadMalformed,
        "2 SPIs of 4 octets do not fill its 4 octets",
    )
    assert_rejects(
        one(PayloadType.DELETE, struct.pack("!IBBH", 1, 3, 0, 65535)),
        PayloadMalformed,
        "65535 SPIs of 0 octets",
    )
    assert_rejects(
        one(PayloadType.NAT_OA, b"\x01\x00\x00\x01" + bytes(4)), PayloadMalformed, "reserved octets"
    )
    assert_rejects(one(PayloadType.NAT_OA, b"\x02\x00\x00\x00abcd"), PayloadMalformed, "ID type 2")
    assert_rejects(
        one(PayloadType.NAT_OA_DRAFT, b"\x05\x00\x00\x00" + bytes(4)),
        PayloadMalformed,
        "NAT_OA_DRAFT payload at offset 28: ID type 5 with 4",
    )
    assert_rejects(one(PayloadType.NAT_OA, b"\x01\x00"), PayloadMalformed, "shorter")


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = main_mode_first_message(1).encode()
    assert Message.decode(bytearray(data)) == Message.decode(memoryview(data))  # type: ignore[arg-type]


def test_error_subclasses_carry_rfc_notify_types() -> None:
    expected = {
        PayloadMalformed: NotifyType.PAYLOAD_MALFORMED,
        InvalidPayloadType: NotifyType.INVALID_PAYLOAD_TYPE,
        DoiNotSupported: NotifyType.DOI_NOT_SUPPORTED,
        SituationNotSupported: NotifyType.SITUATION_NOT_SUPPORTED,
        InvalidMajorVersion: NotifyType.INVALID_MAJOR_VERSION,
        InvalidMinorVersion: NotifyType.INVALID_MINOR_VERSION,
        InvalidExchangeType: NotifyType.INVALID_EXCHANGE_TYPE,
        InvalidFlags: NotifyType.INVALID_FLAGS,
        InvalidMessageId: NotifyType.INVALID_MESSAGE_ID,
        InvalidSpi: NotifyType.INVALID_SPI,
        BadProposalSyntax: NotifyType.BAD_PROPOSAL_SYNTAX,
        MalformedIdentification: NotifyType.INVALID_ID_INFORMATION,
    }
    for error, notify in expected.items():
        assert issubclass(error, DecodeError)
        assert error.notify_type == notify


# ------------------------------------------------------------------ constants


def test_vendor_ids_are_the_published_hashes() -> None:
    assert c.VENDOR_ID_NAT_T_RFC3947 == hashlib.md5(b"RFC 3947").digest()
    assert c.VENDOR_ID_NAT_T_DRAFT_02_N == hashlib.md5(b"draft-ietf-ipsec-nat-t-ike-02\n").digest()
    assert c.VENDOR_ID_NAT_T_DRAFT_02 == hashlib.md5(b"draft-ietf-ipsec-nat-t-ike-02").digest()
    assert c.VENDOR_ID_NAT_T_DRAFT_03 == hashlib.md5(b"draft-ietf-ipsec-nat-t-ike-03").digest()
    assert c.VENDOR_ID_DPD.hex() == "afcad71368a1f1c96b8696fc77570100"


def test_notify_types_cover_rfc_2408_errors() -> None:
    assert [n.value for n in c.NotifyType if n.value <= 30] == list(range(1, 31))
    assert c.NotifyType.INVALID_COOKIE == 4
    assert c.NotifyType.R_U_THERE == 36136 and c.NotifyType.R_U_THERE_ACK == 36137
    assert c.NotifyType.INITIAL_CONTACT == 24578 and c.NotifyType.RESPONDER_LIFETIME == 24576


def test_zero_alignment_padding_after_a_clear_message_is_tolerated() -> None:
    # Libreswan (ikepad=yes) pads IKEv1 messages to a multiple of 4 octets.
    message = Message(bytes(range(8)), bytes(8), ExchangeType.AGGRESSIVE, 0, 0,
                      (VendorId(b"abc"),))
    padded = bytearray(message.encode() + bytes(1))
    padded[24:28] = len(padded).to_bytes(4, "big")
    assert Message.decode(bytes(padded)).payloads == message.payloads
    nonzero = bytearray(padded)
    nonzero[-1] = 1
    with pytest.raises(PayloadMalformed, match="1 octets after the last payload"):
        Message.decode(bytes(nonzero))
    four = bytearray(message.encode() + bytes(4))
    four[24:28] = len(four).to_bytes(4, "big")
    with pytest.raises(PayloadMalformed, match="4 octets after the last payload"):
        Message.decode(bytes(four))
