"""What the engine tells its runtime: small frozen dataclasses, named in the past tense.

The daemon drains them with `Engine.next_event()` and acts (installs or removes
SAs in the data plane, logs, updates counters); it never reaches into engine
state.  Addresses are `(ip, port)` tuples; cookies are the 16 octets CKY-I | CKY-R.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from .policy import Address

EncryptionName = Literal[
    "null", "des", "3des", "aes128", "aes192", "aes256", "aes128gcm", "aes256gcm"
]
IntegrityName = Literal["hmac-md5-96", "hmac-sha1-96", "hmac-sha256-128"]


@dataclass(frozen=True)
class SaKeys:
    """One direction of an IPsec SA, ready for the data plane.

    `spi`: the 4-octet SPI carried in this direction's packets.
    `encryption`: ESP cipher; "null" for ESP-NULL and for AH.  For GCM the key
    ends with the 4-octet salt (RFC 4106 8.1).
    `integrity`: the ICV algorithm, None for GCM (combined mode).
    """

    spi: bytes
    encryption: EncryptionName
    encryption_key: bytes = field(repr=False)
    integrity: IntegrityName | None
    integrity_key: bytes = field(repr=False)


@dataclass(frozen=True)
class Phase1Established:
    """An ISAKMP SA (phase 1) finished authenticating.

    `tunnel`: the tunnel we initiated it for, None when the peer initiated.
    `cookies`: CKY-I | CKY-R.  `role`: "initiator" | "responder".
    `exchange`: "main" | "aggressive".  `nat_detected`: a NAT lies between us
    (RFC 3947 NAT-D); `local_behind_nat` says it is on our side, so the daemon
    sends NAT keepalives (RFC 3948 4).  `remote_port`: the peer's port now
    (4500 after floating).  `encryption_key`: the phase 1 cipher key, only for
    the daemon's save-keys debugging aid (decrypting captures); never logged.
    """

    tunnel: str | None
    peer: Address
    local: Address
    cookies: bytes
    role: str
    exchange: str
    nat_detected: bool
    remote_port: int
    local_behind_nat: bool = False
    encryption_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Phase1Failed:
    """A phase 1 negotiation ended without an SA; `reason` says why."""

    tunnel: str | None
    peer: Address
    reason: str


@dataclass(frozen=True)
class Phase1Deleted:
    """An established ISAKMP SA is gone (expired, deleted by either side, dead peer)."""

    peer: Address
    cookies: bytes
    reason: str


@dataclass(frozen=True)
class IpsecSaEstablished:
    """A Quick Mode finished: install both directions.

    `encapsulation`: "tunnel" (raw ESP/AH, IP protocol 50/51) or "udp-tunnel"
    (RFC 3948 UDP-encapsulated ESP between `local` and `peer`, normally port
    4500).  Lifetimes are what was negotiated (the lesser of both sides);
    the engine itself deletes the SA at expiry and rekeys before it.
    `rekey_of`: the inbound SPI of the SA this one replaces, if any; the old
    SA stays installed until an `IpsecSaDeleted` names it.  `phase1_cookies`:
    CKY-I | CKY-R of the ISAKMP SA it was negotiated under.
    """

    tunnel: str
    peer: Address
    local: Address
    inbound: SaKeys
    outbound: SaKeys
    protocol: Literal["esp", "ah"]
    encapsulation: Literal["tunnel", "udp-tunnel"]
    local_network: str
    remote_network: str
    lifetime_seconds: int
    lifetime_kilobytes: int
    rekey_of: bytes | None = None
    phase1_cookies: bytes = b""


@dataclass(frozen=True)
class IpsecSaDeleted:
    """Remove an IPsec SA pair from the data plane.

    `reason`: "expired", "rekeyed", "deleted by peer", "cleared", "dead peer",
    "initial contact", "policy" ...
    """

    tunnel: str
    inbound_spi: bytes
    outbound_spi: bytes
    reason: str


@dataclass(frozen=True)
class PeerDead:
    """DPD (RFC 3706) got no answer: the tunnel's SAs with `peer` were removed."""

    tunnel: str | None
    peer: Address


@dataclass(frozen=True)
class InvalidCookieReceived:
    """An INVALID-COOKIE notify arrived; it was counted and nothing else changed."""

    peer: Address
    protected: bool


@dataclass(frozen=True)
class InvalidCookieSent:
    """We answered an unknown cookie pair with an unprotected INVALID-COOKIE notify."""

    peer: Address


# --- dynamic subscribers (isakmp/subscribers.py; docs/INTERNALS.md "Subscribers") ---


@dataclass(frozen=True)
class SubscriberAssignment:
    """What the daemon gives a subscriber it accepted (an input, not an event:
    `Engine.subscriber_login_result`).  `address` from RADIUS Framed-IP-Address
    or the profile's pool; empty `dns`/`wins`/`domain`/`split_networks` fall
    back to the profile's; `split_networks` () = all traffic."""

    address: str
    netmask: str = "255.255.255.255"
    dns: tuple[str, ...] = ()
    wins: tuple[str, ...] = ()
    domain: str | None = None
    split_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """ValueError for anything Mode Config cannot carry (IPv4 only)."""
        for value in (self.address, self.netmask, *self.dns, *self.wins):
            ipaddress.IPv4Address(value)
        for network in self.split_networks:
            ipaddress.IPv4Network(network, strict=False)


@dataclass(frozen=True)
class SubscriberLoginRequested:
    """A subscriber's phase 1 is up (and it answered XAUTH): authenticate it and
    call `Engine.subscriber_login_result`.  `username`/`password` are None
    without XAUTH.  The password is a secret: never log it (repr hides it)."""

    subscriber: int
    profile: str
    peer: Address
    local: Address
    identity: str
    username: str | None
    password: str | None = field(repr=False)


@dataclass(frozen=True)
class SubscriberUp:
    """A subscriber was accepted: its dynamic responder-only tunnel `tunnel`
    ("PROFILE:N") exists for `address`/32; its IPsec SAs follow as
    `IpsecSaEstablished` for that tunnel."""

    subscriber: int
    tunnel: str
    profile: str
    peer: Address
    local: Address
    identity: str
    username: str | None
    address: str


@dataclass(frozen=True)
class SubscriberDown:
    """A subscriber that was up is gone (its phase 1 deleted, expired, dead,
    cleared, or its login refused after SubscriberUp); its tunnel is gone too."""

    subscriber: int
    tunnel: str
    profile: str
    address: str | None
    reason: str


@dataclass(frozen=True)
class SubscriberLoginFailed:
    """A subscriber never came up: wrong or missing credentials, refused by the
    daemon, no XAUTH answer in time, or its phase 1 went first."""

    subscriber: int
    profile: str
    peer: Address
    username: str | None
    reason: str


Event = (
    Phase1Established
    | Phase1Failed
    | Phase1Deleted
    | IpsecSaEstablished
    | IpsecSaDeleted
    | PeerDead
    | InvalidCookieReceived
    | InvalidCookieSent
    | SubscriberLoginRequested
    | SubscriberUp
    | SubscriberDown
    | SubscriberLoginFailed
)
