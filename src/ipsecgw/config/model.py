"""The running configuration as a typed, immutable value.

Every configuration command takes the current `RunningConfig` and builds a
new one with `dataclasses.replace` (through the `with_*` / `without_*`
helpers below); the gateway is handed the new value only when the command
succeeded, so a rejected command changes nothing (SPEC 4).

Collections are tuples kept sorted by their key, so two configurations that
say the same thing compare equal no matter in which order the commands were
typed; that is what makes `render` -> load a round trip.

Defaults follow SPEC 3.3; a field that is ``None`` means "not configured",
and the daemon applies the documented default (see the helpers at the end).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from ..netns import DEFAULT_VR as DEFAULT_VR  # the namespace the daemon runs in
from .manual import ManualKeys
from .remote_access import RemoteAccess

DEFAULT_HOSTNAME = "host1"
ANY_NETWORK = "0.0.0.0/0"
TUNNEL_PREFIX = "ipsec:"

Authentication = Literal["pre-share", "rsa-sig"]
Encryption = Literal["des", "3des", "aes128", "aes192", "aes256"]
Hash = Literal["md5", "sha", "sha256", "sha384", "sha512"]  # "sha" is SHA-1
AggressiveMode = Literal["accepted", "requested", "required", "none"]
IdentityKind = Literal["address", "domain-name", "user-fqdn", "asn1-dn"]

AUTHENTICATIONS: tuple[Authentication, ...] = ("pre-share", "rsa-sig")
ENCRYPTIONS: tuple[Encryption, ...] = ("des", "3des", "aes128", "aes192", "aes256")
HASHES: tuple[Hash, ...] = ("md5", "sha", "sha256", "sha384", "sha512")
AGGRESSIVE_MODES: tuple[AggressiveMode, ...] = ("accepted", "requested", "required", "none")
IDENTITY_KINDS: tuple[IdentityKind, ...] = ("address", "domain-name", "user-fqdn", "asn1-dn")
DH_GROUPS: tuple[int, ...] = (1, 2, 5, 14, 15, 16, 19, 20)


def _esp_transforms() -> tuple[str, ...]:
    ciphers = ("null", "des", "3des", "aes128", "aes192", "aes256")
    integrity = ("md5", "sha", "sha256")
    cbc = tuple(f"esp-{c}-hmac-{i}" for c in ciphers for i in integrity)
    return cbc + ("esp-aes128-gcm", "esp-aes256-gcm")


#: Every transform `ipsec transform-set` accepts (SPEC 3.3).
TRANSFORMS: tuple[str, ...] = _esp_transforms() + ("ah-hmac-md5", "ah-hmac-sha")
MAX_TRANSFORMS = 6
#: What a tunnel without `tunnel transform-set` offers (SPEC 2: modern defaults).
DEFAULT_TRANSFORMS: tuple[str, ...] = ("esp-aes256-hmac-sha256",)
MAX_IKE_RULE = 10


@dataclass(frozen=True)
class Lifetime:
    """`ipsec lifetime` / `tunnel lifetime`: rekey after this long or this much."""

    seconds: int = 28800
    kilobytes: int = 102400


@dataclass(frozen=True)
class Dpd:
    """`ipsec option dpd` (RFC 3706); timers in seconds, defaults from the guide."""

    enabled: bool = True
    idle: int = 150
    silence: int = 60
    retry: int = 10
    retries: int = 3


@dataclass(frozen=True)
class VrOptions:
    """`ipsec option ...` of one transport virtual router.

    NAT-T is on by default on every virtual router, as on JUNOSe; sending
    INVALID-COOKIE notifications is off by default (SPEC 1.2).
    """

    tx_invalid_cookie: bool = False
    nat_t: bool = True
    dpd: Dpd = Dpd()


@dataclass(frozen=True, order=True)
class LocalEndpoint:
    """`ipsec local-endpoint ADDRESS transport-virtual-router VR`.

    The gateway listens for IKE (UDP 500 and 4500) on `address` inside the
    network namespace of `transport_vr`.
    """

    address: str
    transport_vr: str


@dataclass(frozen=True)
class VirtualRouter:
    """What is configured in the context of one virtual router (network namespace)."""

    name: str
    options: VrOptions = VrOptions()
    local_endpoints: tuple[LocalEndpoint, ...] = ()


@dataclass(frozen=True)
class TransformSet:
    """`ipsec transform-set NAME T1 [T2 ...]`: up to six transforms, first preferred."""

    name: str
    transforms: tuple[str, ...]


@dataclass(frozen=True)
class IkePolicyRule:
    """`ipsec ike-policy-rule N`: one phase 1 proposal; lower N = higher priority."""

    priority: int
    authentication: Authentication = "pre-share"
    encryption: Encryption = "aes256"
    hash: Hash = "sha256"
    group: int = 14
    lifetime_seconds: int = 28800
    aggressive_mode: AggressiveMode = "accepted"


@dataclass(frozen=True)
class PreSharedKey:
    """`ipsec key manual pre-share PEER` with `key SECRET` (or `masked-key`).

    `peer` is an IPv4 address or an identity (FQDN, user@FQDN). `secret` is
    None until a key is set; it is never part of repr().
    """

    peer: str
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Identity:
    """`tunnel local-identity` / `tunnel peer-identity` (RFC 2407 4.6.2 ID types)."""

    kind: IdentityKind
    value: str


#: `description TEXT` of a tunnel interface: at most this many characters (IOS: 240).
MAX_DESCRIPTION = 240

@dataclass(frozen=True)
class TunnelInterface:
    """`interface tunnel ipsec:NAME`: one IPsec tunnel.

    `vr` is the operational virtual router (where the interface, its TUN
    device and its routes live: the VR context the interface was created
    in); `transport_vr` is where its IKE and ESP packets travel.
    """

    name: str
    vr: str = DEFAULT_VR
    transport_vr: str = DEFAULT_VR
    source: str | None = None
    destination: str | None = None  # IPv4 address or FQDN
    backup_destination: str | None = None  # failover: `tunnel destination A backup B`
    transform_set: str | None = None
    pfs_group: int | None = None
    lifetime: Lifetime | None = None  # None: the global `ipsec lifetime`
    local_identity: Identity | None = None
    peer_identity: Identity | None = None
    local_network: str = ANY_NETWORK
    remote_network: str = ANY_NETWORK
    mtu: int | None = None
    ip_address: str | None = None  # "A.B.C.D/LEN"
    responder_only: bool = False  # never initiate: the peer brings the tunnel up
    shutdown: bool = False
    description: str | None = None  # free text for the operator; no effect on the tunnel
    # `tunnel manual {inbound|outbound} ...`: no IKE, these SAs (config/manual.py)
    manual_inbound: ManualKeys | None = None
    manual_outbound: ManualKeys | None = None

    @property
    def manual(self) -> bool:
        """Whether the tunnel has manual SAs (and no IKE) rather than negotiated ones."""
        return self.manual_inbound is not None or self.manual_outbound is not None

    @property
    def interface_name(self) -> str:
        return TUNNEL_PREFIX + self.name


_Item = TypeVar("_Item")


def _upsert(
    items: tuple[_Item, ...],
    new: _Item,
    key: Callable[[_Item], Hashable],
    sort_key: Callable[[_Item], Any],
) -> tuple[_Item, ...]:
    """`items` (sorted by `sort_key`, which follows from `key`) with `new` in its place.

    A binary search and one copy: a startup file with thousands of tunnels
    is a configuration command per line, so this must not be quadratic.
    """
    at = bisect.bisect_left(items, sort_key(new), key=sort_key)
    replaces = at < len(items) and key(items[at]) == key(new)
    return (*items[:at], new, *items[at + 1 if replaces else at :])


def _vr_order(vr: VirtualRouter) -> tuple[int, str]:
    return (0 if vr.name == DEFAULT_VR else 1, vr.name)


@dataclass(frozen=True)
class Certificates:
    """`ipsec certificate ...`: PEM files for RSA-signature authentication.

    The files are read when the daemon applies the configuration, so a
    renewed certificate takes effect with the next configuration change.
    """

    local_certificate: str | None = None  # path of our certificate (PEM)
    private_key: str | None = None  # path of its RSA private key (PEM)
    ca_certificates: tuple[str, ...] = ()  # paths of trusted CA certificates


@dataclass(frozen=True)
class RunningConfig:
    """The whole configuration of the router; equal values say the same thing."""

    hostname: str = DEFAULT_HOSTNAME
    lifetime: Lifetime = Lifetime()
    transform_sets: tuple[TransformSet, ...] = ()
    ike_policy_rules: tuple[IkePolicyRule, ...] = ()
    pre_shared_keys: tuple[PreSharedKey, ...] = ()
    virtual_routers: tuple[VirtualRouter, ...] = (VirtualRouter(DEFAULT_VR),)
    tunnels: tuple[TunnelInterface, ...] = ()
    certificates: Certificates = Certificates()
    remote_access: RemoteAccess = RemoteAccess()  # tunnel profiles, pools, users, AAA

    # -- virtual routers ------------------------------------------------------

    def virtual_router(self, name: str) -> VirtualRouter:
        """The VR's configuration; an unconfigured VR has every default."""
        for vr in self.virtual_routers:
            if vr.name == name:
                return vr
        return VirtualRouter(name)

    def has_virtual_router(self, name: str) -> bool:
        return any(vr.name == name for vr in self.virtual_routers)

    def mentions_virtual_router(self, name: str) -> bool:
        """Configured, or named as the transport VR of an endpoint or a tunnel."""
        return (
            self.has_virtual_router(name)
            or any(ep.transport_vr == name for vr in self.virtual_routers
                   for ep in vr.local_endpoints)
            or any(name in (t.vr, t.transport_vr) for t in self.tunnels)
        )

    def with_virtual_router(self, vr: VirtualRouter) -> RunningConfig:
        routers = _upsert(self.virtual_routers, vr, lambda v: v.name, _vr_order)
        return replace(self, virtual_routers=routers)

    def without_virtual_router(self, name: str) -> RunningConfig:
        """Remove a VR, the tunnel interfaces that live in it and the RADIUS
        servers configured there."""
        return replace(
            self,
            virtual_routers=tuple(v for v in self.virtual_routers if v.name != name),
            tunnels=tuple(t for t in self.tunnels if t.vr != name),
            remote_access=self.remote_access.without_vr(name),
        )

    def options(self, vr: str) -> VrOptions:
        return self.virtual_router(vr).options

    def transport_vrs(self) -> tuple[str, ...]:
        """Every VR that carries IKE traffic: named by a local endpoint or a tunnel."""
        names = {ep.transport_vr for vr in self.virtual_routers for ep in vr.local_endpoints}
        names.update(t.transport_vr for t in self.tunnels)
        return tuple(sorted(names, key=lambda n: (n != DEFAULT_VR, n)))

    def local_endpoints_in(self, transport_vr: str) -> tuple[str, ...]:
        """Addresses to listen on inside `transport_vr`, whichever VR context set them."""
        found = {
            ep.address
            for vr in self.virtual_routers
            for ep in vr.local_endpoints
            if ep.transport_vr == transport_vr
        }
        return tuple(sorted(found))

    # -- transform sets, IKE policy rules, pre-shared keys --------------------

    def transform_set(self, name: str) -> TransformSet | None:
        return next((ts for ts in self.transform_sets if ts.name == name), None)

    def with_transform_set(self, ts: TransformSet) -> RunningConfig:
        sets = _upsert(self.transform_sets, ts, lambda t: t.name, lambda t: t.name)
        return replace(self, transform_sets=sets)

    def without_transform_set(self, name: str) -> RunningConfig:
        return replace(self, transform_sets=tuple(t for t in self.transform_sets if t.name != name))

    def tunnels_using_transform_set(self, name: str) -> tuple[str, ...]:
        return tuple(t.interface_name for t in self.tunnels if t.transform_set == name)

    def ike_policy_rule(self, priority: int) -> IkePolicyRule | None:
        return next((r for r in self.ike_policy_rules if r.priority == priority), None)

    def with_ike_policy_rule(self, rule: IkePolicyRule) -> RunningConfig:
        rules = _upsert(self.ike_policy_rules, rule, lambda r: r.priority, lambda r: r.priority)
        return replace(self, ike_policy_rules=rules)

    def without_ike_policy_rule(self, priority: int) -> RunningConfig:
        rules = tuple(r for r in self.ike_policy_rules if r.priority != priority)
        return replace(self, ike_policy_rules=rules)

    def pre_shared_key(self, peer: str) -> PreSharedKey | None:
        return next((k for k in self.pre_shared_keys if k.peer == peer), None)

    def with_pre_shared_key(self, key: PreSharedKey) -> RunningConfig:
        keys = _upsert(self.pre_shared_keys, key, lambda k: k.peer, lambda k: k.peer)
        return replace(self, pre_shared_keys=keys)

    def without_pre_shared_key(self, peer: str) -> RunningConfig:
        return replace(
            self, pre_shared_keys=tuple(k for k in self.pre_shared_keys if k.peer != peer)
        )

    # -- tunnel interfaces -----------------------------------------------------

    def tunnel(self, name: str) -> TunnelInterface | None:
        at = bisect.bisect_left(self.tunnels, name, key=lambda t: t.name)
        found = self.tunnels[at] if at < len(self.tunnels) else None
        return found if found is not None and found.name == name else None

    def with_tunnel(self, tunnel: TunnelInterface) -> RunningConfig:
        """Add or replace a tunnel; its operational VR is declared if it was not."""
        tunnels = _upsert(self.tunnels, tunnel, lambda t: t.name, lambda t: t.name)
        config = replace(self, tunnels=tunnels)
        if not config.has_virtual_router(tunnel.vr):
            config = config.with_virtual_router(VirtualRouter(tunnel.vr))
        return config

    def without_tunnel(self, name: str) -> RunningConfig:
        return replace(self, tunnels=tuple(t for t in self.tunnels if t.name != name))

    def tunnel_lifetime(self, tunnel: TunnelInterface) -> Lifetime:
        """`tunnel lifetime` when set, else the global `ipsec lifetime` (G)."""
        return tunnel.lifetime if tunnel.lifetime is not None else self.lifetime

    def missing(self, tunnel: TunnelInterface) -> tuple[str, ...]:
        """The commands a tunnel still needs before it negotiates (DECISIONS.md
        "Incomplete tunnels"): a source, a destination and a transform set; a
        tunnel with manual SAs needs both directions instead of a set."""
        needed: list[tuple[str, object]] = [("tunnel source", tunnel.source),
                                            ("tunnel destination", tunnel.destination)]
        if tunnel.manual:
            needed += [("tunnel manual inbound", tunnel.manual_inbound),
                       ("tunnel manual outbound", tunnel.manual_outbound)]
        else:
            needed.append(("tunnel transform-set", tunnel.transform_set))
        return tuple(command for command, value in needed if value is None)

    def tunnel_transforms(self, tunnel: TunnelInterface) -> tuple[str, ...]:
        """The transforms a tunnel offers, in priority order."""
        ts = self.transform_set(tunnel.transform_set) if tunnel.transform_set else None
        return ts.transforms if ts is not None else DEFAULT_TRANSFORMS
