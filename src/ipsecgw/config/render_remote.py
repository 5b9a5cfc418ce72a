"""`show configuration` lines of the remote-access configuration (issue 16).

Sections in the order they may refer to each other: pools and users, the
RADIUS servers (in the order they are asked), the AAA method list, then the
tunnel profiles (which name pools). Secrets appear only masked.
"""

from __future__ import annotations

from ..netns import DEFAULT_VR
from .masking import mask_secret
from .remote_access import (
    DEFAULT_PROFILE_MTU,
    DEFAULT_PROFILE_TRANSFORMS,
    ProfileIdentity,
    RadiusServerConfig,
    RemoteAccess,
    TunnelProfile,
)
from .tokens import quote

#: The CLI's words for each identity kind of a profile.
IDENTITY_WORDS = {
    "key-id": "key-id",
    "domain-name": "domain-name",
    "user-fqdn": "user-fqdn",
    "address": "ip address",
    "asn1-dn": "distinguished-name",
}


def remote_access_sections(ra: RemoteAccess) -> list[list[str]]:
    sections: list[list[str]] = []
    if ra.pools:
        sections.append([f"ip local pool {p.name} {p.first} {p.last}" for p in ra.pools])
    if ra.users:
        sections.append([f"username {u.name} masked-password {mask_secret(u.password)}"
                         for u in ra.users])
    servers = radius_lines(ra, DEFAULT_VR)
    if servers:
        sections.append(servers)
    aaa = []
    if ra.xauth_methods != RemoteAccess().xauth_methods:
        aaa.append(f"aaa authentication xauth {' '.join(ra.xauth_methods)}")
    if ra.accounting_interval != RemoteAccess().accounting_interval:
        aaa.append(f"aaa user accounting interval {ra.accounting_interval}")
    if aaa:
        sections.append(aaa)
    sections.extend(render_profile(p) for p in ra.profiles)
    return sections


def radius_lines(ra: RemoteAccess, vr: str) -> list[str]:
    """The RADIUS servers configured in VR `vr`, in the order they are asked
    (the VR's own section of `show configuration` for a VR other than default)."""
    return [line for s in ra.radius_servers if s.vr == vr for line in _radius(s)]


def _radius(server: RadiusServerConfig) -> list[str]:
    default = RadiusServerConfig(server.role, server.address)
    lines = [f"radius {server.role} server {server.address}"]
    if server.key is not None:
        lines.append(f" masked-key {mask_secret(server.key)}")
    if server.udp_port is not None:
        lines.append(f" udp-port {server.udp_port}")
    if server.timeout != default.timeout:
        lines.append(f" timeout {server.timeout}")
    if server.retransmit != default.retransmit:
        lines.append(f" retransmit {server.retransmit}")
    return [*lines, " exit"]


def identity_words(identity: ProfileIdentity) -> str:
    return f"{IDENTITY_WORDS[identity.kind]} {quote(identity.value)}"


def render_profile(p: TunnelProfile) -> list[str]:
    lines = [f"ipsec tunnel-profile {p.name}"]
    if p.local_address is not None:
        lines.append(f" local-endpoint {p.local_address} transport-virtual-router {p.transport_vr}")
    if p.peer_identity is not None:
        lines.append(f" ike peer-identity {identity_words(p.peer_identity)}")
    if p.local_identity is not None:
        lines.append(f" ike local-identity {identity_words(p.local_identity)}")
    if p.psk is not None:
        lines.append(f" masked-key {mask_secret(p.psk)}")
    if p.aggressive_mode != "accepted":
        lines.append(f" aggressive-mode {p.aggressive_mode}")
    if p.transforms != DEFAULT_PROFILE_TRANSFORMS:
        lines.append(f" transform {' '.join(p.transforms)}")
    if p.pfs_group is not None:
        lines.append(f" pfs group {p.pfs_group}")
    if p.lifetime_seconds is not None:
        lines.append(f" lifetime seconds {p.lifetime_seconds}")
    if p.lifetime_kilobytes is not None:
        lines.append(f" lifetime kilobytes {p.lifetime_kilobytes}")
    lines += [f" local-network {network}" for network in p.local_networks]
    if p.pool is not None:
        lines.append(f" ip pool {p.pool}")
    for word, value in (("dns primary", p.dns_primary), ("dns secondary", p.dns_secondary),
                        ("wins primary", p.wins_primary), ("wins secondary", p.wins_secondary),
                        ("domain-suffix", p.domain_suffix)):
        if value is not None:
            lines.append(f" {word} {value}")
    if not p.xauth:
        lines.append(" xauth none")
    if p.mode_config != "pull":
        lines.append(f" mode-config {p.mode_config}")
    if p.max_interfaces:
        lines.append(f" max-interfaces {p.max_interfaces}")
    if p.mtu != DEFAULT_PROFILE_MTU:
        lines.append(f" tunnel mtu {p.mtu}")
    return [*lines, " exit"]
