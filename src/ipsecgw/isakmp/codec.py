"""ISAKMP message codec: the RFC 2408 3.1 header and the payload chain.

`Message.decode` validates everything it reads and raises only `DecodeError`
(subclasses carry the Notify type to answer with); it runs in time linear in
the datagram.  `decode(encode(m)) == m` and, for anything `decode` accepts,
`encode(decode(b)) == b[:length]`.

Trailing octets: RFC 2408 3.1 says the header's Length is the length of the
whole message.  Some peers pad the datagram past it, so octets after
`Length` are ignored; a datagram shorter than `Length` is malformed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .codec_payloads import (
    GENERIC_HEADER,
    Attribute,
    AttributePayload,
    Certificate,
    CertificateRequest,
    Delete,
    Hash,
    Identification,
    KeyExchange,
    NatD,
    NatOA,
    Nonce,
    Notification,
    Proposal,
    SecurityAssociation,
    Signature,
    Transform,
    UnknownPayload,
    VendorId,
    _decode_attribute_payload,
    _decode_certificate,
    _decode_delete,
    _decode_identification,
    _decode_nat_oa,
    _decode_notification,
    _decode_opaque,
    _decode_sa,
    _name,
    decode_attributes,
    encode_attributes,
    generic_header,
)
from .constants import HEADER_LENGTH, ExchangeType, Flags, PayloadType
from .errors import (
    BadProposalSyntax,
    DecodeError,
    DoiNotSupported,
    InvalidExchangeType,
    InvalidFlags,
    InvalidMajorVersion,
    InvalidMessageId,
    InvalidMinorVersion,
    InvalidPayloadType,
    InvalidSpi,
    MalformedIdentification,
    PayloadMalformed,
    SituationNotSupported,
)

__all__ = [
    "Attribute",
    "AttributePayload",
    "BadProposalSyntax",
    "Certificate",
    "CertificateRequest",
    "DecodeError",
    "Delete",
    "DoiNotSupported",
    "Hash",
    "Identification",
    "InvalidExchangeType",
    "InvalidFlags",
    "MalformedIdentification",
    "InvalidMajorVersion",
    "InvalidMessageId",
    "InvalidMinorVersion",
    "InvalidPayloadType",
    "InvalidSpi",
    "KeyExchange",
    "Message",
    "NatD",
    "NatOA",
    "Nonce",
    "Notification",
    "Payload",
    "PayloadMalformed",
    "Proposal",
    "SecurityAssociation",
    "Signature",
    "SituationNotSupported",
    "Transform",
    "UnknownPayload",
    "VendorId",
    "decode_attributes",
    "decode_payloads",
    "encode_attributes",
    "encode_payloads",
]

Payload = (
    SecurityAssociation
    | KeyExchange
    | Identification
    | Certificate
    | CertificateRequest
    | Hash
    | Signature
    | Nonce
    | Notification
    | Delete
    | VendorId
    | NatD
    | NatOA
    | AttributePayload
    | UnknownPayload
)
P = TypeVar("P")

_HEADER = struct.Struct("!8s8sBBBBII")

_DECODERS: dict[int, Callable[[int, bytes, int, int], Payload]] = {
    PayloadType.SA: _decode_sa,
    PayloadType.KE: _decode_opaque,
    PayloadType.ID: _decode_identification,
    PayloadType.CERT: _decode_certificate,
    PayloadType.CR: _decode_certificate,
    PayloadType.HASH: _decode_opaque,
    PayloadType.SIG: _decode_opaque,
    PayloadType.NONCE: _decode_opaque,
    PayloadType.NOTIFICATION: _decode_notification,
    PayloadType.DELETE: _decode_delete,
    PayloadType.VENDOR_ID: _decode_opaque,
    PayloadType.NAT_D: _decode_opaque,
    PayloadType.NAT_OA: _decode_nat_oa,
    PayloadType.NAT_D_DRAFT: _decode_opaque,
    PayloadType.NAT_OA_DRAFT: _decode_nat_oa,
    PayloadType.ATTRIBUTE: _decode_attribute_payload,
}
_PRIVATE_PAYLOAD_TYPES = range(128, 256)  # RFC 2408 3.1: private use

_EXCHANGE_TYPES = frozenset(ExchangeType)
# RFC 2408 3.1: the Message ID is zero throughout phase 1; RFC 2409 5.5 and 5.6:
# Quick Mode and New Group Mode use a non-zero random ID.
_PHASE1_EXCHANGES = frozenset(
    {
        ExchangeType.BASE,
        ExchangeType.IDENTITY_PROTECTION,
        ExchangeType.AUTHENTICATION_ONLY,
        ExchangeType.AGGRESSIVE,
    }
)
# draft-dukes-ike-mode-cfg-02 3.1: a Transaction exchange has its own random ID too.
_PHASE2_EXCHANGES = frozenset(
    {ExchangeType.QUICK_MODE, ExchangeType.NEW_GROUP_MODE, ExchangeType.TRANSACTION}
)
# int(): ~ on an IntFlag only inverts within the defined bits.
_ALL_FLAGS = int(Flags.ENCRYPTION | Flags.COMMIT | Flags.AUTHENTICATION_ONLY)
_ENCRYPTION = int(Flags.ENCRYPTION)


def encode_payloads(payloads: Sequence[Payload]) -> tuple[int, bytes]:
    """Chain payloads: (type of the first payload, the bytes)."""
    if not payloads:
        return PayloadType.NONE, b""
    parts = []
    last = len(payloads) - 1
    for index, payload in enumerate(payloads):
        body = payload.encode_body()
        next_payload = PayloadType.NONE if index == last else payloads[index + 1].payload_type
        parts.append(generic_header(next_payload, body, _name(payload.payload_type)))
        parts.append(body)
    return payloads[0].payload_type, b"".join(parts)


def _decode_chain(
    data: bytes, first_payload: int, pos: int, end: int, allow_padding: bool
) -> tuple[Payload, ...]:
    payloads = []
    payload_type = first_payload
    while payload_type != PayloadType.NONE:
        decoder = _DECODERS.get(payload_type)
        if decoder is None:
            if payload_type not in _PRIVATE_PAYLOAD_TYPES:
                raise InvalidPayloadType(
                    f"payload at offset {pos} has invalid type {payload_type}", pos
                )
            decoder = _decode_opaque
        what = f"{_name(payload_type)} payload at offset {pos}"
        if end - pos < 4:
            raise PayloadMalformed(f"{what}: truncated ({end - pos} octets left)", pos)
        next_payload, reserved, length = GENERIC_HEADER.unpack_from(data, pos)
        if reserved:
            raise PayloadMalformed(f"{what}: reserved octet is {reserved}", pos)
        if length < 4 or length > end - pos:
            raise PayloadMalformed(
                f"{what}: payload length {length} invalid ({end - pos} octets left)", pos
            )
        payloads.append(decoder(payload_type, data, pos, pos + length))
        pos += length
        payload_type = next_payload
    if pos != end and not allow_padding and not _alignment_padding(data, pos, end):
        raise PayloadMalformed(f"{end - pos} octets after the last payload at offset {pos}", pos)
    return tuple(payloads)


def _alignment_padding(data: bytes, pos: int, end: int) -> bool:
    """Up to three zero octets that pad a message to a multiple of four.

    Libreswan pads every IKEv1 message so by default (`ikepad=yes`) and
    counts the padding in the header's length; nothing else may follow the
    last payload of a message sent in the clear.
    """
    return end - pos < 4 and not any(data[pos:end])


def decode_payloads(
    first_payload: int, body: bytes, *, allow_padding: bool = False
) -> tuple[Payload, ...]:
    """Decode a payload chain, e.g. a decrypted message body.

    `allow_padding`: octets after the last payload are RFC 2409 5.3 padding
    (and are dropped).  Error offsets count from the start of `body`.
    """
    body = bytes(body)
    return _decode_chain(body, first_payload, 0, len(body), allow_padding)


# RFC 2408 3.1
# !                          Initiator                            !
# !                            Cookie                             !
# !                          Responder                            !
# !                            Cookie                             !
# !  Next Payload ! MjVer ! MnVer ! Exchange Type !     Flags     !
# !                          Message ID                           !
# !                            Length                             !


@dataclass(frozen=True, slots=True)
class Message:
    """One ISAKMP message.

    With the E flag, `encrypted_body` holds the ciphertext, `first_payload`
    the header's Next Payload and `payloads` is empty; the engine decrypts and
    calls `decode_payloads(first_payload, plaintext, allow_padding=True)`.
    """

    initiator_cookie: bytes
    responder_cookie: bytes
    exchange_type: int
    flags: int = 0
    message_id: int = 0
    payloads: tuple[Payload, ...] = ()
    encrypted_body: bytes | None = None
    first_payload: int = 0
    major_version: int = 1
    minor_version: int = 0

    def find(self, payload_class: type[P]) -> P | None:
        """The first payload of that class, or None."""
        for payload in self.payloads:
            if isinstance(payload, payload_class):
                return payload
        return None

    def find_all(self, payload_class: type[P]) -> list[P]:
        return [payload for payload in self.payloads if isinstance(payload, payload_class)]

    def encode(self) -> bytes:
        """The datagram.  Header fields are not range-checked beyond their
        widths, so tests can build the bad messages that `decode` rejects."""
        if len(self.initiator_cookie) != 8 or len(self.responder_cookie) != 8:
            raise ValueError("cookies must be 8 octets")
        if not (0 <= self.major_version <= 15 and 0 <= self.minor_version <= 15):
            raise ValueError("version numbers must fit 4 bits")
        if self.flags & Flags.ENCRYPTION:
            if self.encrypted_body is None or self.payloads:
                raise ValueError("an encrypted message has encrypted_body and no payloads")
            first_payload, body = self.first_payload, self.encrypted_body
        else:
            if self.encrypted_body is not None or self.first_payload:
                raise ValueError("encrypted_body/first_payload need the E flag")
            first_payload, body = encode_payloads(self.payloads)
        try:
            header = _HEADER.pack(
                self.initiator_cookie,
                self.responder_cookie,
                first_payload,
                self.major_version << 4 | self.minor_version,
                self.exchange_type,
                self.flags,
                self.message_id,
                HEADER_LENGTH + len(body),
            )
        except struct.error as exc:
            raise ValueError(f"header field out of range: {exc}") from None
        return header + body

    @classmethod
    def decode(cls, data: bytes) -> Message:
        return cls._decode(bytes(data), payloads=True)

    @classmethod
    def decode_header(cls, data: bytes) -> Message:
        """The header alone, checked as `decode` checks it; the payloads of a
        message in the clear are left undecoded (`payloads` is empty)."""
        return cls._decode(bytes(data), payloads=False)

    @classmethod
    def _decode(cls, data: bytes, payloads: bool) -> Message:
        if len(data) < HEADER_LENGTH:
            raise PayloadMalformed(f"ISAKMP header truncated: {len(data)} of 28 octets", 0)
        (
            initiator_cookie,
            responder_cookie,
            first_payload,
            version,
            exchange_type,
            flags,
            message_id,
            length,
        ) = _HEADER.unpack_from(data)
        # RFC 2408 5.1: check the versions, exchange type and flags before anything else.
        major_version, minor_version = version >> 4, version & 0x0F
        if major_version != 1:
            raise InvalidMajorVersion(f"ISAKMP header: major version {major_version}", 17)
        if minor_version != 0:
            raise InvalidMinorVersion(f"ISAKMP header: minor version {minor_version}", 17)
        if exchange_type not in _EXCHANGE_TYPES:
            raise InvalidExchangeType(f"ISAKMP header: exchange type {exchange_type}", 18)
        if flags & ~_ALL_FLAGS:
            raise InvalidFlags(f"ISAKMP header: flags {flags:#04x}", 19)
        if (exchange_type in _PHASE1_EXCHANGES and message_id != 0) or (
            exchange_type in _PHASE2_EXCHANGES and message_id == 0
        ):
            raise InvalidMessageId(
                f"ISAKMP header: message ID {message_id:#010x} for exchange type {exchange_type}",
                20,
            )
        if not HEADER_LENGTH <= length <= len(data):
            raise PayloadMalformed(
                f"ISAKMP header: length {length} but the datagram has {len(data)} octets", 24
            )
        if flags & _ENCRYPTION:
            return cls(
                initiator_cookie,
                responder_cookie,
                exchange_type,
                flags,
                message_id,
                (),
                data[HEADER_LENGTH:length],
                first_payload,
            )
        chain = _decode_chain(data, first_payload, HEADER_LENGTH, length, False) if payloads else ()
        return cls(initiator_cookie, responder_cookie, exchange_type, flags, message_id, chain)
