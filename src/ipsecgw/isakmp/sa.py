"""Engine state: ISAKMP SAs, Quick Mode exchanges, IPsec SAs, retransmission flights.

These are the engine's private, mutable records (the outside world sees
`events` and `ipsecgw.status` snapshots).  The state enums live here so that
main_mode.py, aggressive_mode.py and quick_mode.py only implement the steps.

Message protection (RFC 2409 Appendix B, RFC 2408 3.1) is here as well: the
phase 1 CBC chain lives in `IkeSa.iv` (frozen once phase 1 is done: every
later exchange starts from hash(that block | M-ID)), a Quick Mode exchange
keeps its own chain in `QuickMode.iv`.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import crypto, keymat
from .codec import (
    DecodeError,
    Hash,
    Identification,
    Message,
    Payload,
    decode_payloads,
    encode_payloads,
)
from .constants import Flags
from .natt import NatDetection, PeerCapabilities
from .policy import Address, TunnelProfile
from .proposals import IkeSuite, Phase2Choice, Phase2Offer

_LOG = logging.getLogger("ipsecgw.ike")


class Role(StrEnum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


class P1State(StrEnum):
    """Phase 1 states: what we sent last and so what we wait for (strongSwan's names)."""

    INITIAL = "initial"  # created for a first message not yet sent or answered
    MM_I1 = "MM_SA_I"  # sent MM1 (SA), wait MM2
    MM_I2 = "MM_KE_I"  # sent MM3 (KE, Ni), wait MM4
    MM_I3 = "MM_AUTH_I"  # sent MM5 (ID, auth), wait MM6
    MM_R1 = "MM_SA_R"  # sent MM2, wait MM3
    MM_R2 = "MM_KE_R"  # sent MM4, wait MM5
    AM_I1 = "AM_I1"  # sent AM1, wait AM2
    AM_R1 = "AM_R1"  # sent AM2, wait AM3
    ESTABLISHED = "established"


class QmState(StrEnum):
    QM_I1 = "QM_I1"  # sent QM1, wait QM2
    QM_R1 = "QM_R1"  # sent QM2, wait QM3


class SaLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the SA's cookie pair (DESIGN.md 11)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        return f"[{extra.get('sa', '?')}] {msg}", kwargs


@dataclass
class Flight:
    """The last message of ours that waits for an answer, and its retransmission clock."""

    datagram: bytes
    local: Address
    remote: Address
    next_at: float
    interval: float
    retransmits: int = 0


@dataclass(eq=False)
class IkeSa:
    """One ISAKMP SA, from the first message to its deletion."""

    cookie_i: bytes
    cookie_r: bytes
    role: Role
    exchange: str  # "main" | "aggressive"
    state: P1State
    local: Address
    remote: Address
    created_at: float
    tunnel: str | None = None  # the tunnel we initiated it for, or a subscriber's tunnel
    #: The tunnel profile whose subscriber this is (responder only; subscribers.py).
    profile: TunnelProfile | None = None
    offered: tuple[IkeSuite, ...] = ()
    suite: IkeSuite | None = None
    sai_b: bytes = b""
    dh: crypto.DhKeyPair | None = field(default=None, repr=False)
    gxi: bytes = field(default=b"", repr=False)
    gxr: bytes = field(default=b"", repr=False)
    gxy: bytes = field(default=b"", repr=False)
    ni: bytes = field(default=b"", repr=False)
    nr: bytes = field(default=b"", repr=False)
    keys: keymat.Phase1Keys | None = field(default=None, repr=False)
    iv: bytes = field(default=b"", repr=False)
    psk: bytes | None = field(default=None, repr=False)
    local_id: Identification | None = None
    peer_id: Identification | None = None
    peer_cert: Any = None
    capabilities: PeerCapabilities = PeerCapabilities(None, False)
    nat: NatDetection | None = None
    send_initial_contact: bool = False
    flight: Flight | None = None
    established_at: float | None = None
    soft_at: float | None = None
    expires_at: float | None = None
    rekeyed: bool = False  # being replaced: soft lifetime reached
    #: The peer's own first messages dropped in favour of this attempt (collisions.py):
    #: their initiator cookie -> when first dropped.
    rivals_dropped: dict[bytes, float] = field(default_factory=dict)
    quick_modes: dict[int, QuickMode] = field(default_factory=dict)
    log: SaLogger = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.log = SaLogger(_LOG, {"sa": self.cookie_label})

    @property
    def cookies(self) -> bytes:
        return self.cookie_i + self.cookie_r

    @property
    def cookie_label(self) -> str:
        return f"{self.cookie_i.hex()}:{self.cookie_r.hex()}"

    def set_responder_cookie(self, cookie_r: bytes) -> None:
        self.cookie_r = cookie_r
        self.log = SaLogger(_LOG, {"sa": self.cookie_label})

    @property
    def established(self) -> bool:
        return self.state is P1State.ESTABLISHED

    @property
    def nat_detected(self) -> bool:
        return self.nat is not None and self.nat.detected

    def require_suite(self) -> IkeSuite:
        if self.suite is None:
            raise RuntimeError("no phase 1 transform chosen yet")
        return self.suite

    def require_keys(self) -> keymat.Phase1Keys:
        if self.keys is None:
            raise RuntimeError("no phase 1 keys yet")
        return self.keys

    # --- message protection --------------------------------------------------

    def block_size(self) -> int:
        return crypto.cipher_block_size(self.require_suite().encryption)

    def exchange_iv(self, message_id: int) -> bytes:
        """RFC 2409 Appendix B: the first IV of a Quick Mode / Informational exchange."""
        return keymat.message_iv(self.require_suite().prf, self.iv, message_id, self.block_size())

    def encrypt(self, exchange_type: int, message_id: int, payloads: list[Payload],
                iv: bytes) -> tuple[bytes, bytes]:
        """The encrypted datagram and the IV that follows it."""
        keys = self.require_keys()
        first, body = encode_payloads(payloads)
        ciphertext, next_iv = keymat.encrypt_body(
            self.require_suite().encryption, keys.encryption_key, iv, body)
        message = Message(self.cookie_i, self.cookie_r, exchange_type, Flags.ENCRYPTION,
                          message_id, (), ciphertext, first)
        return message.encode(), next_iv

    def decrypt(self, message: Message, iv: bytes) -> tuple[tuple[Payload, ...], bytes]:
        """(payloads, next IV); raises DecodeError or MessageRejected."""
        keys = self.require_keys()
        if message.encrypted_body is None:
            raise DecodeError("message is not encrypted")
        plaintext, next_iv = keymat.decrypt_body(
            self.require_suite().encryption, keys.encryption_key, iv, message.encrypted_body)
        return decode_payloads(message.first_payload, plaintext, allow_padding=True), next_iv


@dataclass(eq=False)
class QuickMode:
    """One Quick Mode exchange (RFC 2409 5.5) in progress."""

    message_id: int
    role: Role
    state: QmState
    tunnel: str
    started_at: float
    iv: bytes = field(repr=False)
    inbound_spi: bytes = b""
    ni: bytes = field(default=b"", repr=False)
    nr: bytes = field(default=b"", repr=False)
    dh: crypto.DhKeyPair | None = field(default=None, repr=False)
    gqm: bytes = field(default=b"", repr=False)
    offer: Phase2Offer | None = None
    choice: Phase2Choice | None = None
    local_network: str = ""
    remote_network: str = ""
    rekey_of: bytes | None = None
    flight: Flight | None = None


@dataclass(eq=False)
class IpsecSa:
    """An installed IPsec SA pair (one Quick Mode's inbound and outbound SAs)."""

    tunnel: str
    ike_cookies: bytes
    role: Role
    protocol: str
    transform: str
    inbound_spi: bytes
    outbound_spi: bytes
    local: Address
    peer: Address
    encapsulation: str
    local_network: str
    remote_network: str
    pfs_group: int | None
    lifetime_seconds: int
    lifetime_kilobytes: int
    created_at: float
    soft_at: float
    expires_at: float
    soft_kilobytes: int
    inbound_at_start: int  # the tunnel's byte counters when this SA was installed
    outbound_at_start: int
    #: The peer's identity in the phase 1 it was negotiated under (INITIAL-CONTACT).
    peer_id: Identification | None = None
    superseded: bool = False
    delete_at: float | None = None


def hashed_payloads(payloads: tuple[Payload, ...]) -> tuple[bytes, tuple[Payload, ...]]:
    """Split off the leading HASH payload (RFC 2409 5.5, 5.7: it must come first).

    Returns (its data, the rest).  The rest re-encodes to exactly the octets
    that followed the HASH on the wire, because the codec round-trips.
    """
    if not payloads or not isinstance(payloads[0], Hash):
        raise DecodeError("HASH payload missing or not first")
    return payloads[0].data, payloads[1:]


def chain_bytes(payloads: tuple[Payload, ...] | list[Payload]) -> bytes:
    return encode_payloads(list(payloads))[1]
