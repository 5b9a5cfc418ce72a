"""Local policy -> SA payloads, and choosing among a peer's offers.

Phase 1 (RFC 2409 5 and Appendix A): every IKE policy rule becomes one
transform of a single ISAKMP proposal, in priority order, as strongSwan
offers them; the responder takes the first transform, in the initiator's
order, that equals one of its rules.

Phase 2 (RFC 2407 4.5): every transform of the tunnel's transform set becomes
its own proposal (one transform each, proposal numbers 1..n: alternatives,
RFC 2408 4.2), in priority order; the responder takes the first acceptable
one.  Proposals that share a number (AH+ESP bundles) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .codec import Attribute, Proposal, SecurityAssociation, Transform
from .constants import (
    AhTransform,
    AuthMethod,
    Doi,
    EncapsulationMode,
    EspTransform,
    IkeAttribute,
    IkeEncryption,
    IkeHash,
    IpsecAttribute,
    IpsecAuthAlgorithm,
    IsakmpTransform,
    LifeType,
    ProtocolId,
    Situation,
)
from .errors import NoProposalChosen
from .events import EncryptionName, IntegrityName
from .policy import IkeRule

# --- phase 1 --------------------------------------------------------------------

_IKE_CIPHERS: dict[str, tuple[int, int | None]] = {
    "des": (IkeEncryption.DES_CBC, None),
    "3des": (IkeEncryption.TRIPLE_DES_CBC, None),
    "aes128": (IkeEncryption.AES_CBC, 128),
    "aes192": (IkeEncryption.AES_CBC, 192),
    "aes256": (IkeEncryption.AES_CBC, 256),
}
_IKE_HASHES: dict[str, tuple[int, str]] = {
    "md5": (IkeHash.MD5, "md5"),
    "sha": (IkeHash.SHA, "sha1"),
    "sha256": (IkeHash.SHA2_256, "sha256"),
    "sha384": (IkeHash.SHA2_384, "sha384"),
    "sha512": (IkeHash.SHA2_512, "sha512"),
}
_IKE_AUTH: dict[str, int] = {
    "pre-share": AuthMethod.PRE_SHARED_KEY,
    "rsa-sig": AuthMethod.RSA_SIGNATURES,
}
_XAUTH_AUTH: dict[str, int] = {
    "pre-share": AuthMethod.XAUTH_INIT_PRESHARED,
    "rsa-sig": AuthMethod.XAUTH_INIT_RSA,
}
#: RFC 2407 4.5 / RFC 2409 Appendix A: the lifetime when none is proposed.
DEFAULT_LIFETIME_SECONDS = 28800


@dataclass(frozen=True)
class IkeSuite:
    """A phase 1 transform in the engine's terms.

    `encryption` / `hash` / `authentication` are CLI names ("aes256", "sha",
    "pre-share"); `prf` is the crypto module's hash name ("sha1").
    """

    encryption: str
    hash: str
    authentication: str
    group: int
    lifetime_seconds: int
    #: The method is its XAUTH variant (draft-beaulieu-ike-xauth-02 7.2), which
    #: authenticates phase 1 as `authentication` does; XAUTH follows it.
    xauth: bool = False

    @property
    def prf(self) -> str:
        return _IKE_HASHES[self.hash][1]

    @property
    def key_length(self) -> int:
        """Cipher key length in octets."""
        return {"des": 8, "3des": 24, "aes128": 16, "aes192": 24, "aes256": 32}[self.encryption]

    def matches(self, rule: IkeRule) -> bool:
        return (
            self.encryption == rule.encryption
            and self.hash == rule.hash
            and self.authentication == rule.authentication
            and self.group == rule.group
        )

    @classmethod
    def from_rule(cls, rule: IkeRule) -> IkeSuite:
        return cls(rule.encryption, rule.hash, rule.authentication, rule.group,
                   rule.lifetime_seconds)


def ike_transform(suite: IkeSuite, number: int) -> Transform:
    cipher_id, key_bits = _IKE_CIPHERS[suite.encryption]
    attributes = [Attribute.make(IkeAttribute.ENCRYPTION_ALGORITHM, cipher_id)]
    if key_bits is not None:
        attributes.append(Attribute.make(IkeAttribute.KEY_LENGTH, key_bits))
    attributes += [
        Attribute.make(IkeAttribute.HASH_ALGORITHM, _IKE_HASHES[suite.hash][0]),
        Attribute.make(IkeAttribute.AUTHENTICATION_METHOD,
                       (_XAUTH_AUTH if suite.xauth else _IKE_AUTH)[suite.authentication]),
        Attribute.make(IkeAttribute.GROUP_DESCRIPTION, suite.group),
        Attribute.make(IkeAttribute.LIFE_TYPE, LifeType.SECONDS),
        # A 4-octet TLV as strongSwan sends it, whatever the value.
        Attribute(IkeAttribute.LIFE_DURATION, suite.lifetime_seconds.to_bytes(4, "big"), False),
    ]
    return Transform(number, IsakmpTransform.KEY_IKE, tuple(attributes))


def ike_sa_payload(suites: Sequence[IkeSuite]) -> SecurityAssociation:
    """One ISAKMP proposal whose transforms are the suites in priority order."""
    transforms = tuple(ike_transform(suite, number) for number, suite in enumerate(suites, 1))
    return SecurityAssociation(
        Doi.IPSEC, Situation.IDENTITY_ONLY, (Proposal(1, ProtocolId.ISAKMP, b"", transforms),)
    )


def _lifetimes(attributes: Iterable[Attribute], type_attr: int,
               duration_attr: int) -> dict[int, int]:
    """RFC 2407 4.5: each Life Type is followed by its Life Duration."""
    lifetimes: dict[int, int] = {}
    life_type: int | None = None
    for attribute in attributes:
        if attribute.type == type_attr:
            life_type = attribute.as_int()
        elif attribute.type == duration_attr and life_type is not None:
            lifetimes[life_type] = attribute.as_int()
            life_type = None
    return lifetimes


def parse_ike_transform(transform: Transform) -> IkeSuite | None:
    """The suite a peer's phase 1 transform describes, None if we cannot do it."""
    if transform.transform_id != IsakmpTransform.KEY_IKE:
        return None
    values = {a.type: a.as_int() for a in transform.attributes}
    cipher = values.get(IkeAttribute.ENCRYPTION_ALGORITHM)
    key_bits = values.get(IkeAttribute.KEY_LENGTH)
    if cipher == IkeEncryption.AES_CBC and key_bits is None:
        key_bits = 128
    encryption = next((n for n, v in _IKE_CIPHERS.items() if v == (cipher, key_bits)), None)
    hash_name = next(
        (n for n, v in _IKE_HASHES.items() if v[0] == values.get(IkeAttribute.HASH_ALGORITHM)),
        None,
    )
    method = values.get(IkeAttribute.AUTHENTICATION_METHOD)
    authentication = next((n for n, v in _IKE_AUTH.items() if v == method), None)
    xauth = authentication is None
    if xauth:
        authentication = next((n for n, v in _XAUTH_AUTH.items() if v == method), None)
    group = values.get(IkeAttribute.GROUP_DESCRIPTION)
    if encryption is None or hash_name is None or authentication is None or group is None:
        return None
    if IkeAttribute.PRF in values or IkeAttribute.GROUP_TYPE in values:
        return None  # RFC 2409 Appendix A: private prfs and groups are not supported
    lifetimes = _lifetimes(transform.attributes, IkeAttribute.LIFE_TYPE, IkeAttribute.LIFE_DURATION)
    lifetime = lifetimes.get(LifeType.SECONDS, DEFAULT_LIFETIME_SECONDS)
    return IkeSuite(encryption, hash_name, authentication, group, lifetime, xauth)


def only_proposal(sa: SecurityAssociation, protocol_id: int) -> Proposal:
    if sa.doi != Doi.IPSEC or len(sa.proposals) != 1:
        raise NoProposalChosen("expected exactly one proposal")
    proposal = sa.proposals[0]
    if proposal.protocol_id != protocol_id:
        raise NoProposalChosen(f"proposal for protocol {proposal.protocol_id}")
    return proposal


def select_ike(
    sa: SecurityAssociation, rules: Sequence[IkeRule], exchange: str, *, xauth: bool = False
) -> tuple[IkeSuite, Transform, IkeRule]:
    """Responder: the first of the initiator's transforms that one of our rules allows.

    The lifetime is the lesser of the proposed one and the rule's.  A transform
    with an XAUTH method is chosen only when `xauth` allows it.
    """
    proposal = only_proposal(sa, ProtocolId.ISAKMP)
    for transform in proposal.transforms:
        suite = parse_ike_transform(transform)
        if suite is None or (suite.xauth and not xauth):
            continue
        for rule in rules:
            if not suite.matches(rule) or not exchange_allowed(rule, exchange):
                continue
            lifetime = min(suite.lifetime_seconds, rule.lifetime_seconds)
            return replace(suite, lifetime_seconds=lifetime), transform, rule
    raise NoProposalChosen("no acceptable ISAKMP transform")


def check_ike_reply(sa: SecurityAssociation, offered: Sequence[IkeSuite]) -> IkeSuite:
    """Initiator: the responder's choice must be one of the transforms we offered."""
    proposal = only_proposal(sa, ProtocolId.ISAKMP)
    if len(proposal.transforms) != 1:
        raise NoProposalChosen("responder chose more than one transform")
    suite = parse_ike_transform(proposal.transforms[0])
    if suite is None:
        raise NoProposalChosen("responder chose an unknown transform")
    for mine in offered:
        if (suite.encryption, suite.hash, suite.authentication, suite.group) == (
            mine.encryption, mine.hash, mine.authentication, mine.group
        ):
            lifetime = min(suite.lifetime_seconds, mine.lifetime_seconds)
            return IkeSuite(suite.encryption, suite.hash, suite.authentication, suite.group,
                            lifetime)
    raise NoProposalChosen("responder chose a transform we did not offer")


def exchange_allowed(rule: IkeRule, exchange: str) -> bool:
    """Whether a rule may be used in `exchange` ("main" | "aggressive"); see policy.py."""
    if exchange == "aggressive":
        return rule.aggressive_mode != "none"
    return rule.aggressive_mode != "required"


def initiator_exchange(rules: Sequence[IkeRule], *, rekey: bool) -> str:
    """Which phase 1 exchange the initiator uses, from its highest-priority rule."""
    setting = rules[0].aggressive_mode
    if setting == "required" or (setting == "requested" and not rekey):
        return "aggressive"
    return "main"


def initiator_suites(rules: Sequence[IkeRule], exchange: str,
                     authentication: str | None = None) -> list[IkeSuite]:
    """The suites an initiator offers for `exchange`, in priority order."""
    allowed = [rule for rule in rules if exchange_allowed(rule, exchange)]
    if authentication is not None:
        allowed = [rule for rule in allowed if rule.authentication == authentication]
    if exchange == "aggressive" and allowed:
        first = allowed[0]
        allowed = [r for r in allowed
                   if (r.group, r.authentication) == (first.group, first.authentication)]
    return [IkeSuite.from_rule(rule) for rule in allowed]


# --- phase 2 --------------------------------------------------------------------

_TRANSFORM_NAME = re.compile(
    r"^(?:esp-(?P<cipher>null|des|3des|aes128|aes192|aes256)-hmac-(?P<mac>md5|sha|sha256)"
    r"|esp-(?P<gcm>aes128|aes256)-gcm"
    r"|ah-hmac-(?P<ah>md5|sha))$"
)
_ESP_CIPHERS: dict[str, tuple[int, int | None, int]] = {
    # name: (ESP transform ID, Key Length attribute, key octets)
    "null": (EspTransform.NULL, None, 0),
    "des": (EspTransform.DES, None, 8),
    "3des": (EspTransform.TRIPLE_DES, None, 24),
    "aes128": (EspTransform.AES_CBC, 128, 16),
    "aes192": (EspTransform.AES_CBC, 192, 24),
    "aes256": (EspTransform.AES_CBC, 256, 32),
}
_CIPHER_NAMES: dict[str, EncryptionName] = {
    "null": "null", "des": "des", "3des": "3des", "aes128": "aes128", "aes192": "aes192",
    "aes256": "aes256",
}
_MACS: dict[str, tuple[int, IntegrityName, int]] = {
    # name: (Authentication Algorithm attribute, data-plane name, key octets)
    "md5": (IpsecAuthAlgorithm.HMAC_MD5, "hmac-md5-96", 16),
    "sha": (IpsecAuthAlgorithm.HMAC_SHA, "hmac-sha1-96", 20),
    # RFC 4868: HMAC-SHA-256 truncated to 128 bits (what strongSwan uses for IKEv1).
    "sha256": (IpsecAuthAlgorithm.HMAC_SHA2_256, "hmac-sha256-128", 32),
}


@dataclass(frozen=True)
class Phase2Suite:
    """One CLI transform (SPEC 3.3) as IPsec DOI code points and key lengths."""

    name: str
    protocol: Literal["esp", "ah"]
    transform_id: int
    key_bits: int | None
    auth_algorithm: int | None
    encryption: EncryptionName
    encryption_key_length: int
    integrity: IntegrityName | None
    integrity_key_length: int

    @property
    def protocol_id(self) -> int:
        return ProtocolId.IPSEC_ESP if self.protocol == "esp" else ProtocolId.IPSEC_AH

    @property
    def keymat_length(self) -> int:
        return self.encryption_key_length + self.integrity_key_length


def phase2_suite(name: str) -> Phase2Suite:
    """Parse a CLI transform name; ValueError if it is not one of SPEC 3.3's."""
    match = _TRANSFORM_NAME.match(name)
    if match is None:
        raise ValueError(f"unknown transform {name!r}")
    if match["ah"]:
        auth, integrity, key_length = _MACS[match["ah"]]
        ah_id = AhTransform.MD5 if match["ah"] == "md5" else AhTransform.SHA
        return Phase2Suite(name, "ah", ah_id, None, auth, "null", 0, integrity, key_length)
    if match["gcm"]:
        bits = 128 if match["gcm"] == "aes128" else 256
        gcm: EncryptionName = "aes128gcm" if bits == 128 else "aes256gcm"
        # RFC 4106 8.1: KEYMAT supplies the key and a 4-octet salt.
        return Phase2Suite(name, "esp", EspTransform.AES_GCM_16, bits, None, gcm,
                           bits // 8 + 4, None, 0)
    transform_id, key_bits, key_length = _ESP_CIPHERS[match["cipher"]]
    cipher = _CIPHER_NAMES[match["cipher"]]
    auth, integrity, mac_length = _MACS[match["mac"]]
    return Phase2Suite(name, "esp", transform_id, key_bits, auth, cipher, key_length,
                       integrity, mac_length)


@dataclass(frozen=True)
class Phase2Offer:
    """What an initiator proposes in Quick Mode."""

    suites: tuple[Phase2Suite, ...]
    spi: bytes
    pfs_group: int | None
    lifetime_seconds: int
    lifetime_kilobytes: int
    encapsulation_mode: int


def _phase2_attributes(suite: Phase2Suite, offer: Phase2Offer) -> tuple[Attribute, ...]:
    attributes = [
        Attribute.make(IpsecAttribute.SA_LIFE_TYPE, LifeType.SECONDS),
        Attribute(IpsecAttribute.SA_LIFE_DURATION, offer.lifetime_seconds.to_bytes(4, "big"),
                  False),
    ]
    if offer.lifetime_kilobytes:
        attributes += [
            Attribute.make(IpsecAttribute.SA_LIFE_TYPE, LifeType.KILOBYTES),
            Attribute(IpsecAttribute.SA_LIFE_DURATION,
                      offer.lifetime_kilobytes.to_bytes(4, "big"), False),
        ]
    if offer.pfs_group is not None:
        attributes.append(Attribute.make(IpsecAttribute.GROUP_DESCRIPTION, offer.pfs_group))
    attributes.append(Attribute.make(IpsecAttribute.ENCAPSULATION_MODE, offer.encapsulation_mode))
    if suite.auth_algorithm is not None:
        attributes.append(Attribute.make(IpsecAttribute.AUTHENTICATION_ALGORITHM,
                                         suite.auth_algorithm))
    if suite.key_bits is not None:
        attributes.append(Attribute.make(IpsecAttribute.KEY_LENGTH, suite.key_bits))
    return tuple(attributes)


def phase2_sa_payload(offer: Phase2Offer) -> SecurityAssociation:
    proposals = tuple(
        Proposal(number, suite.protocol_id, offer.spi,
                 (Transform(1, suite.transform_id, _phase2_attributes(suite, offer)),))
        for number, suite in enumerate(offer.suites, 1)
    )
    return SecurityAssociation(Doi.IPSEC, Situation.IDENTITY_ONLY, proposals)


@dataclass(frozen=True)
class Phase2Choice:
    """The transform both sides agreed on, and the peer's SPI for it."""

    suite: Phase2Suite
    peer_spi: bytes
    proposal_number: int
    transform: Transform
    encapsulation_mode: int
    pfs_group: int | None
    lifetime_seconds: int
    lifetime_kilobytes: int


_TUNNEL_MODES = frozenset({EncapsulationMode.TUNNEL, EncapsulationMode.UDP_TUNNEL,
                           EncapsulationMode.UDP_TUNNEL_DRAFT})


def _match_phase2(proposal: Proposal, transform: Transform,
                  suites: Sequence[Phase2Suite]) -> Phase2Choice | None:
    values = {a.type: a.as_int() for a in transform.attributes}
    lifetimes = _lifetimes(transform.attributes, IpsecAttribute.SA_LIFE_TYPE,
                           IpsecAttribute.SA_LIFE_DURATION)
    mode = values.get(IpsecAttribute.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL)
    if mode not in _TUNNEL_MODES or len(proposal.spi) != 4:
        return None
    if proposal.protocol_id == ProtocolId.IPSEC_AH and mode != EncapsulationMode.TUNNEL:
        return None  # AH cannot be UDP-encapsulated: it cannot cross a NAT (RFC 3948 covers ESP)
    key_bits = values.get(IpsecAttribute.KEY_LENGTH)
    if key_bits is None and transform.transform_id == EspTransform.AES_CBC:
        key_bits = 128
    for suite in suites:
        if (suite.protocol_id, suite.transform_id, suite.key_bits, suite.auth_algorithm) == (
            proposal.protocol_id, transform.transform_id, key_bits,
            values.get(IpsecAttribute.AUTHENTICATION_ALGORITHM),
        ):
            return Phase2Choice(
                suite, proposal.spi, proposal.number, transform, mode,
                values.get(IpsecAttribute.GROUP_DESCRIPTION),
                lifetimes.get(LifeType.SECONDS, DEFAULT_LIFETIME_SECONDS),
                lifetimes.get(LifeType.KILOBYTES, 0),
            )
    return None


def select_phase2(sa: SecurityAssociation, suites: Sequence[Phase2Suite],
                  pfs_group: int | None) -> Phase2Choice:
    """Responder: the first acceptable single-protocol proposal, in the initiator's order.

    With PFS configured the proposal must carry the same group; without, a
    proposal with PFS is accepted (the initiator asked for more, RFC 2409 5.5).
    """
    if sa.doi != Doi.IPSEC:
        raise NoProposalChosen(f"DOI {sa.doi}")
    numbers = [proposal.number for proposal in sa.proposals]
    for proposal in sa.proposals:
        if numbers.count(proposal.number) > 1:
            continue  # RFC 2408 4.2: a bundle (AH and ESP together) is not supported
        for transform in proposal.transforms:
            choice = _match_phase2(proposal, transform, suites)
            if choice is None:
                continue
            if pfs_group is not None and choice.pfs_group != pfs_group:
                continue
            return choice
    raise NoProposalChosen("no acceptable IPsec proposal")


def check_phase2_reply(sa: SecurityAssociation, offer: Phase2Offer) -> Phase2Choice:
    """Initiator: the responder's single proposal must be one we offered."""
    if sa.doi != Doi.IPSEC or len(sa.proposals) != 1 or len(sa.proposals[0].transforms) != 1:
        raise NoProposalChosen("responder must choose exactly one proposal and transform")
    proposal = sa.proposals[0]
    choice = _match_phase2(proposal, proposal.transforms[0], offer.suites)
    if choice is None or choice.pfs_group != offer.pfs_group:
        raise NoProposalChosen("responder chose a transform we did not offer")
    return choice


def echo_phase2(choice: Phase2Choice, spi: bytes) -> SecurityAssociation:
    """Responder's SA payload: the chosen proposal and transform, with our SPI."""
    proposal = Proposal(choice.proposal_number, choice.suite.protocol_id, spi,
                        (choice.transform,))
    return SecurityAssociation(Doi.IPSEC, Situation.IDENTITY_ONLY, (proposal,))


def echo_ike(proposal_number: int, transform: Transform) -> SecurityAssociation:
    """Responder's phase 1 SA payload: the chosen transform as it was offered."""
    return SecurityAssociation(
        Doi.IPSEC, Situation.IDENTITY_ONLY,
        (Proposal(proposal_number, ProtocolId.ISAKMP, b"", (transform,)),),
    )


def lifetime_attributes(seconds: int, kilobytes: int) -> tuple[Attribute, ...]:
    """The attributes of a RESPONDER-LIFETIME notify (RFC 2407 4.6.3.1)."""
    attributes = [
        Attribute.make(IpsecAttribute.SA_LIFE_TYPE, LifeType.SECONDS),
        Attribute(IpsecAttribute.SA_LIFE_DURATION, seconds.to_bytes(4, "big"), False),
    ]
    if kilobytes:
        attributes += [
            Attribute.make(IpsecAttribute.SA_LIFE_TYPE, LifeType.KILOBYTES),
            Attribute(IpsecAttribute.SA_LIFE_DURATION, kilobytes.to_bytes(4, "big"), False),
        ]
    return tuple(attributes)


def parse_lifetime_attributes(attributes: Iterable[Attribute]) -> dict[int, int]:
    return _lifetimes(attributes, IpsecAttribute.SA_LIFE_TYPE, IpsecAttribute.SA_LIFE_DURATION)
