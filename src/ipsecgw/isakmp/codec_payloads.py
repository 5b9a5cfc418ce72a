"""ISAKMP payload dataclasses and their body encoders/decoders.

Every payload on the wire is a 4-octet generic header (RFC 2408 3.2) followed
by a body; the classes here model the body, and `codec.py` chains them.
Each class's `encode_body()` returns the body without the generic header
(RFC 2409 5 hashes SA and ID payloads that way), and each `_decode_*`
function reads one payload whose generic header starts at `pos` and which
ends at `end`, validating every length and reserved field.

Values are kept as plain ints so that a peer's unknown code point survives a
decode -> encode round trip; the enums in `constants` compare equal to them.
Attribute order and TV/TLV form are kept, so re-encoding is byte-exact.

Why this module is long: it holds one short dataclass and decoder per
payload type (RFC 2408 3.4-3.16, RFC 3947, the Attribute payload of
draft-dukes-ike-mode-cfg-02), which share the attribute and header helpers
at its top; one module per payload would only scatter those.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from .constants import Doi, IdType, PayloadType, ProtocolId, Situation
from .errors import (
    BadProposalSyntax,
    DoiNotSupported,
    InvalidSpi,
    MalformedIdentification,
    PayloadMalformed,
    SituationNotSupported,
)

GENERIC_HEADER = struct.Struct("!BBH")
_ATTRIBUTE = struct.Struct("!HH")
_SA = struct.Struct("!II")
_PROPOSAL = struct.Struct("!BBBB")
_TRANSFORM = struct.Struct("!BBH")
_IDENTIFICATION = struct.Struct("!BBH")
_NOTIFICATION = struct.Struct("!IBBH")
_DELETE = struct.Struct("!IBBH")
_NAT_OA = struct.Struct("!BBH")
_ATTRIBUTE_PAYLOAD = struct.Struct("!BBH")
_U8 = struct.Struct("!B")

_TV_FLAG = 0x8000  # RFC 2408 3.3: AF bit set = Type/Value (basic) form
_MAX_LENGTH = 0xFFFF

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 2407 4.6.2.1: body lengths of the address identification types.
_ID_ADDRESS_LENGTHS: dict[int, int] = {
    IdType.IPV4_ADDR: 4,
    IdType.IPV4_ADDR_SUBNET: 8,
    IdType.IPV4_ADDR_RANGE: 8,
    IdType.IPV6_ADDR: 16,
    IdType.IPV6_ADDR_SUBNET: 32,
    IdType.IPV6_ADDR_RANGE: 32,
}

# SPI sizes for the protocols we know (RFC 2408 2.4 and 3.5: the ISAKMP SPI
# is the cookie pair or absent; RFC 2407 4.4.1: AH/ESP SPIs are 32 bits;
# RFC 3173 4.1: an IPComp CPI is 16 bits, sent as 2 or 4 octets).
# Proposals for other protocols are kept so the engine can skip them.
_PROPOSAL_SPI_SIZES: dict[int, tuple[int, ...]] = {
    ProtocolId.ISAKMP: (0, 16),
    ProtocolId.IPSEC_AH: (4,),
    ProtocolId.IPSEC_ESP: (4,),
    ProtocolId.IPCOMP: (2, 4),
}


def _name(payload_type: int) -> str:
    try:
        return PayloadType(payload_type).name
    except ValueError:
        return f"type-{payload_type}"


def generic_header(next_payload: int, body: bytes, what: str) -> bytes:
    length = 4 + len(body)
    if length > _MAX_LENGTH:
        raise ValueError(f"{what} payload too long to encode ({length} octets)")
    return GENERIC_HEADER.pack(next_payload, 0, length)


# ----------------------------------------------------------------- attributes
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# !A!       Attribute Type        !    AF=0  Attribute Length     !
# !F!                             !    AF=1  Attribute Value      !
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# .                   AF=0  Attribute Value                       .
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+


@dataclass(frozen=True, slots=True)
class Attribute:
    """A data attribute (RFC 2408 3.3): `value` is an int in TV form, bytes in TLV."""

    type: int
    value: int | bytes
    tv: bool

    @classmethod
    def make(cls, type: int, value: int) -> Attribute:
        """TV when the value fits 16 bits, else TLV with the shortest big-endian bytes."""
        if value < 0:
            raise ValueError(f"attribute {type}: negative value {value}")
        if value <= _MAX_LENGTH:
            return cls(type, value, True)
        return cls(type, value.to_bytes((value.bit_length() + 7) // 8, "big"), False)

    def as_int(self) -> int:
        if isinstance(self.value, int):
            return self.value
        return int.from_bytes(self.value, "big")

    def encode(self) -> bytes:
        if not 0 <= self.type < _TV_FLAG:
            raise ValueError(f"attribute type {self.type} does not fit 15 bits")
        if self.tv:
            if not isinstance(self.value, int) or not 0 <= self.value <= _MAX_LENGTH:
                raise ValueError(f"attribute {self.type}: TV value must be an int < 65536")
            return _ATTRIBUTE.pack(_TV_FLAG | self.type, self.value)
        if not isinstance(self.value, bytes) or len(self.value) > _MAX_LENGTH:
            raise ValueError(f"attribute {self.type}: TLV value must be bytes < 64 KiB")
        return _ATTRIBUTE.pack(self.type, len(self.value)) + self.value


def encode_attributes(attributes: Sequence[Attribute]) -> bytes:
    """Attributes back to back, as in a Transform or RESPONDER-LIFETIME notify."""
    return b"".join(attribute.encode() for attribute in attributes)


def _where(transform_offset: int | None) -> str:
    return "attributes" if transform_offset is None else f"Transform at offset {transform_offset}"


def decode_attribute_list(
    data: bytes, pos: int, end: int, transform_offset: int | None
) -> tuple[Attribute, ...]:
    # The hottest loop of the codec (a first message carries dozens of
    # attributes): names are bound locally and error text is built only on error.
    attributes: list[Attribute] = []
    append, unpack, make = attributes.append, _ATTRIBUTE.unpack_from, Attribute
    while pos < end:
        if end - pos < 4:
            raise PayloadMalformed(
                f"{_where(transform_offset)}: attribute at offset {pos} truncated "
                f"({end - pos} octets left)",
                pos,
            )
        af_type, value = unpack(data, pos)
        if af_type & _TV_FLAG:
            append(make(af_type & 0x7FFF, value, True))
            pos += 4
            continue
        value_end = pos + 4 + value
        if value_end > end:
            raise PayloadMalformed(
                f"{_where(transform_offset)}: attribute at offset {pos} has length {value}, "
                f"past the end ({end - pos - 4} octets left)",
                pos,
            )
        append(make(af_type, data[pos + 4 : value_end], False))
        pos = value_end
    return tuple(attributes)


def decode_attributes(data: bytes) -> tuple[Attribute, ...]:
    """Parse attributes that fill `data` exactly (e.g. RESPONDER-LIFETIME notify data)."""
    data = bytes(data)
    return decode_attribute_list(data, 0, len(data), None)


def _chain(items: Sequence[Transform | Proposal], next_type: int, what: str) -> bytes:
    parts = []
    last = len(items) - 1
    for index, item in enumerate(items):
        body = item.encode_body()
        parts.append(generic_header(0 if index == last else next_type, body, what))
        parts.append(body)
    return b"".join(parts)


def _nested_header(data: bytes, pos: int, end: int, minimum: int, what: str) -> tuple[int, int]:
    """Generic header of a Proposal or Transform inside an SA: (next, end offset)."""
    if end - pos < minimum:
        raise BadProposalSyntax(
            f"{what} at offset {pos} truncated ({end - pos} octets left, need {minimum})", pos
        )
    next_payload, reserved, length = GENERIC_HEADER.unpack_from(data, pos)
    if reserved:
        raise BadProposalSyntax(f"{what} at offset {pos}: reserved octet is {reserved}", pos)
    if length < minimum or pos + length > end:
        raise BadProposalSyntax(
            f"{what} at offset {pos}: length {length} does not fit "
            f"(minimum {minimum}, {end - pos} octets left in the enclosing payload)",
            pos,
        )
    return next_payload, pos + length


# -------------------------------------------------------------- SA payload
# RFC 2408 3.4 / RFC 2407 4.6.1
# ! Next Payload  !   RESERVED    !         Payload Length        !
# !              Domain of Interpretation  (DOI)                  !
# !                           Situation                           !
# !                 Proposal payloads ...                         !


@dataclass(frozen=True, slots=True)
class Transform:
    # RFC 2408 3.6
    # ! Transform #   !  Transform-Id !           RESERVED2           !
    # ~                        SA Attributes                          ~
    payload_type: ClassVar[int] = PayloadType.TRANSFORM
    number: int
    transform_id: int
    attributes: tuple[Attribute, ...] = ()

    def encode_body(self) -> bytes:
        return _TRANSFORM.pack(self.number, self.transform_id, 0) + encode_attributes(
            self.attributes
        )


@dataclass(frozen=True, slots=True)
class Proposal:
    # RFC 2408 3.5
    # !  Proposal #   !  Protocol-Id  !    SPI Size   !# of Transforms!
    # !                        SPI (variable)                         !
    # ~                     Transform payloads                        ~
    payload_type: ClassVar[int] = PayloadType.PROPOSAL
    number: int
    protocol_id: int
    spi: bytes
    transforms: tuple[Transform, ...]

    def encode_body(self) -> bytes:
        if not 1 <= len(self.transforms) <= 255:
            raise ValueError(f"proposal {self.number}: needs 1 to 255 transforms")
        header = _PROPOSAL.pack(self.number, self.protocol_id, len(self.spi), len(self.transforms))
        return header + self.spi + _chain(self.transforms, PayloadType.TRANSFORM, "Transform")


@dataclass(frozen=True, slots=True)
class SecurityAssociation:
    payload_type: ClassVar[int] = PayloadType.SA
    doi: int = Doi.IPSEC
    situation: int = Situation.IDENTITY_ONLY
    proposals: tuple[Proposal, ...] = ()

    def encode_body(self) -> bytes:
        if not self.proposals:
            raise ValueError("SA payload needs at least one proposal")
        return _SA.pack(self.doi, self.situation) + _chain(
            self.proposals, PayloadType.PROPOSAL, "Proposal"
        )


def _decode_transform(data: bytes, pos: int, end: int) -> Transform:
    number, transform_id, reserved = _TRANSFORM.unpack_from(data, pos + 4)
    if reserved:
        raise BadProposalSyntax(f"Transform at offset {pos}: RESERVED2 is {reserved:#x}", pos)
    attributes = decode_attribute_list(data, pos + 8, end, pos)
    return Transform(number, transform_id, attributes)


def _decode_proposal(data: bytes, pos: int, end: int) -> Proposal:
    number, protocol_id, spi_size, count = _PROPOSAL.unpack_from(data, pos + 4)
    spi_start = pos + 8
    if spi_size > end - spi_start:
        raise BadProposalSyntax(
            f"Proposal at offset {pos}: SPI size {spi_size} past the end of the proposal", pos
        )
    allowed = _PROPOSAL_SPI_SIZES.get(protocol_id)
    if allowed is not None and spi_size not in allowed:
        raise InvalidSpi(
            f"Proposal at offset {pos}: SPI size {spi_size} invalid for protocol {protocol_id}",
            pos,
        )
    if count == 0:
        raise BadProposalSyntax(f"Proposal at offset {pos}: no transforms", pos)
    transforms: list[Transform] = []
    cursor = spi_start + spi_size
    next_payload: int = PayloadType.TRANSFORM
    while next_payload:
        if next_payload != PayloadType.TRANSFORM or len(transforms) == count:
            raise BadProposalSyntax(
                f"Proposal at offset {pos}: transform chain does not match "
                f"its count {count} (next payload {next_payload} at transform "
                f"{len(transforms) + 1})",
                pos,
            )
        next_payload, transform_end = _nested_header(data, cursor, end, 8, "Transform")
        transforms.append(_decode_transform(data, cursor, transform_end))
        cursor = transform_end
    if len(transforms) != count or cursor != end:
        raise BadProposalSyntax(
            f"Proposal at offset {pos}: {len(transforms)} transforms for a count of {count}, "
            f"{end - cursor} octets left over",
            pos,
        )
    return Proposal(number, protocol_id, data[spi_start : spi_start + spi_size], tuple(transforms))


def _decode_sa(payload_type: int, data: bytes, pos: int, end: int) -> SecurityAssociation:
    if end - pos < 12:
        raise PayloadMalformed(f"SA payload at offset {pos}: shorter than DOI and situation", pos)
    doi, situation = _SA.unpack_from(data, pos + 4)
    if doi != Doi.IPSEC:
        # RFC 2408 3.4: the situation's format depends on the DOI.
        raise DoiNotSupported(f"SA payload at offset {pos}: DOI {doi} is not IPsec", pos)
    if situation & ~int(Situation.IDENTITY_ONLY):
        # RFC 2407 4.6.1: secrecy/integrity situations append labelled-domain
        # fields that we do not implement.
        raise SituationNotSupported(
            f"SA payload at offset {pos}: situation {situation:#x} not supported", pos
        )
    proposals: list[Proposal] = []
    cursor = pos + 12
    next_payload: int = PayloadType.PROPOSAL
    while next_payload:
        if next_payload != PayloadType.PROPOSAL:
            raise BadProposalSyntax(
                f"SA payload at offset {pos}: proposal chain has next payload {next_payload}",
                pos,
            )
        next_payload, proposal_end = _nested_header(data, cursor, end, 8, "Proposal")
        proposals.append(_decode_proposal(data, cursor, proposal_end))
        cursor = proposal_end
    if cursor != end:
        raise BadProposalSyntax(
            f"SA payload at offset {pos}: {end - cursor} octets after the last proposal", pos
        )
    return SecurityAssociation(doi, situation, tuple(proposals))


# ------------------------------------------------- opaque-body payloads
# RFC 2408 3.7 KE, 3.11 Hash, 3.12 Signature, 3.13 Nonce, 3.16 Vendor ID,
# RFC 3947 3.2 NAT-D: the body is the data, nothing else.


@dataclass(frozen=True, slots=True)
class KeyExchange:
    payload_type: ClassVar[int] = PayloadType.KE
    data: bytes

    def encode_body(self) -> bytes:
        return self.data


@dataclass(frozen=True, slots=True)
class Hash:
    payload_type: ClassVar[int] = PayloadType.HASH
    data: bytes

    def encode_body(self) -> bytes:
        return self.data


@dataclass(frozen=True, slots=True)
class Signature:
    payload_type: ClassVar[int] = PayloadType.SIG
    data: bytes

    def encode_body(self) -> bytes:
        return self.data


@dataclass(frozen=True, slots=True)
class Nonce:
    payload_type: ClassVar[int] = PayloadType.NONCE
    data: bytes

    def encode_body(self) -> bytes:
        return self.data


@dataclass(frozen=True, slots=True)
class VendorId:
    payload_type: ClassVar[int] = PayloadType.VENDOR_ID
    data: bytes

    def encode_body(self) -> bytes:
        return self.data


@dataclass(frozen=True, slots=True)
class NatD:
    """NAT discovery hash; `draft` selects the pre-RFC payload number 130."""

    data: bytes
    draft: bool = False

    @property
    def payload_type(self) -> int:
        return PayloadType.NAT_D_DRAFT if self.draft else PayloadType.NAT_D

    def encode_body(self) -> bytes:
        return self.data


@dataclass(frozen=True, slots=True)
class UnknownPayload:
    """A private-use payload (RFC 2408 3.1: types 128-255) kept opaque."""

    payload_type: int
    data: bytes

    def encode_body(self) -> bytes:
        if not 128 <= self.payload_type <= 255 or self.payload_type in (
            PayloadType.NAT_D_DRAFT,
            PayloadType.NAT_OA_DRAFT,
        ):
            raise ValueError(f"payload type {self.payload_type} is not an unknown private type")
        return self.data


def _decode_opaque(
    payload_type: int, data: bytes, pos: int, end: int
) -> KeyExchange | Hash | Signature | Nonce | VendorId | NatD | UnknownPayload:
    body = data[pos + 4 : end]
    if payload_type == PayloadType.KE:
        return KeyExchange(body)
    if payload_type == PayloadType.HASH:
        return Hash(body)
    if payload_type == PayloadType.SIG:
        return Signature(body)
    if payload_type == PayloadType.NONCE:
        return Nonce(body)
    if payload_type == PayloadType.VENDOR_ID:
        return VendorId(body)
    if payload_type in (PayloadType.NAT_D, PayloadType.NAT_D_DRAFT):
        return NatD(body, payload_type == PayloadType.NAT_D_DRAFT)
    return UnknownPayload(payload_type, body)


# ---------------------------------------------------- Identification
# RFC 2408 3.8 / RFC 2407 4.6.2
# !   ID Type     !  Protocol ID  !             Port              !
# ~                     Identification Data                       ~


def _mask_prefix(mask: int, bits: int) -> int | None:
    """Prefix length of a contiguous netmask, None when the mask has holes."""
    inverse = ~mask & ((1 << bits) - 1)
    if inverse & (inverse + 1):
        return None
    return bits - inverse.bit_length()


@dataclass(frozen=True, slots=True)
class Identification:
    payload_type: ClassVar[int] = PayloadType.ID
    id_type: int
    protocol_id: int
    port: int
    data: bytes

    @classmethod
    def address(
        cls, address: str | IPAddress, *, protocol_id: int = 0, port: int = 0
    ) -> Identification:
        """ID_IPV4_ADDR or ID_IPV6_ADDR, whichever the address is."""
        parsed = ipaddress.ip_address(address)
        id_type = IdType.IPV4_ADDR if parsed.version == 4 else IdType.IPV6_ADDR
        return cls(id_type, protocol_id, port, parsed.packed)

    @classmethod
    def ipv4(
        cls, address: str | ipaddress.IPv4Address, *, protocol_id: int = 0, port: int = 0
    ) -> Identification:
        return cls(IdType.IPV4_ADDR, protocol_id, port, ipaddress.IPv4Address(address).packed)

    @classmethod
    def ipv6(
        cls, address: str | ipaddress.IPv6Address, *, protocol_id: int = 0, port: int = 0
    ) -> Identification:
        return cls(IdType.IPV6_ADDR, protocol_id, port, ipaddress.IPv6Address(address).packed)

    @classmethod
    def fqdn(cls, name: str) -> Identification:
        return cls(IdType.FQDN, 0, 0, name.encode("ascii"))

    @classmethod
    def user_fqdn(cls, name: str) -> Identification:
        return cls(IdType.USER_FQDN, 0, 0, name.encode("ascii"))

    @classmethod
    def der_asn1_dn(cls, der: bytes) -> Identification:
        return cls(IdType.DER_ASN1_DN, 0, 0, der)

    @classmethod
    def key_id(cls, key_id: bytes) -> Identification:
        return cls(IdType.KEY_ID, 0, 0, key_id)

    @classmethod
    def subnet(
        cls, network: str | IPNetwork, *, protocol_id: int = 0, port: int = 0
    ) -> Identification:
        """ID_IPV4_ADDR_SUBNET / ID_IPV6_ADDR_SUBNET (address then netmask)."""
        parsed = ipaddress.ip_network(network)
        id_type = IdType.IPV4_ADDR_SUBNET if parsed.version == 4 else IdType.IPV6_ADDR_SUBNET
        data = parsed.network_address.packed + parsed.netmask.packed
        return cls(id_type, protocol_id, port, data)

    @classmethod
    def address_range(
        cls, first: str | IPAddress, last: str | IPAddress, *, protocol_id: int = 0, port: int = 0
    ) -> Identification:
        """ID_IPV4_ADDR_RANGE / ID_IPV6_ADDR_RANGE (first then last address)."""
        start, stop = ipaddress.ip_address(first), ipaddress.ip_address(last)
        if start.version != stop.version:
            raise ValueError("address range mixes IPv4 and IPv6")
        id_type = IdType.IPV4_ADDR_RANGE if start.version == 4 else IdType.IPV6_ADDR_RANGE
        return cls(id_type, protocol_id, port, start.packed + stop.packed)

    def _bounds(self) -> tuple[int, int, int] | None:
        """(address bits, first, last) as ints for address, subnet and range IDs."""
        if _ID_ADDRESS_LENGTHS.get(self.id_type) != len(self.data):
            return None
        bits = 32 if self.id_type in _IPV4_TYPES else 128
        size = bits // 8
        first = int.from_bytes(self.data[:size], "big")
        if self.id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
            return bits, first, first
        second = int.from_bytes(self.data[size:], "big")
        if self.id_type in (IdType.IPV4_ADDR_RANGE, IdType.IPV6_ADDR_RANGE):
            return (bits, first, second) if first <= second else None
        if _mask_prefix(second, bits) is None:
            return None
        # RFC 2407 4.6.2.5 masks the address with the netmask; host bits are ignored.
        network = first & second
        return bits, network, network | (~second & ((1 << bits) - 1))

    def to_address_range(self) -> tuple[IPAddress, IPAddress] | None:
        """(first, last) address covered, for address, subnet and range IDs.

        None for other ID types, a subnet whose netmask has holes, or a
        range whose first address is above its last.
        """
        bounds = self._bounds()
        if bounds is None:
            return None
        bits, first, last = bounds
        make = ipaddress.IPv4Address if bits == 32 else ipaddress.IPv6Address
        return make(first), make(last)

    def to_network(self) -> IPNetwork | None:
        """The one prefix this ID covers, or None when it isn't exactly one prefix."""
        bounds = self._bounds()
        if bounds is None:
            return None
        bits, first, last = bounds
        span = last - first + 1
        if span & (span - 1) or first & (span - 1):
            return None
        prefix = bits - (span.bit_length() - 1)
        if bits == 32:
            return ipaddress.IPv4Network((first, prefix))
        return ipaddress.IPv6Network((first, prefix))

    def encode_body(self) -> bytes:
        return _IDENTIFICATION.pack(self.id_type, self.protocol_id, self.port) + self.data


_IPV4_TYPES = (IdType.IPV4_ADDR, IdType.IPV4_ADDR_SUBNET, IdType.IPV4_ADDR_RANGE)


def _decode_identification(payload_type: int, data: bytes, pos: int, end: int) -> Identification:
    if end - pos < 8:
        raise PayloadMalformed(f"ID payload at offset {pos}: shorter than its 4-octet header", pos)
    id_type, protocol_id, port = _IDENTIFICATION.unpack_from(data, pos + 4)
    body = data[pos + 8 : end]
    expected = _ID_ADDRESS_LENGTHS.get(id_type)
    if expected is not None and len(body) != expected:
        raise MalformedIdentification(
            f"ID payload at offset {pos}: ID type {id_type} needs {expected} octets, "
            f"has {len(body)}",
            pos,
        )
    return Identification(id_type, protocol_id, port, body)


# -------------------------------------------- Certificate / Cert Request
# RFC 2408 3.9 / 3.10
# ! Cert Encoding !                                               !
# +-+-+-+-+-+-+-+-+   Certificate Data / Certificate Authority    ~


@dataclass(frozen=True, slots=True)
class Certificate:
    payload_type: ClassVar[int] = PayloadType.CERT
    encoding: int
    data: bytes

    def encode_body(self) -> bytes:
        return _U8.pack(self.encoding) + self.data


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    payload_type: ClassVar[int] = PayloadType.CR
    encoding: int
    authority: bytes = b""

    def encode_body(self) -> bytes:
        return _U8.pack(self.encoding) + self.authority


def _decode_certificate(
    payload_type: int, data: bytes, pos: int, end: int
) -> Certificate | CertificateRequest:
    if end - pos < 5:
        raise PayloadMalformed(
            f"{_name(payload_type)} payload at offset {pos}: no certificate encoding", pos
        )
    encoding = data[pos + 4]
    if payload_type == PayloadType.CERT:
        return Certificate(encoding, data[pos + 5 : end])
    return CertificateRequest(encoding, data[pos + 5 : end])


# ------------------------------------------------------- Notification
# RFC 2408 3.14
# !              Domain of Interpretation  (DOI)                  !
# !  Protocol-ID  !   SPI Size    !      Notify Message Type      !
# ~                Security Parameter Index (SPI)                 ~
# ~                       Notification Data                       ~


@dataclass(frozen=True, slots=True)
class Notification:
    payload_type: ClassVar[int] = PayloadType.NOTIFICATION
    doi: int
    protocol_id: int
    notify_type: int
    spi: bytes = b""
    data: bytes = b""

    def encode_body(self) -> bytes:
        if len(self.spi) > 255:
            raise ValueError("Notification SPI longer than 255 octets")
        header = _NOTIFICATION.pack(self.doi, self.protocol_id, len(self.spi), self.notify_type)
        return header + self.spi + self.data


def _decode_notification(payload_type: int, data: bytes, pos: int, end: int) -> Notification:
    if end - pos < 12:
        raise PayloadMalformed(
            f"NOTIFICATION payload at offset {pos}: shorter than its 8-octet header", pos
        )
    doi, protocol_id, spi_size, notify_type = _NOTIFICATION.unpack_from(data, pos + 4)
    spi_start = pos + 12
    if spi_size > end - spi_start:
        raise PayloadMalformed(
            f"NOTIFICATION payload at offset {pos}: SPI size {spi_size} past the end", pos
        )
    spi_end = spi_start + spi_size
    return Notification(doi, protocol_id, notify_type, data[spi_start:spi_end], data[spi_end:end])


# ------------------------------------------------------------- Delete
# RFC 2408 3.15
# !              Domain of Interpretation  (DOI)                  !
# !  Protocol-Id  !   SPI Size    !           # of SPIs           !
# ~               Security Parameter Index(es) (SPI)              ~


@dataclass(frozen=True, slots=True)
class Delete:
    payload_type: ClassVar[int] = PayloadType.DELETE
    doi: int
    protocol_id: int
    spi_size: int
    spis: tuple[bytes, ...]

    def encode_body(self) -> bytes:
        if any(len(spi) != self.spi_size for spi in self.spis):
            raise ValueError(f"Delete: every SPI must be {self.spi_size} octets")
        header = _DELETE.pack(self.doi, self.protocol_id, self.spi_size, len(self.spis))
        return header + b"".join(self.spis)


def _decode_delete(payload_type: int, data: bytes, pos: int, end: int) -> Delete:
    if end - pos < 12:
        raise PayloadMalformed(
            f"DELETE payload at offset {pos}: shorter than its 8-octet header", pos
        )
    doi, protocol_id, spi_size, count = _DELETE.unpack_from(data, pos + 4)
    spi_start = pos + 12
    # A zero SPI size with a count would make `count` empty SPIs out of no
    # input at all; the SPIs must fill the payload exactly (RFC 2408 3.15).
    if (count and not spi_size) or spi_size * count != end - spi_start:
        raise PayloadMalformed(
            f"DELETE payload at offset {pos}: {count} SPIs of {spi_size} octets "
            f"do not fill its {end - spi_start} octets",
            pos,
        )
    spis = tuple(
        data[offset : offset + spi_size] for offset in range(spi_start, end, spi_size or 1)
    )
    return Delete(doi, protocol_id, spi_size, spis)


# ------------------------------------------------------------- NAT-OA
# RFC 3947 5.2
# !   ID Type     !   RESERVED    !            RESERVED           !
# ~             IPv4 (4 octets) or IPv6 address (16 octets)       ~


@dataclass(frozen=True, slots=True)
class NatOA:
    """NAT original address; `draft` selects the pre-RFC payload number 131."""

    id_type: int
    data: bytes
    draft: bool = False

    @property
    def payload_type(self) -> int:
        return PayloadType.NAT_OA_DRAFT if self.draft else PayloadType.NAT_OA

    @classmethod
    def address(cls, address: str | IPAddress, *, draft: bool = False) -> NatOA:
        parsed = ipaddress.ip_address(address)
        id_type = IdType.IPV4_ADDR if parsed.version == 4 else IdType.IPV6_ADDR
        return cls(id_type, parsed.packed, draft)

    def encode_body(self) -> bytes:
        return _NAT_OA.pack(self.id_type, 0, 0) + self.data


def _decode_nat_oa(payload_type: int, data: bytes, pos: int, end: int) -> NatOA:
    what = f"{_name(payload_type)} payload at offset {pos}"
    if end - pos < 8:
        raise PayloadMalformed(f"{what}: shorter than its 4-octet header", pos)
    id_type, reserved1, reserved2 = _NAT_OA.unpack_from(data, pos + 4)
    if reserved1 or reserved2:
        raise PayloadMalformed(f"{what}: reserved octets are not zero", pos)
    body = data[pos + 8 : end]
    # RFC 3947 5.2: only ID_IPV4_ADDR and ID_IPV6_ADDR are allowed.
    if (
        id_type not in (IdType.IPV4_ADDR, IdType.IPV6_ADDR)
        or len(body) != _ID_ADDRESS_LENGTHS[id_type]
    ):
        raise PayloadMalformed(f"{what}: ID type {id_type} with {len(body)} octets of address", pos)
    return NatOA(id_type, body, payload_type == PayloadType.NAT_OA_DRAFT)


# ------------------------------------------------------------- Attribute
# draft-dukes-ike-mode-cfg-02 3.2 (the payload of the Transaction exchange,
# which XAUTH uses as well: draft-beaulieu-ike-xauth-02 4)
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# ! Next Payload  !   RESERVED    !         Payload Length        !
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# !     Type      !   RESERVED    !           Identifier          !
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# ~                           Attributes                          ~
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+


@dataclass(frozen=True, slots=True)
class AttributePayload:
    """`cfg_type`: CfgType (REQUEST, REPLY, SET, ACK); `identifier` pairs a
    REQUEST with its REPLY and a SET with its ACK; `attributes` in TV or TLV
    form (a REQUEST asks for a TLV attribute by sending it empty)."""

    payload_type: ClassVar[int] = PayloadType.ATTRIBUTE
    cfg_type: int
    identifier: int
    attributes: tuple[Attribute, ...] = ()

    def encode_body(self) -> bytes:
        header = _ATTRIBUTE_PAYLOAD.pack(self.cfg_type, 0, self.identifier)
        return header + encode_attributes(self.attributes)

    def find(self, attribute_type: int) -> Attribute | None:
        """The first attribute of `attribute_type`, if any."""
        for attribute in self.attributes:
            if attribute.type == attribute_type:
                return attribute
        return None


def _decode_attribute_payload(payload_type: int, data: bytes, pos: int,
                              end: int) -> AttributePayload:
    if end - pos < 8:
        raise PayloadMalformed(
            f"ATTRIBUTE payload at offset {pos}: shorter than its 4-octet header", pos
        )
    cfg_type, reserved, identifier = _ATTRIBUTE_PAYLOAD.unpack_from(data, pos + 4)
    if reserved:
        raise PayloadMalformed(f"ATTRIBUTE payload at offset {pos}: reserved octet is {reserved}",
                               pos)
    return AttributePayload(cfg_type, identifier, decode_attribute_list(data, pos + 8, end, None))
