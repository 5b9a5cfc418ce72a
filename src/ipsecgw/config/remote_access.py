"""Remote-access configuration (issue 16): tunnel profiles, pools, users, RADIUS, AAA.

One value, `RemoteAccess`, is the `remote_access` field of `RunningConfig`,
so the rest of the configuration model does not change (and this module
imports nothing of it: `model` imports this one). Like the rest of
the model it is immutable and compares equal when it says the same thing:
profiles, pools and users are kept sorted by name. RADIUS servers keep the
order they were configured in, VR by VR (the default VR's first, then the
others by name), which is the order they are asked in; each is reached from
the VR it was configured in (`RadiusServerConfig.vr`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from ..netns import DEFAULT_VR

#: ID types a profile matches or sends (RFC 2407 4.6.2.1); "key-id" is
#: ID_KEY_ID, the group name of Cisco-style clients such as vpnc.
ProfileIdentityKind = Literal["key-id", "domain-name", "user-fqdn", "address", "asn1-dn"]
XauthMethod = Literal["radius", "local"]
RadiusRole = Literal["authentication", "accounting"]
#: A profile only answers, so the initiator's "requested" has no meaning here.
ProfileAggressiveMode = Literal["accepted", "required", "none"]
PROFILE_AGGRESSIVE_MODES: tuple[ProfileAggressiveMode, ...] = ("accepted", "required", "none")
#: `mode-config pull` answers the client's Mode Config REQUEST; `push` SETs
#: the configuration after XAUTH for clients that wait for it.
ProfileModeConfig = Literal["pull", "push"]
PROFILE_MODE_CONFIGS: tuple[ProfileModeConfig, ...] = ("pull", "push")

MAX_PROFILE_TRANSFORMS = 6
DEFAULT_PROFILE_TRANSFORMS: tuple[str, ...] = ("esp-aes256-hmac-sha",)
DEFAULT_PROFILE_MTU = 1400
RADIUS_PORTS: dict[RadiusRole, int] = {"authentication": 1812, "accounting": 1813}
#: `aaa user accounting interval`: minutes between a subscriber's RADIUS
#: Interim-Updates when its Access-Accept named no Acct-Interim-Interval.
DEFAULT_ACCOUNTING_INTERVAL = 10


@dataclass(frozen=True)
class ProfileIdentity:
    """`ike peer-identity` (may hold `*` wildcards) / `ike local-identity`."""

    kind: ProfileIdentityKind
    value: str


@dataclass(frozen=True)
class TunnelProfile:
    """`ipsec tunnel-profile NAME`: how dynamic subscribers are accepted and set up."""

    name: str
    local_address: str | None = None  # `local-endpoint`: where clients connect
    transport_vr: str = DEFAULT_VR
    peer_identity: ProfileIdentity | None = None  # None: any identity
    local_identity: ProfileIdentity | None = None  # None: the local address
    psk: str | None = field(default=None, repr=False)  # the group key
    aggressive_mode: ProfileAggressiveMode = "accepted"
    transforms: tuple[str, ...] = DEFAULT_PROFILE_TRANSFORMS
    pfs_group: int | None = None
    lifetime_seconds: int | None = None  # None: the global `ipsec lifetime`
    lifetime_kilobytes: int | None = None
    local_networks: tuple[str, ...] = ()  # split tunnel; () = all traffic
    pool: str | None = None  # `ip pool NAME`
    dns_primary: str | None = None
    dns_secondary: str | None = None
    wins_primary: str | None = None
    wins_secondary: str | None = None
    domain_suffix: str | None = None
    xauth: bool = True  # `xauth required` (default) | `xauth none`
    max_interfaces: int = 0  # 0: no limit
    mtu: int = DEFAULT_PROFILE_MTU
    mode_config: ProfileModeConfig = "pull"

    @property
    def dns(self) -> tuple[str, ...]:
        return tuple(a for a in (self.dns_primary, self.dns_secondary) if a is not None)

    @property
    def wins(self) -> tuple[str, ...]:
        return tuple(a for a in (self.wins_primary, self.wins_secondary) if a is not None)


@dataclass(frozen=True)
class LocalPool:
    """`ip local pool NAME FIRST LAST`."""

    name: str
    first: str
    last: str


@dataclass(frozen=True)
class LocalUser:
    """`username NAME password SECRET`; the password is never part of repr()."""

    name: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class RadiusServerConfig:
    """`radius authentication|accounting server ADDRESS` and its mode's settings,
    configured in VR `vr` (the requests leave from there)."""

    role: RadiusRole
    address: str
    key: str | None = field(default=None, repr=False)
    udp_port: int | None = None  # None: 1812 / 1813 by role
    timeout: int = 3  # seconds per try
    retransmit: int = 3  # tries after the first
    vr: str = DEFAULT_VR

    @property
    def port(self) -> int:
        return self.udp_port if self.udp_port is not None else RADIUS_PORTS[self.role]

    @property
    def target(self) -> str:
        """How a CLI session names it while in its mode."""
        return f"{self.role} {self.address}"


@dataclass(frozen=True)
class RemoteAccess:
    profiles: tuple[TunnelProfile, ...] = ()
    pools: tuple[LocalPool, ...] = ()
    users: tuple[LocalUser, ...] = ()
    radius_servers: tuple[RadiusServerConfig, ...] = ()  # in configured order
    xauth_methods: tuple[XauthMethod, ...] = ("local",)
    accounting_interval: int = DEFAULT_ACCOUNTING_INTERVAL  # minutes

    def profile(self, name: str) -> TunnelProfile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def with_profile(self, profile: TunnelProfile) -> RemoteAccess:
        kept = [p for p in self.profiles if p.name != profile.name]
        return replace(self, profiles=tuple(sorted([*kept, profile], key=lambda p: p.name)))

    def without_profile(self, name: str) -> RemoteAccess:
        return replace(self, profiles=tuple(p for p in self.profiles if p.name != name))

    def pool(self, name: str) -> LocalPool | None:
        return next((p for p in self.pools if p.name == name), None)

    def with_pool(self, pool: LocalPool) -> RemoteAccess:
        kept = [p for p in self.pools if p.name != pool.name]
        return replace(self, pools=tuple(sorted([*kept, pool], key=lambda p: p.name)))

    def without_pool(self, name: str) -> RemoteAccess:
        return replace(self, pools=tuple(p for p in self.pools if p.name != name))

    def profiles_using_pool(self, name: str) -> tuple[str, ...]:
        return tuple(p.name for p in self.profiles if p.pool == name)

    def user(self, name: str) -> LocalUser | None:
        return next((u for u in self.users if u.name == name), None)

    def with_user(self, user: LocalUser) -> RemoteAccess:
        kept = [u for u in self.users if u.name != user.name]
        return replace(self, users=tuple(sorted([*kept, user], key=lambda u: u.name)))

    def without_user(self, name: str) -> RemoteAccess:
        return replace(self, users=tuple(u for u in self.users if u.name != name))

    def radius_server(self, role: RadiusRole, address: str,
                      vr: str = DEFAULT_VR) -> RadiusServerConfig | None:
        return next((s for s in self.radius_servers
                     if (s.role, s.address, s.vr) == (role, address, vr)), None)

    def with_radius_server(self, server: RadiusServerConfig) -> RemoteAccess:
        """Replace in place, or add after the others of its VR (the last of them
        asked). The VRs' servers follow one another as `show configuration`
        lists them, so that the order survives a reload."""
        servers = list(self.radius_servers)
        for index, old in enumerate(servers):
            if (old.role, old.address, old.vr) == (server.role, server.address, server.vr):
                servers[index] = server
                break
        else:
            servers.append(server)
        servers.sort(key=lambda s: (s.vr != DEFAULT_VR, s.vr))  # stable: configured order
        return replace(self, radius_servers=tuple(servers))

    def without_radius_server(self, role: RadiusRole, address: str,
                              vr: str = DEFAULT_VR) -> RemoteAccess:
        return replace(self, radius_servers=tuple(
            s for s in self.radius_servers if (s.role, s.address, s.vr) != (role, address, vr)))

    def without_vr(self, vr: str) -> RemoteAccess:
        """`no virtual-router VR`: the RADIUS servers configured there go."""
        return replace(self, radius_servers=tuple(s for s in self.radius_servers if s.vr != vr))

    def servers(self, role: RadiusRole) -> tuple[RadiusServerConfig, ...]:
        """The servers of a role that can be asked (those with a key), in order."""
        return tuple(s for s in self.radius_servers if s.role == role and s.key is not None)

    def transport_vrs(self) -> tuple[str, ...]:
        """The VRs that carry the IKE of a profile with a local endpoint."""
        return tuple(sorted({p.transport_vr for p in self.profiles
                             if p.local_address is not None}))
