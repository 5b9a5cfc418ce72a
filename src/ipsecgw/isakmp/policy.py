"""The engine's view of the configuration: plain frozen dataclasses.

The daemon builds an `EnginePolicy` per transport virtual router from the
running configuration and hands it to `Engine` (and again to
`Engine.update_policy` whenever the configuration changes).  Nothing here
knows about the CLI; names follow the JUNOSe commands they come from.

Aggressive-mode policy (`IkeRule.aggressive_mode`), as this project reads the
JUNOSe guide's table (initiator's first request / initiator's rekey /
responder):

============  ==================  ==============  ============================
setting       first request       rekey           responder
============  ==================  ==============  ============================
accepted      Main Mode           Main Mode       accepts Main and Aggressive
requested     Aggressive Mode     Main Mode       accepts Main and Aggressive
required      Aggressive Mode     Aggressive      accepts Aggressive only
none          Main Mode           Main Mode       refuses Aggressive Mode
============  ==================  ==============  ============================

The initiator's exchange comes from its highest-priority rule; a rule whose
setting forbids the chosen exchange is left out of the offer, and the
responder only picks, from the initiator's offer, a rule whose setting allows
the exchange the initiator used.  Aggressive Mode can carry one DH group
only (the KE payload is in the first message), so its offer is restricted to
the rules with the first rule's group and authentication method.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Address = tuple[str, int]

AggressiveMode = Literal["accepted", "requested", "required", "none"]
#: "key-id": ID_KEY_ID (RFC 2407 4.6.2.1 type 11), the group name vpnc sends.
IdentityKind = Literal["address", "domain-name", "user-fqdn", "asn1-dn", "key-id"]

ENCRYPTIONS = ("des", "3des", "aes128", "aes192", "aes256")
HASHES = ("md5", "sha", "sha256", "sha384", "sha512")
GROUPS = (1, 2, 5, 14, 15, 16, 19, 20)
AUTHENTICATIONS = ("pre-share", "rsa-sig")
AGGRESSIVE_MODES = ("accepted", "requested", "required", "none")
#: How a tunnel profile gives subscribers their address (draft-dukes-ike-mode-cfg-02):
#: "pull" answers the client's REQUEST, "push" SETs it after XAUTH.
ModeConfigMode = Literal["pull", "push"]
MODE_CONFIG_MODES = ("pull", "push")


@dataclass(frozen=True)
class Identity:
    """An ISAKMP identity as the CLI names it (`tunnel local-identity ...`).

    `value` is an IP address, a domain name, a user@domain, an RFC 4514
    distinguished name string ("CN=gw1,O=Example") for "asn1-dn", or the
    opaque key identifier (a group name) for "key-id".
    """

    kind: IdentityKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


@dataclass(frozen=True)
class IdentityPattern:
    """A tunnel profile's `ike peer-identity`: an identity whose value may hold
    `*` wildcards (fnmatch style).  Names compare case-insensitively; a key-id
    is opaque and compares exactly (RFC 2407 4.6.2.1)."""

    kind: IdentityKind
    value: str

    def matches(self, identity: Identity) -> bool:
        if identity.kind != self.kind:
            return False
        if self.kind == "key-id":
            return fnmatch.fnmatchcase(identity.value, self.value)
        return fnmatch.fnmatchcase(identity.value.lower(), self.value.lower())

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


@dataclass(frozen=True)
class IkeRule:
    """One `ipsec ike-policy-rule` (phase 1 proposal); lower priority number first."""

    priority: int = 10
    authentication: str = "pre-share"
    encryption: str = "aes256"
    hash: str = "sha256"
    group: int = 14
    lifetime_seconds: int = 28800
    aggressive_mode: AggressiveMode = "accepted"

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= 10:
            raise ValueError(f"IKE rule priority {self.priority} not in 1..10")
        if self.authentication not in AUTHENTICATIONS:
            raise ValueError(f"unknown authentication {self.authentication!r}")
        if self.encryption not in ENCRYPTIONS:
            raise ValueError(f"unknown encryption {self.encryption!r}")
        if self.hash not in HASHES:
            raise ValueError(f"unknown hash {self.hash!r}")
        if self.group not in GROUPS:
            raise ValueError(f"unsupported DH group {self.group}")
        if self.aggressive_mode not in AGGRESSIVE_MODES:
            raise ValueError(f"unknown aggressive-mode setting {self.aggressive_mode!r}")
        if self.lifetime_seconds <= 0:
            raise ValueError("lifetime must be positive")


#: Used when no `ipsec ike-policy-rule` is configured (SPEC 2: modern defaults).
DEFAULT_IKE_RULE = IkeRule(priority=10)


@dataclass(frozen=True)
class DpdPolicy:
    """Dead peer detection timing (RFC 3706; SPEC 3.3 `ipsec option dpd`).

    An R-U-THERE is sent when nothing was received from the peer for `idle`
    seconds, or for `silence` seconds while traffic was sent to it in the last
    `silence / 2` seconds (the guide's "sent in the last 30 s, nothing received
    for 60 s").  Unanswered, it is repeated every `retry` seconds; after
    `retries` unanswered probes (and one more `retry` interval) the peer is dead.
    Each peer's `idle` and `silence` are shortened by a random 0 to 20 %, drawn
    once per peer from the engine's random source, so that peers that came up
    together are not all probed at the same moment (isakmp/dpd.py).
    """

    enabled: bool = True
    idle: float = 150.0
    silence: float = 60.0
    retry: float = 10.0
    retries: int = 3


@dataclass(frozen=True)
class RetransmitPolicy:
    """Retransmission of an unanswered message (RFC 2408 5: implementation choice).

    The first retransmission comes `initial` seconds after the original, each
    later one after twice the previous interval (capped at `maximum`); after
    `retries` retransmissions and one more interval the exchange has failed.
    Defaults: 2, 4, 8 s, failure 16 s later: an exchange is abandoned 30 s
    after it started, when strongSwan, as responder, has dropped its half-open
    state and ignores further copies of our message; the tunnel's next attempt
    starts with fresh cookies (a fresh Quick Mode) after its re-initiation
    back-off (docs/DECISIONS.md).  Each wait is shortened by a random 0 to
    10 % (isakmp/engine.py), so that exchanges started together, and timing
    out together under load, do not retransmit in lockstep.
    """

    initial: float = 2.0
    maximum: float = 30.0
    retries: int = 3


@dataclass(frozen=True)
class RemoteAccess:
    """A tunnel that is a remote-access client of a gateway's tunnel profile
    (remote_access.py): it answers XAUTH with `username`/`password` (None:
    the gateway does not ask) and takes its address from Mode Config."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TunnelPolicy:
    """One `interface tunnel ipsec:NAME` as the engine needs it.

    `transforms` are CLI transform names (SPEC 3.3) in priority order, at most
    six; `peer_address` is an IP address (the daemon resolves an FQDN).
    `backup_address` is the alternate destination of tunnel failover
    (`tunnel destination A backup B`, failover.py).

    `initiate` False makes a responder-only tunnel (`tunnel responder-only`):
    it stays `enabled` and answers the peer's Main, Aggressive and Quick Mode
    like any other tunnel, but the engine never starts a negotiation for it
    (not at start, not after `clear_sa`, a failure or a dead peer) and never
    rekeys its SAs: the peer does; ours are deleted at their hard lifetime.
    One exception keeps the peer's SAs alive: a phase 1 that would end before
    the IPsec SAs negotiated under it is renewed by a phase 1 alone, never a
    Quick Mode (isakmp/engine.py).
    """

    name: str
    local_address: str
    peer_address: str
    transforms: tuple[str, ...] = ("esp-aes256-hmac-sha256",)
    pfs_group: int | None = None
    lifetime_seconds: int = 28800
    lifetime_kilobytes: int = 102400
    local_identity: Identity | None = None
    peer_identity: Identity | None = None
    local_network: str = "0.0.0.0/0"
    remote_network: str = "0.0.0.0/0"
    enabled: bool = True
    initiate: bool = True
    backup_address: str | None = None
    #: Set: a remote-access client; its Quick Mode is for the address that
    #: Mode Config gives it (/32), not `local_network` (remote_access.py).
    remote_access: RemoteAccess | None = None

    def __post_init__(self) -> None:
        if self.backup_address == self.peer_address:
            raise ValueError(f"tunnel {self.name}: the backup destination is the primary")
        if not self.transforms or len(self.transforms) > 6:
            raise ValueError(f"tunnel {self.name}: 1 to 6 transforms, got {len(self.transforms)}")
        ipaddress.ip_network(self.local_network, strict=False)
        ipaddress.ip_network(self.remote_network, strict=False)
        if self.pfs_group is not None and self.pfs_group not in GROUPS:
            raise ValueError(f"tunnel {self.name}: unsupported PFS group {self.pfs_group}")


@dataclass(frozen=True)
class TunnelProfile:
    """One `ipsec tunnel-profile NAME`: how dynamic subscribers are accepted.

    A phase 1 from an address that no tunnel names is accepted on
    `local_address` when the profile matches (isakmp/subscribers.py):
    Aggressive Mode picks the profile by the peer's identity in its first
    message, Main Mode with a pre-shared key only where exactly one profile
    has that local address.  `psk` is the group key (None: certificates).
    `local_networks` are announced as the split-tunnel networks; () means
    all traffic.  `max_interfaces` 0 means no limit.  `mode_config` "push"
    sends the configuration (SET) once the login is accepted, for clients
    that wait for it; a client's REQUEST is answered either way.
    """

    name: str
    local_address: str
    peer_identity: IdentityPattern | None = None
    local_identity: Identity | None = None
    psk: bytes | None = field(default=None, repr=False)
    aggressive_mode: AggressiveMode = "accepted"
    transforms: tuple[str, ...] = ("esp-aes256-hmac-sha",)
    pfs_group: int | None = None
    lifetime_seconds: int = 28800
    lifetime_kilobytes: int = 102400
    local_networks: tuple[str, ...] = ()
    xauth: bool = True
    max_interfaces: int = 0
    dns: tuple[str, ...] = ()
    wins: tuple[str, ...] = ()
    domain_suffix: str | None = None
    mtu: int = 1400
    mode_config: ModeConfigMode = "pull"

    def __post_init__(self) -> None:
        if self.mode_config not in MODE_CONFIG_MODES:
            raise ValueError(f"unknown mode-config setting {self.mode_config!r}")
        if not self.transforms or len(self.transforms) > 6:
            raise ValueError(f"tunnel profile {self.name}: 1 to 6 transforms, "
                             f"got {len(self.transforms)}")
        for network in self.local_networks:
            ipaddress.ip_network(network, strict=False)
        if self.pfs_group is not None and self.pfs_group not in GROUPS:
            raise ValueError(f"tunnel profile {self.name}: unsupported PFS group "
                             f"{self.pfs_group}")
        if self.max_interfaces < 0:
            raise ValueError(f"tunnel profile {self.name}: max-interfaces must not be negative")
        if self.aggressive_mode not in AGGRESSIVE_MODES:
            raise ValueError(f"unknown aggressive-mode setting {self.aggressive_mode!r}")


def _frozen_mapping(value: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class EnginePolicy:
    """Everything one engine (one transport virtual router) is configured with.

    `preshared_keys` maps a peer address or an identity value (domain name,
    user@domain, DN string) to its key; the key "0.0.0.0" is a wildcard used
    when nothing more specific matches.  Certificates and keys may be given as
    PEM/DER bytes or as `cryptography` objects.
    """

    vr: str = "default"
    local_addresses: tuple[str, ...] = ()
    ike_rules: tuple[IkeRule, ...] = ()
    preshared_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    local_certificate: Any = None
    local_private_key: Any = field(default=None, repr=False)
    ca_certificates: tuple[Any, ...] = ()
    tunnels: tuple[TunnelPolicy, ...] = ()
    #: `ipsec tunnel-profile`s: dynamic subscribers (isakmp/subscribers.py).
    profiles: tuple[TunnelProfile, ...] = ()
    tx_invalid_cookie: bool = False
    nat_t: bool = True
    dpd: DpdPolicy = DpdPolicy()
    retransmit: RetransmitPolicy = RetransmitPolicy()
    reinit_backoff_initial: float = 1.0
    reinit_backoff_maximum: float = 30.0
    #: The peers' phase 1 attempts answered but not yet established, at most
    #: (strongSwan's `init_limit_half_open` seen from the responder) ...
    half_open_limit: int = 1000
    #: ... and at most this many from one peer address (strongSwan's
    #: `block_threshold`): a flood of first messages from one source, spoofed
    #: or not, cannot take the table from the other peers.  Not strongSwan's
    #: 5, which would refuse a carrier NAT's or a load generator's many peers
    #: at one address (docs/DECISIONS.md).
    half_open_per_source_limit: int = 100
    half_open_timeout: float = 60.0
    #: Our own phase 1 attempts in flight, at most (the initiator's half-open
    #: limit, after strongSwan's `init_limit_half_open`).  Tunnels that need a
    #: phase 1 beyond it wait their turn, in order, and start as attempts
    #: finish: a mass bring-up or re-initiation does not flood the peers with
    #: more exchanges than they answer in time (docs/BENCHMARKS.md, 10,000
    #: tunnels).  Phase 1 rekeys take a slot too (responder-only renewals are
    #: never held back).
    initiator_half_open_limit: int = 64
    #: How long an IPsec SA replaced by a rekey stays installed (inbound traffic
    #: still protected with the old SA arrives during this time).  A fixed time,
    #: not "until traffic arrives on the new SA": the data plane reports byte
    #: counters per tunnel (`Engine.traffic`), not per SA, so the engine cannot
    #: see the peer switch over.  30 s covers strongSwan, which moves its
    #: outbound traffic to the new SA as soon as it is installed.
    rekey_grace: float = 30.0
    #: Invalid-cookie replies: per peer and overall token buckets (rate/s, burst).
    invalid_cookie_rate: float = 1.0
    invalid_cookie_burst: int = 3
    invalid_cookie_total_rate: float = 20.0
    invalid_cookie_total_burst: int = 40

    def __post_init__(self) -> None:
        if len(self.ike_rules) > 10:
            raise ValueError("at most ten IKE policy rules")
        if self.initiator_half_open_limit < 1:
            raise ValueError("the initiator half-open limit must be at least 1")
        if self.half_open_per_source_limit < 1:
            raise ValueError("the per-source half-open limit must be at least 1")
        object.__setattr__(self, "preshared_keys", _frozen_mapping(self.preshared_keys))
        names = [tunnel.name for tunnel in self.tunnels]
        if len(names) != len(set(names)):
            raise ValueError("tunnel names must be unique")
        profile_names = [profile.name for profile in self.profiles]
        if len(profile_names) != len(set(profile_names)):
            raise ValueError("tunnel profile names must be unique")

    def rules_by_priority(self) -> tuple[IkeRule, ...]:
        """The configured rules in priority order, or the default rule."""
        if not self.ike_rules:
            return (DEFAULT_IKE_RULE,)
        return tuple(sorted(self.ike_rules, key=lambda rule: rule.priority))

    def tunnel(self, name: str) -> TunnelPolicy | None:
        for tunnel in self.tunnels:
            if tunnel.name == name:
                return tunnel
        return None
