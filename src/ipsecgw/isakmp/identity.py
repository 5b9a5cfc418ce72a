"""Phase 1 identities (RFC 2407 4.6.2): configured identities, ID payloads, certificates.

Matching a received ID payload against the configured identity or the peer's
certificate (RFC 4945 3.1), printing one, and building ours from the
configuration.  cryptography parses an X.501 Name only inside a certificate,
so the DER of an ID_DER_ASN1_DN is read here with the small ASN.1 subset a
Name uses (SEQUENCE OF SET OF SEQUENCE { OID, string }).
"""

from __future__ import annotations

from cryptography import x509

from . import crypto
from .codec import Identification
from .constants import IdType
from .policy import Identity, IdentityKind, IdentityPattern


def identification(identity: Identity) -> Identification:
    """The ID payload that states a configured identity."""
    if identity.kind == "address":
        return Identification.address(identity.value)
    if identity.kind == "domain-name":
        return Identification.fqdn(identity.value)
    if identity.kind == "user-fqdn":
        return Identification.user_fqdn(identity.value)
    if identity.kind == "key-id":
        return Identification.key_id(identity.value.encode())
    return Identification.der_asn1_dn(x509.Name.from_rfc4514_string(identity.value).public_bytes())


def identity_matches(identity: Identity | IdentityPattern, payload: Identification) -> bool:
    """Whether a received ID payload is the configured identity (or fits a
    tunnel profile's pattern)."""
    if isinstance(identity, IdentityPattern):
        received = payload_identity(payload)
        return received is not None and identity.matches(received)
    if identity.kind == "key-id":
        return payload.id_type == IdType.KEY_ID and payload.data == identity.value.encode()
    if identity.kind == "address":
        try:
            expected = Identification.address(identity.value)
        except ValueError:
            return False
        return (payload.id_type, payload.data) == (expected.id_type, expected.data)
    if identity.kind in ("domain-name", "user-fqdn"):
        id_type = IdType.FQDN if identity.kind == "domain-name" else IdType.USER_FQDN
        return payload.id_type == id_type and payload.data.decode("ascii", "replace").lower() \
            == identity.value.lower()
    if payload.id_type != IdType.DER_ASN1_DN:
        return False
    try:
        return x509.Name.from_rfc4514_string(identity.value) == _asn1_name(payload.data)
    except (ValueError, IndexError):
        return False


_KINDS: dict[int, IdentityKind] = {
    IdType.FQDN: "domain-name", IdType.USER_FQDN: "user-fqdn", IdType.DER_ASN1_DN: "asn1-dn",
    IdType.KEY_ID: "key-id", IdType.IPV4_ADDR: "address", IdType.IPV6_ADDR: "address",
}


def payload_identity(payload: Identification) -> Identity | None:
    """A received ID payload as a configured identity would state it (None for
    the kinds a configuration cannot name: subnets, ranges, DER_ASN1_GN)."""
    kind = _KINDS.get(payload.id_type)
    return None if kind is None else Identity(kind, identity_string(payload))


def identity_string(payload: Identification) -> str:
    """A printable identity: an address, a name, a key-id, or an RFC 4514 DN."""
    if payload.id_type in (IdType.FQDN, IdType.USER_FQDN, IdType.KEY_ID):
        return payload.data.decode("ascii", "replace")
    if payload.id_type == IdType.DER_ASN1_DN:
        try:
            return _asn1_name(payload.data).rfc4514_string()
        except (ValueError, IndexError):
            return payload.data.hex()
    covered = payload.to_address_range()
    if covered is not None and covered[0] == covered[1]:
        return str(covered[0])
    return payload.data.hex()


def _asn1_len(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4 or pos + 1 + count > len(data):
        raise ValueError("bad DER length")
    return int.from_bytes(data[pos + 1:pos + 1 + count], "big"), pos + 1 + count


def _asn1_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[pos]
    length, start = _asn1_len(data, pos + 1)
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[start:end], end


def _asn1_oid(body: bytes) -> str:
    if not body:
        raise ValueError("empty OID")
    parts = [body[0] // 40, body[0] % 40]
    value = 0
    for octet in body[1:]:
        value = value << 7 | (octet & 0x7F)
        if not octet & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(part) for part in parts)


def _asn1_name(der: bytes) -> x509.Name:
    tag, body, end = _asn1_tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("not a DER Name")
    rdns = []
    pos = 0
    while pos < len(body):
        tag, rdn_body, pos = _asn1_tlv(body, pos)
        if tag != 0x31:
            raise ValueError("not an RDN SET")
        attributes = []
        inner = 0
        while inner < len(rdn_body):
            tag, atv, inner = _asn1_tlv(rdn_body, inner)
            oid_tag, oid_body, rest = _asn1_tlv(atv, 0)
            value_tag, value_body, _ = _asn1_tlv(atv, rest)
            if tag != 0x30 or oid_tag != 0x06:
                raise ValueError("bad AttributeTypeAndValue")
            text = value_body.decode("utf-16-be" if value_tag == 0x1E else "utf-8", "replace")
            attributes.append(x509.NameAttribute(x509.ObjectIdentifier(_asn1_oid(oid_body)),
                                                 text))
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


def id_matches_certificate(payload: Identification, certificate: x509.Certificate) -> bool:
    """RFC 4945 3.1: the ID must name the certificate's subject or a subjectAltName."""
    names = crypto.subject_alt_names(certificate)
    if payload.id_type == IdType.DER_ASN1_DN:
        if payload.data == crypto.subject_der(certificate):
            return True
        try:
            return _asn1_name(payload.data) == certificate.subject
        except (ValueError, IndexError):
            return False
    if payload.id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
        return payload.data in names.ip_addresses
    if payload.id_type == IdType.FQDN:
        return payload.data.decode("ascii", "replace").lower() in (
            name.lower() for name in names.dns_names)
    if payload.id_type == IdType.USER_FQDN:
        return payload.data.decode("ascii", "replace").lower() in (
            name.lower() for name in names.emails)
    return False
