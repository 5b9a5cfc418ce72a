"""Main Mode and Aggressive Mode (RFC 2409 5), initiator and responder steps.

Each step takes the received message of the state the SA is in and returns
a `Step`: the datagram to send (if any), whether that datagram waits for an
answer (and so is retransmitted), and whether phase 1 is now complete.
Anything wrong raises `NegotiationError`, which the engine turns into
`Phase1Failed` and, where allowed, a Notify.

Main Mode::

    I -> R  MM1  SA, VID*                                   MM_I1 / MM_R1
    R -> I  MM2  SA, VID*
    I -> R  MM3  KE, Ni, [CR], NAT-D, NAT-D                 MM_I2 / MM_R2
    R -> I  MM4  KE, Nr, [CR], NAT-D, NAT-D
    I -> R  MM5* IDii, [CERT], HASH_I|SIG_I, [N(INITIAL-CONTACT)]   MM_I3
    R -> I  MM6* IDir, [CERT], HASH_R|SIG_R

Aggressive Mode::

    I -> R  AM1  SA, KE, Ni, IDii, [CR], VID*               AM_I1 / AM_R1
    R -> I  AM2  SA, KE, Nr, IDir, [CERT], HASH_R|SIG_R, [CR], NAT-D, NAT-D, VID*
    I -> R  AM3* [CERT], HASH_I|SIG_I, NAT-D, NAT-D   (encrypted, as Libreswan and Cisco)

With NAT-T (RFC 3947 4), the initiator moves to port 4500 from MM5 / AM3 on
when NAT-D showed a NAT; the responder follows the port the peer uses.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509

from . import crypto, keymat, natt
from .codec import (
    Certificate,
    CertificateRequest,
    Hash,
    Identification,
    KeyExchange,
    Message,
    NatD,
    Nonce,
    Notification,
    Payload,
    SecurityAssociation,
    Signature,
    VendorId,
)
from .constants import (
    NAT_T_PORT,
    CertEncoding,
    Doi,
    ExchangeType,
    IdType,
    NotifyType,
    ProtocolId,
)
from .errors import AuthenticationFailed, InvalidIdInformation, NegotiationError, PayloadMissing
from .policy import Address, EnginePolicy, Identity, IkeRule
from .proposals import (
    check_ike_reply,
    echo_ike,
    ike_sa_payload,
    select_ike,
)
from .sa import IkeSa, P1State

NONCE_LENGTH = 32


@dataclass(frozen=True)
class Credentials:
    """Our certificate and key and the CAs we trust, loaded once per policy."""

    certificate: x509.Certificate
    private_key: Any
    ca_certificates: tuple[x509.Certificate, ...]


class Phase1Context(Protocol):
    """What the steps need from the engine."""

    policy: EnginePolicy

    def random(self, size: int) -> bytes: ...

    def preshared_key(self, ike: IkeSa, peer_id: Identification | None) -> bytes | None: ...

    def local_identity(self, ike: IkeSa) -> Identification: ...

    def expected_peer_identity(self, ike: IkeSa) -> Identity | None: ...

    def credentials(self) -> Credentials | None: ...


@dataclass(frozen=True)
class Step:
    reply: bytes | None = None
    expect_reply: bool = False
    established: bool = False
    initial_contact: bool = False


def _find(payloads: tuple[Payload, ...], kind: type[Any], what: str) -> Any:
    for payload in payloads:
        if isinstance(payload, kind):
            return payload
    raise PayloadMissing(f"{what} payload missing")


def _natd(payloads: tuple[Payload, ...]) -> list[NatD]:
    return [p for p in payloads if isinstance(p, NatD)]


def _plain(ike: IkeSa, exchange_type: int, payloads: list[Payload]) -> bytes:
    return Message(ike.cookie_i, ike.cookie_r, exchange_type, 0, 0, tuple(payloads)).encode()


# --- shared pieces ----------------------------------------------------------------


def _new_nonce_and_ke(ctx: Phase1Context, ike: IkeSa, group: int) -> tuple[bytes, bytes]:
    try:
        ike.dh = crypto.dh_group(group).generate(ctx.random)
    except crypto.CryptoError as exc:
        raise NegotiationError(exc.notify_type, str(exc)) from None
    return ctx.random(NONCE_LENGTH), ike.dh.public_value


def _cert_request(ctx: Phase1Context, ike: IkeSa) -> list[Payload]:
    if ike.suite is None or ike.suite.authentication != "rsa-sig":
        return []
    credentials = ctx.credentials()
    if credentials is None:
        return [CertificateRequest(CertEncoding.X509_SIGNATURE, b"")]
    return [CertificateRequest(CertEncoding.X509_SIGNATURE, crypto.subject_der(ca))
            for ca in credentials.ca_certificates]


def _natd_out(ctx: Phase1Context, ike: IkeSa) -> list[Payload]:
    if ike.capabilities.nat_t is None:
        return []
    return list(natt.natd_payloads(ike.require_suite().prf, ike.cookies, ike.local, ike.remote,
                                   ike.capabilities.nat_t == "draft"))


def _check_natd(ike: IkeSa, payloads: tuple[Payload, ...], local: Address,
                remote: Address) -> None:
    if ike.capabilities.nat_t is None:
        return
    ike.nat = natt.detect(ike.require_suite().prf, ike.cookies, local, remote, _natd(payloads))
    if ike.nat_detected:
        ike.log.info("NAT detected (local behind NAT: %s, peer behind NAT: %s)",
                     ike.nat.local_behind_nat if ike.nat else False,
                     ike.nat.peer_behind_nat if ike.nat else False)


def _float(ike: IkeSa) -> None:
    """RFC 3947 4: the initiator moves to UDP 4500 once a NAT is detected."""
    if ike.nat_detected and ike.local[1] != NAT_T_PORT:
        ike.local = (ike.local[0], NAT_T_PORT)
        ike.remote = (ike.remote[0], NAT_T_PORT)
        ike.log.debug("floating to port %d", NAT_T_PORT)


def _peer_ke_nonce(ike: IkeSa, payloads: tuple[Payload, ...]) -> tuple[bytes, bytes]:
    ke = _find(payloads, KeyExchange, "KE")
    nonce = _find(payloads, Nonce, "Nonce")
    if not 8 <= len(nonce.data) <= 256:
        raise NegotiationError(NotifyType.PAYLOAD_MALFORMED, "nonce length out of range")
    return ke.data, nonce.data


def _derive_keys(ctx: Phase1Context, ike: IkeSa, peer_public: bytes) -> None:
    suite = ike.require_suite()
    if ike.dh is None:
        raise RuntimeError("no DH key pair")
    try:
        ike.gxy = ike.dh.shared_secret(peer_public)
    except crypto.CryptoError as exc:
        raise NegotiationError(exc.notify_type, str(exc)) from None
    if suite.authentication == "pre-share":
        if ike.psk is None:
            raise AuthenticationFailed(f"no pre-shared key for peer {ike.remote[0]}")
        skeyid = keymat.skeyid_psk(suite.prf, ike.psk, ike.ni, ike.nr)
    else:
        skeyid = keymat.skeyid_sig(suite.prf, ike.ni, ike.nr, ike.gxy)
    try:
        ike.keys = keymat.derive_phase1(suite.prf, suite.encryption, suite.key_length, skeyid,
                                        ike.gxy, ike.cookie_i, ike.cookie_r, ike.gxi, ike.gxr)
    except crypto.CryptoError as exc:
        raise NegotiationError(exc.notify_type, str(exc)) from None
    ike.iv = ike.keys.iv


def _our_hash(ike: IkeSa, id_payload: Identification) -> bytes:
    suite, keys = ike.require_suite(), ike.require_keys()
    if ike.role.value == "initiator":
        return keymat.hash_i(suite.prf, keys.skeyid, ike.gxi, ike.gxr, ike.cookie_i,
                             ike.cookie_r, ike.sai_b, id_payload.encode_body())
    return keymat.hash_r(suite.prf, keys.skeyid, ike.gxr, ike.gxi, ike.cookie_r, ike.cookie_i,
                         ike.sai_b, id_payload.encode_body())


def _peer_hash(ike: IkeSa, id_payload: Identification) -> bytes:
    suite, keys = ike.require_suite(), ike.require_keys()
    if ike.role.value == "initiator":
        return keymat.hash_r(suite.prf, keys.skeyid, ike.gxr, ike.gxi, ike.cookie_r,
                             ike.cookie_i, ike.sai_b, id_payload.encode_body())
    return keymat.hash_i(suite.prf, keys.skeyid, ike.gxi, ike.gxr, ike.cookie_i, ike.cookie_r,
                         ike.sai_b, id_payload.encode_body())


def _auth_payloads(ctx: Phase1Context, ike: IkeSa, id_payload: Identification) -> list[Payload]:
    value = _our_hash(ike, id_payload)
    if ike.require_suite().authentication == "pre-share":
        return [Hash(value)]
    credentials = ctx.credentials()
    if credentials is None:
        raise AuthenticationFailed("rsa-sig configured but no local certificate and key")
    return [Certificate(CertEncoding.X509_SIGNATURE, crypto.certificate_der(credentials.certificate)),
            Signature(crypto.rsa_sign(credentials.private_key, value))]


def identity_matches(identity: Identity, payload: Identification) -> bool:
    """Whether a received ID payload is the configured identity."""
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


def identity_string(payload: Identification) -> str:
    """A printable identity: an address, a name, or an RFC 4514 DN."""
    if payload.id_type in (IdType.FQDN, IdType.USER_FQDN):
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


# cryptography parses a Name only inside a certificate, so the DER of an
# ID_DER_ASN1_DN is read here with the small ASN.1 subset a Name uses
# (X.501: SEQUENCE OF SET OF SEQUENCE { OID, string }).


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


def _id_matches_certificate(payload: Identification, certificate: x509.Certificate) -> bool:
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


def _verify_peer(ctx: Phase1Context, ike: IkeSa, payloads: tuple[Payload, ...],
                 id_payload: Identification) -> None:
    """Check the peer's identity and its HASH or SIG (RFC 2409 5.1, 5.4)."""
    expected_identity = ctx.expected_peer_identity(ike)
    if expected_identity is not None and not identity_matches(expected_identity, id_payload):
        raise InvalidIdInformation(
            f"peer identity {identity_string(id_payload)!r} is not {expected_identity}")
    value = _peer_hash(ike, id_payload)
    if ike.require_suite().authentication == "pre-share":
        received = _find(payloads, Hash, "HASH")
        if not hmac.compare_digest(received.data, value):
            raise AuthenticationFailed("HASH mismatch (pre-shared key differs?)")
        return
    credentials = ctx.credentials()
    if credentials is None:
        raise AuthenticationFailed("rsa-sig configured but no CA certificates")
    certificates = [p for p in payloads
                    if isinstance(p, Certificate) and p.encoding == CertEncoding.X509_SIGNATURE]
    if not certificates:
        raise AuthenticationFailed("peer sent no X.509 certificate")
    try:
        certificate = crypto.load_certificate(certificates[0].data)
        crypto.verify_certificate_chain(certificate, credentials.ca_certificates)
        public_key = crypto.certificate_public_key(certificate)
    except crypto.CryptoError as exc:
        raise NegotiationError(exc.notify_type, str(exc)) from None
    if not _id_matches_certificate(id_payload, certificate):
        raise InvalidIdInformation(
            f"peer identity {identity_string(id_payload)!r} is not in its certificate")
    signature = _find(payloads, Signature, "SIG")
    if not crypto.rsa_verify(public_key, signature.data, value):
        raise AuthenticationFailed("RSA signature does not verify")
    ike.peer_cert = certificate


def _has_initial_contact(payloads: tuple[Payload, ...]) -> bool:
    return any(isinstance(p, Notification) and p.notify_type == NotifyType.INITIAL_CONTACT
               for p in payloads)


def _initial_contact(ike: IkeSa) -> list[Payload]:
    if not ike.send_initial_contact:
        return []
    return [Notification(Doi.IPSEC, ProtocolId.ISAKMP, NotifyType.INITIAL_CONTACT, ike.cookies)]


def _responder_choose(ctx: Phase1Context, ike: IkeSa, sa: SecurityAssociation,
                      vendor_ids: list[VendorId]) -> SecurityAssociation:
    rules: tuple[IkeRule, ...] = ctx.policy.rules_by_priority()
    suite, transform, _rule = select_ike(sa, rules, ike.exchange)
    ike.suite = suite
    ike.sai_b = sa.encode_body()
    ike.capabilities = natt.peer_capabilities(vendor_ids, ctx.policy.nat_t)
    return echo_ike(sa.proposals[0].number, transform)


# --- Main Mode --------------------------------------------------------------------


def main_mode_start(ctx: Phase1Context, ike: IkeSa) -> Step:
    sa = ike_sa_payload(ike.offered)
    ike.sai_b = sa.encode_body()
    ike.state = P1State.MM_I1
    payloads: list[Payload] = [sa, *natt.our_vendor_ids(ctx.policy.nat_t)]
    return Step(_plain(ike, ExchangeType.IDENTITY_PROTECTION, payloads), expect_reply=True)


def main_mode_r1(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    sa = _find(message.payloads, SecurityAssociation, "SA")
    reply_sa = _responder_choose(ctx, ike, sa, message.find_all(VendorId))
    ike.state = P1State.MM_R1
    payloads: list[Payload] = [reply_sa, *natt.responder_vendor_ids(ike.capabilities)]
    return Step(_plain(ike, ExchangeType.IDENTITY_PROTECTION, payloads), expect_reply=True)


def _main_mode_i2(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    sa = _find(message.payloads, SecurityAssociation, "SA")
    ike.suite = check_ike_reply(sa, ike.offered)
    ike.capabilities = natt.peer_capabilities(message.find_all(VendorId), ctx.policy.nat_t)
    ike.ni, ike.gxi = _new_nonce_and_ke(ctx, ike, ike.suite.group)
    payloads: list[Payload] = [KeyExchange(ike.gxi), Nonce(ike.ni), *_cert_request(ctx, ike),
                               *_natd_out(ctx, ike)]
    ike.state = P1State.MM_I2
    return Step(_plain(ike, ExchangeType.IDENTITY_PROTECTION, payloads), expect_reply=True)


def _main_mode_r2(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    ike.gxi, ike.ni = _peer_ke_nonce(ike, message.payloads)
    ike.nr, ike.gxr = _new_nonce_and_ke(ctx, ike, ike.require_suite().group)
    _check_natd(ike, message.payloads, ike.local, ike.remote)
    if ike.require_suite().authentication == "pre-share":
        ike.psk = ctx.preshared_key(ike, None)
    _derive_keys(ctx, ike, ike.gxi)
    payloads: list[Payload] = [KeyExchange(ike.gxr), Nonce(ike.nr), *_cert_request(ctx, ike),
                               *_natd_out(ctx, ike)]
    ike.state = P1State.MM_R2
    return Step(_plain(ike, ExchangeType.IDENTITY_PROTECTION, payloads), expect_reply=True)


def _main_mode_i3(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    ike.gxr, ike.nr = _peer_ke_nonce(ike, message.payloads)
    _check_natd(ike, message.payloads, ike.local, ike.remote)
    if ike.require_suite().authentication == "pre-share":
        ike.psk = ctx.preshared_key(ike, None)
    _derive_keys(ctx, ike, ike.gxr)
    _float(ike)
    ike.local_id = ctx.local_identity(ike)
    payloads: list[Payload] = [ike.local_id, *_auth_payloads(ctx, ike, ike.local_id),
                               *_initial_contact(ike)]
    datagram, ike.iv = ike.encrypt(ExchangeType.IDENTITY_PROTECTION, 0, payloads, ike.iv)
    ike.state = P1State.MM_I3
    return Step(datagram, expect_reply=True)


def _main_mode_r3(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    payloads, ike.iv = ike.decrypt(message, ike.iv)
    ike.peer_id = _find(payloads, Identification, "ID")
    _verify_peer(ctx, ike, payloads, ike.peer_id)
    ike.local_id = ctx.local_identity(ike)
    reply: list[Payload] = [ike.local_id, *_auth_payloads(ctx, ike, ike.local_id)]
    datagram, ike.iv = ike.encrypt(ExchangeType.IDENTITY_PROTECTION, 0, reply, ike.iv)
    ike.state = P1State.ESTABLISHED
    return Step(datagram, established=True, initial_contact=_has_initial_contact(payloads))


def _main_mode_i4(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    payloads, ike.iv = ike.decrypt(message, ike.iv)
    ike.peer_id = _find(payloads, Identification, "ID")
    _verify_peer(ctx, ike, payloads, ike.peer_id)
    ike.state = P1State.ESTABLISHED
    return Step(established=True, initial_contact=_has_initial_contact(payloads))


# --- Aggressive Mode ----------------------------------------------------------------


def aggressive_mode_start(ctx: Phase1Context, ike: IkeSa) -> Step:
    sa = ike_sa_payload(ike.offered)
    ike.sai_b = sa.encode_body()
    ike.suite = ike.offered[0]  # all offered suites share the group (policy.py)
    ike.ni, ike.gxi = _new_nonce_and_ke(ctx, ike, ike.suite.group)
    ike.local_id = ctx.local_identity(ike)
    payloads: list[Payload] = [sa, KeyExchange(ike.gxi), Nonce(ike.ni), ike.local_id,
                               *_cert_request(ctx, ike), *natt.our_vendor_ids(ctx.policy.nat_t)]
    ike.suite = None
    ike.state = P1State.AM_I1
    return Step(_plain(ike, ExchangeType.AGGRESSIVE, payloads), expect_reply=True)


def aggressive_mode_r1(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    sa = _find(message.payloads, SecurityAssociation, "SA")
    reply_sa = _responder_choose(ctx, ike, sa, message.find_all(VendorId))
    ike.gxi, ike.ni = _peer_ke_nonce(ike, message.payloads)
    ike.peer_id = _find(message.payloads, Identification, "ID")
    ike.nr, ike.gxr = _new_nonce_and_ke(ctx, ike, ike.require_suite().group)
    if ike.require_suite().authentication == "pre-share":
        ike.psk = ctx.preshared_key(ike, ike.peer_id)
    _derive_keys(ctx, ike, ike.gxi)
    ike.local_id = ctx.local_identity(ike)
    payloads: list[Payload] = [
        reply_sa, KeyExchange(ike.gxr), Nonce(ike.nr), ike.local_id,
        *_auth_payloads(ctx, ike, ike.local_id), *_cert_request(ctx, ike),
        *_natd_out(ctx, ike), *natt.responder_vendor_ids(ike.capabilities),
    ]
    ike.state = P1State.AM_R1
    return Step(_plain(ike, ExchangeType.AGGRESSIVE, payloads), expect_reply=True)


def _aggressive_mode_i2(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    sa = _find(message.payloads, SecurityAssociation, "SA")
    ike.suite = check_ike_reply(sa, ike.offered)
    ike.capabilities = natt.peer_capabilities(message.find_all(VendorId), ctx.policy.nat_t)
    ike.gxr, ike.nr = _peer_ke_nonce(ike, message.payloads)
    ike.peer_id = _find(message.payloads, Identification, "ID")
    if ike.suite.authentication == "pre-share":
        ike.psk = ctx.preshared_key(ike, ike.peer_id)
    _derive_keys(ctx, ike, ike.gxr)
    _verify_peer(ctx, ike, message.payloads, ike.peer_id)
    _check_natd(ike, message.payloads, ike.local, ike.remote)
    if ike.local_id is None:
        raise RuntimeError("aggressive mode initiator without identity")
    # NAT-D describes the addresses of the exchange so far (port 500), which is
    # what the responder compares them with.
    payloads: list[Payload] = [*_auth_payloads(ctx, ike, ike.local_id), *_natd_out(ctx, ike)]
    _float(ike)
    # Sent encrypted, as Libreswan and Cisco do (RFC 2409 shows it in the
    # clear, which leaves the first phase 2 IV ambiguous: Libreswan takes the
    # whole hash(g^xi | g^xr), strongSwan its first block). Encrypted, both
    # ends chain from its last ciphertext block; strongSwan accepts either.
    datagram, ike.iv = ike.encrypt(ExchangeType.AGGRESSIVE, 0, payloads, ike.iv)
    ike.state = P1State.ESTABLISHED
    return Step(datagram, established=True)


def _aggressive_mode_r2(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    payloads = message.payloads
    if message.encrypted_body is not None:
        payloads, ike.iv = ike.decrypt(message, ike.iv)
    if ike.peer_id is None:
        raise RuntimeError("aggressive mode responder without peer identity")
    _check_natd(ike, payloads, ike.local, ike.remote)
    _verify_peer(ctx, ike, payloads, ike.peer_id)
    ike.state = P1State.ESTABLISHED
    return Step(established=True)


#: (state, exchange type) -> the step that consumes the next message.  Anything
#: else is a message this SA does not expect and is dropped.
Handler = Callable[[Phase1Context, IkeSa, Message], Step]
TRANSITIONS: dict[tuple[P1State, int], Handler] = {
    (P1State.MM_I1, ExchangeType.IDENTITY_PROTECTION): _main_mode_i2,
    (P1State.MM_I2, ExchangeType.IDENTITY_PROTECTION): _main_mode_i3,
    (P1State.MM_I3, ExchangeType.IDENTITY_PROTECTION): _main_mode_i4,
    (P1State.MM_R1, ExchangeType.IDENTITY_PROTECTION): _main_mode_r2,
    (P1State.MM_R2, ExchangeType.IDENTITY_PROTECTION): _main_mode_r3,
    (P1State.AM_I1, ExchangeType.AGGRESSIVE): _aggressive_mode_i2,
    (P1State.AM_R1, ExchangeType.AGGRESSIVE): _aggressive_mode_r2,
}

#: States whose expected message is encrypted.
ENCRYPTED_STATES = frozenset({P1State.MM_I3, P1State.MM_R2})
