"""Builders for ISAKMP payloads and messages: plain factories for readable
tests, and hypothesis strategies that generate every payload the codec knows
(always well-formed, so `decode(encode(m)) == m` must hold)."""

from __future__ import annotations

import os

from hypothesis import strategies as st

from ipsecgw.isakmp import (
    Attribute,
    AttributePayload,
    Certificate,
    CertificateRequest,
    Delete,
    ExchangeType,
    Flags,
    Hash,
    Identification,
    IdType,
    IkeAttribute,
    IkeEncryption,
    IkeHash,
    IpsecAttribute,
    IsakmpTransform,
    KeyExchange,
    Message,
    NatD,
    NatOA,
    Nonce,
    Notification,
    Payload,
    Proposal,
    ProtocolId,
    SecurityAssociation,
    Signature,
    Transform,
    UnknownPayload,
    VendorId,
)
from ipsecgw.isakmp.constants import (
    AuthMethod,
    EncapsulationMode,
    EspTransform,
    GroupDescription,
    IpsecAuthAlgorithm,
    LifeType,
)

# ------------------------------------------------------------ plain factories


def ike_transform(
    number: int = 1,
    encryption: int = IkeEncryption.AES_CBC,
    key_length: int | None = 256,
    hash_algorithm: int = IkeHash.SHA2_256,
    auth: int = AuthMethod.PRE_SHARED_KEY,
    group: int = GroupDescription.MODP_2048,
    lifetime: int = 28800,
) -> Transform:
    attributes = [Attribute.make(IkeAttribute.ENCRYPTION_ALGORITHM, encryption)]
    if key_length is not None:
        attributes.append(Attribute.make(IkeAttribute.KEY_LENGTH, key_length))
    attributes += [
        Attribute.make(IkeAttribute.HASH_ALGORITHM, hash_algorithm),
        Attribute.make(IkeAttribute.AUTHENTICATION_METHOD, auth),
        Attribute.make(IkeAttribute.GROUP_DESCRIPTION, group),
        Attribute.make(IkeAttribute.LIFE_TYPE, LifeType.SECONDS),
        Attribute.make(IkeAttribute.LIFE_DURATION, lifetime),
    ]
    return Transform(number, IsakmpTransform.KEY_IKE, tuple(attributes))


def phase1_sa(transforms: int = 4) -> SecurityAssociation:
    """A Main Mode SA offering `transforms` choices in one ISAKMP proposal."""
    choices = [
        (IkeEncryption.AES_CBC, 256, IkeHash.SHA2_256),
        (IkeEncryption.AES_CBC, 128, IkeHash.SHA),
        (IkeEncryption.TRIPLE_DES_CBC, None, IkeHash.SHA),
        (IkeEncryption.DES_CBC, None, IkeHash.MD5),
    ]
    built = tuple(ike_transform(i + 1, *choices[i % len(choices)]) for i in range(transforms))
    return SecurityAssociation(proposals=(Proposal(1, ProtocolId.ISAKMP, b"", built),))


def quick_mode_sa(
    spi: bytes = b"\x12\x34\x56\x78", lifetime_kb: int = 102400
) -> SecurityAssociation:
    attributes = (
        Attribute.make(IpsecAttribute.SA_LIFE_TYPE, LifeType.SECONDS),
        Attribute.make(IpsecAttribute.SA_LIFE_DURATION, 3600),
        Attribute.make(IpsecAttribute.SA_LIFE_TYPE, LifeType.KILOBYTES),
        Attribute.make(IpsecAttribute.SA_LIFE_DURATION, lifetime_kb),
        Attribute.make(IpsecAttribute.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL),
        Attribute.make(IpsecAttribute.AUTHENTICATION_ALGORITHM, IpsecAuthAlgorithm.HMAC_SHA),
        Attribute.make(IpsecAttribute.KEY_LENGTH, 128),
    )
    transform = Transform(1, EspTransform.AES_CBC, attributes)
    return SecurityAssociation(proposals=(Proposal(1, ProtocolId.IPSEC_ESP, spi, (transform,)),))


def main_mode_first_message(transforms: int = 4, vendor_ids: tuple[bytes, ...] = ()) -> Message:
    payloads: tuple[Payload, ...] = (phase1_sa(transforms),) + tuple(
        VendorId(v) for v in vendor_ids
    )
    return Message(os.urandom(8), bytes(8), ExchangeType.IDENTITY_PROTECTION, payloads=payloads)


# ------------------------------------------------------ hypothesis strategies

_u8 = st.integers(0, 0xFF)
_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFFFFFF)
_blob = st.binary(max_size=48)

attributes = st.one_of(
    st.builds(Attribute, type=st.integers(0, 0x7FFF), value=_u16, tv=st.just(True)),
    st.builds(
        Attribute, type=st.integers(0, 0x7FFF), value=st.binary(max_size=24), tv=st.just(False)
    ),
)

transforms = st.builds(
    Transform,
    number=_u8,
    transform_id=_u8,
    attributes=st.lists(attributes, max_size=5).map(tuple),
)

_spi_sizes = {
    ProtocolId.ISAKMP: st.sampled_from([0, 16]),
    ProtocolId.IPSEC_AH: st.just(4),
    ProtocolId.IPSEC_ESP: st.just(4),
    ProtocolId.IPCOMP: st.sampled_from([2, 4]),
}


@st.composite
def proposals(draw: st.DrawFn) -> Proposal:
    protocol_id = draw(
        st.one_of(st.sampled_from(list(ProtocolId)), st.integers(5, 255), st.just(0))
    )
    size = draw(_spi_sizes.get(protocol_id, st.integers(0, 16)))
    spi = draw(st.binary(min_size=size, max_size=size))
    chosen = draw(st.lists(transforms, min_size=1, max_size=4).map(tuple))
    return Proposal(draw(_u8), protocol_id, spi, chosen)


security_associations = st.builds(
    SecurityAssociation,
    doi=st.just(1),
    situation=st.just(1),
    proposals=st.lists(proposals(), min_size=1, max_size=3).map(tuple),
)

_ADDRESS_LENGTHS = {
    IdType.IPV4_ADDR: 4,
    IdType.IPV4_ADDR_SUBNET: 8,
    IdType.IPV4_ADDR_RANGE: 8,
    IdType.IPV6_ADDR: 16,
    IdType.IPV6_ADDR_SUBNET: 32,
    IdType.IPV6_ADDR_RANGE: 32,
}


@st.composite
def identifications(draw: st.DrawFn) -> Identification:
    id_type = draw(st.one_of(st.sampled_from(list(IdType)), _u8))
    size = _ADDRESS_LENGTHS.get(id_type)
    data = draw(_blob if size is None else st.binary(min_size=size, max_size=size))
    return Identification(id_type, draw(_u8), draw(_u16), data)


@st.composite
def deletes(draw: st.DrawFn) -> Delete:
    spi_size = draw(st.integers(0, 16))
    count = draw(st.integers(0, 4)) if spi_size else 0
    spis = tuple(draw(st.binary(min_size=spi_size, max_size=spi_size)) for _ in range(count))
    return Delete(draw(_u32), draw(_u8), spi_size, spis)


@st.composite
def nat_oas(draw: st.DrawFn) -> NatOA:
    id_type = draw(st.sampled_from([IdType.IPV4_ADDR, IdType.IPV6_ADDR]))
    size = 4 if id_type == IdType.IPV4_ADDR else 16
    return NatOA(id_type, draw(st.binary(min_size=size, max_size=size)), draw(st.booleans()))


payloads: st.SearchStrategy[Payload] = st.one_of(
    security_associations,
    st.builds(KeyExchange, _blob),
    identifications(),
    st.builds(Certificate, _u8, _blob),
    st.builds(CertificateRequest, _u8, _blob),
    st.builds(Hash, _blob),
    st.builds(Signature, _blob),
    st.builds(Nonce, _blob),
    st.builds(Notification, _u32, _u8, _u16, st.binary(max_size=16), _blob),
    deletes(),
    st.builds(VendorId, _blob),
    st.builds(NatD, _blob, st.booleans()),
    nat_oas(),
    st.builds(AttributePayload, _u8, _u16, st.lists(attributes, max_size=5).map(tuple)),
    st.builds(UnknownPayload, st.integers(128, 255).filter(lambda t: t not in (130, 131)), _blob),
)

_PHASE1 = [
    ExchangeType.BASE,
    ExchangeType.IDENTITY_PROTECTION,
    ExchangeType.AUTHENTICATION_ONLY,
    ExchangeType.AGGRESSIVE,
]


@st.composite
def messages(draw: st.DrawFn) -> Message:
    exchange_type = draw(st.sampled_from(list(ExchangeType)))
    if exchange_type in _PHASE1:
        message_id = 0
    elif exchange_type == ExchangeType.INFORMATIONAL:
        message_id = draw(_u32)
    else:
        message_id = draw(st.integers(1, 0xFFFFFFFF))
    cookies = st.binary(min_size=8, max_size=8)
    flags = draw(st.integers(0, 7))
    if flags & Flags.ENCRYPTION:
        return Message(
            draw(cookies),
            draw(cookies),
            exchange_type,
            flags,
            message_id,
            encrypted_body=draw(st.binary(max_size=64)),
            first_payload=draw(_u8),
        )
    body = draw(st.lists(payloads, max_size=6).map(tuple))
    return Message(draw(cookies), draw(cookies), exchange_type, flags, message_id, body)
