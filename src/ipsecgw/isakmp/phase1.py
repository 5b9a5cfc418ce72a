"""What Main Mode and Aggressive Mode share (RFC 2409 5): the step contract and its pieces.

The exchanges themselves are main_mode.py and aggressive_mode.py.  Each step
takes the received message of the state the SA is in and returns a `Step`:
the datagram to send (if any), whether that datagram waits for an answer
(and so is retransmitted), and whether phase 1 is now complete.  Anything
wrong raises `NegotiationError`, which the engine turns into `Phase1Failed`
and, where allowed, a Notify.  Identities are identity.py's.

With NAT-T (RFC 3947 4), the initiator moves to port 4500 from MM5 / AM3 on
when NAT-D showed a NAT; the responder follows the port the peer uses.
"""

from __future__ import annotations

import datetime
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
    NotifyType,
    ProtocolId,
)
from .errors import AuthenticationFailed, InvalidIdInformation, NegotiationError, PayloadMissing
from .identity import id_matches_certificate, identity_matches, identity_string
from .policy import Address, EnginePolicy, Identity, IdentityPattern, IkeRule
from .proposals import (
    echo_ike,
    select_ike,
)
from .sa import IkeSa

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

    def expected_peer_identity(self, ike: IkeSa) -> Identity | IdentityPattern | None: ...

    def credentials(self) -> Credentials | None: ...

    def wall_clock(self) -> datetime.datetime:
        """Wall-clock time now, for certificate validity (the engine's `now` is
        monotonic; see `Engine.wall_offset`)."""
        ...


@dataclass(frozen=True)
class Step:
    """`expect_reply`: the reply is retransmitted until answered.  A responder's
    answer to a first message (MM2, AM2) never is: until the peer's next
    message shows that it receives at its address, the peer may be spoofed,
    and we send no more than we received (a peer that lost MM2 repeats MM1
    and gets it again from the reply cache; docs/DECISIONS.md)."""

    reply: bytes | None = None
    expect_reply: bool = False
    established: bool = False
    initial_contact: bool = False


def find_payload(payloads: tuple[Payload, ...], kind: type[Any], what: str) -> Any:
    for payload in payloads:
        if isinstance(payload, kind):
            return payload
    raise PayloadMissing(f"{what} payload missing")


def _natd(payloads: tuple[Payload, ...]) -> list[NatD]:
    return [p for p in payloads if isinstance(p, NatD)]


def plain(ike: IkeSa, exchange_type: int, payloads: list[Payload]) -> bytes:
    return Message(ike.cookie_i, ike.cookie_r, exchange_type, 0, 0, tuple(payloads)).encode()


# --- shared pieces ----------------------------------------------------------------


def new_nonce_and_ke(ctx: Phase1Context, ike: IkeSa, group: int) -> tuple[bytes, bytes]:
    ike.dh = crypto.dh_group(group).generate(ctx.random)
    return ctx.random(NONCE_LENGTH), ike.dh.public_value


def cert_request(ctx: Phase1Context, ike: IkeSa) -> list[Payload]:
    if ike.suite is None or ike.suite.authentication != "rsa-sig":
        return []
    credentials = ctx.credentials()
    if credentials is None:
        return [CertificateRequest(CertEncoding.X509_SIGNATURE, b"")]
    return [CertificateRequest(CertEncoding.X509_SIGNATURE, crypto.subject_der(ca))
            for ca in credentials.ca_certificates]


def natd_out(ctx: Phase1Context, ike: IkeSa) -> list[Payload]:
    if ike.capabilities.nat_t is None:
        return []
    return list(natt.natd_payloads(ike.require_suite().prf, ike.cookies, ike.local, ike.remote,
                                   ike.capabilities.nat_t == "draft"))


def check_natd(ike: IkeSa, payloads: tuple[Payload, ...], local: Address,
                remote: Address) -> None:
    if ike.capabilities.nat_t is None:
        return
    ike.nat = natt.detect(ike.require_suite().prf, ike.cookies, local, remote, _natd(payloads))
    if ike.nat_detected:
        ike.log.info("NAT detected (local behind NAT: %s, peer behind NAT: %s)",
                     ike.nat.local_behind_nat if ike.nat else False,
                     ike.nat.peer_behind_nat if ike.nat else False)


def float_to_nat_t(ike: IkeSa) -> None:
    """RFC 3947 4: the initiator moves to UDP 4500 once a NAT is detected."""
    if ike.nat_detected and ike.local[1] != NAT_T_PORT:
        ike.local = (ike.local[0], NAT_T_PORT)
        ike.remote = (ike.remote[0], NAT_T_PORT)
        ike.log.debug("floating to port %d", NAT_T_PORT)


def peer_ke_nonce(ike: IkeSa, payloads: tuple[Payload, ...]) -> tuple[bytes, bytes]:
    ke = find_payload(payloads, KeyExchange, "KE")
    nonce = find_payload(payloads, Nonce, "Nonce")
    if not 8 <= len(nonce.data) <= 256:
        raise NegotiationError(NotifyType.PAYLOAD_MALFORMED, "nonce length out of range")
    return ke.data, nonce.data


def derive_keys(ctx: Phase1Context, ike: IkeSa, peer_public: bytes) -> None:
    suite = ike.require_suite()
    if ike.dh is None:
        raise RuntimeError("no DH key pair")
    ike.gxy = ike.dh.shared_secret(peer_public)
    if suite.authentication == "pre-share":
        if ike.psk is None:
            raise AuthenticationFailed(f"no pre-shared key for peer {ike.remote[0]}")
        skeyid = keymat.skeyid_psk(suite.prf, ike.psk, ike.ni, ike.nr)
    else:
        skeyid = keymat.skeyid_sig(suite.prf, ike.ni, ike.nr, ike.gxy)
    ike.keys = keymat.derive_phase1(suite.prf, suite.encryption, suite.key_length, skeyid,
                                    ike.gxy, ike.cookie_i, ike.cookie_r, ike.gxi, ike.gxr)
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


def auth_payloads(ctx: Phase1Context, ike: IkeSa, id_payload: Identification) -> list[Payload]:
    value = _our_hash(ike, id_payload)
    if ike.require_suite().authentication == "pre-share":
        return [Hash(value)]
    credentials = ctx.credentials()
    if credentials is None:
        raise AuthenticationFailed("rsa-sig configured but no local certificate and key")
    return [Certificate(CertEncoding.X509_SIGNATURE, crypto.certificate_der(credentials.certificate)),
            Signature(crypto.rsa_sign(credentials.private_key, value))]


def verify_peer(ctx: Phase1Context, ike: IkeSa, payloads: tuple[Payload, ...],
                 id_payload: Identification) -> None:
    """Check the peer's identity and its HASH or SIG (RFC 2409 5.1, 5.4)."""
    expected_identity = ctx.expected_peer_identity(ike)
    if expected_identity is not None and not identity_matches(expected_identity, id_payload):
        raise InvalidIdInformation(
            f"peer identity {identity_string(id_payload)!r} is not {expected_identity}")
    value = _peer_hash(ike, id_payload)
    if ike.require_suite().authentication == "pre-share":
        received = find_payload(payloads, Hash, "HASH")
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
    certificate = crypto.load_certificate(certificates[0].data)
    crypto.verify_certificate_chain(certificate, credentials.ca_certificates, ctx.wall_clock())
    public_key = crypto.certificate_public_key(certificate)
    if not id_matches_certificate(id_payload, certificate):
        raise InvalidIdInformation(
            f"peer identity {identity_string(id_payload)!r} is not in its certificate")
    signature = find_payload(payloads, Signature, "SIG")
    if not crypto.rsa_verify(public_key, signature.data, value):
        raise AuthenticationFailed("RSA signature does not verify")
    ike.peer_cert = certificate


def has_initial_contact(payloads: tuple[Payload, ...]) -> bool:
    return any(isinstance(p, Notification) and p.notify_type == NotifyType.INITIAL_CONTACT
               for p in payloads)


def initial_contact_payloads(ike: IkeSa) -> list[Payload]:
    if not ike.send_initial_contact:
        return []
    return [Notification(Doi.IPSEC, ProtocolId.ISAKMP, NotifyType.INITIAL_CONTACT, ike.cookies)]


def responder_choose(ctx: Phase1Context, ike: IkeSa, sa: SecurityAssociation,
                      vendor_ids: list[VendorId]) -> SecurityAssociation:
    rules: tuple[IkeRule, ...] = ctx.policy.rules_by_priority()
    # XAUTH authentication methods only for a subscriber (a tunnel profile's
    # client): a site-to-site peer proposing them would wait for an XAUTH
    # exchange that never comes.
    suite, transform, _rule = select_ike(sa, rules, ike.exchange,
                                         xauth=ike.profile is not None)
    ike.suite = suite
    ike.sai_b = sa.encode_body()
    ike.capabilities = natt.peer_capabilities(vendor_ids, ctx.policy.nat_t)
    return echo_ike(sa.proposals[0].number, transform)


#: A step: the SA in the state that waits for `message` consumes it.
Handler = Callable[[Phase1Context, IkeSa, Message], Step]
