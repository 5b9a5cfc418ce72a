"""`show configuration` / `write memory`: the running configuration as commands.

The text is what a JUNOSe router prints: one command a line, the lines of a
sub-mode indented one space and closed with `exit`, `!` between sections,
and only what differs from the defaults. Loading it through the command tree
(`ipsecgw.cli.loader.load_config_text`) gives an equal `RunningConfig`.

Order matters only where a command refers to another: transform sets come
before the tunnel interfaces that name them. Per-VR sections come last, each
opened by `virtual-router NAME`, so everything before them is in the default
virtual router.
"""

from __future__ import annotations

from .manual import ManualKeys
from .masking import mask_secret
from .model import (
    ANY_NETWORK,
    DEFAULT_VR,
    Certificates,
    Dpd,
    Identity,
    IkePolicyRule,
    Lifetime,
    PreSharedKey,
    RunningConfig,
    TunnelInterface,
    VirtualRouter,
)
from .render_remote import radius_lines, remote_access_sections
from .tokens import quote


def render(config: RunningConfig) -> str:
    sections: list[list[str]] = [[f"hostname {config.hostname}"]]
    if config.lifetime != Lifetime():
        sections.append([_lifetime("ipsec lifetime", config.lifetime)])
    if config.transform_sets:
        sections.append(
            [
                f"ipsec transform-set {ts.name} {' '.join(ts.transforms)}"
                for ts in config.transform_sets
            ]
        )
    if config.ike_policy_rules:
        sections.append([line for rule in config.ike_policy_rules for line in _ike_rule(rule)])
    if config.pre_shared_keys:
        sections.append([line for key in config.pre_shared_keys for line in _manual_key(key)])
    if config.certificates != Certificates():
        sections.append(_certificates(config.certificates))
    sections.extend(remote_access_sections(config.remote_access))
    for vr in config.virtual_routers:
        lines = [] if vr.name == DEFAULT_VR else [f"virtual-router {vr.name}"]
        lines += _vr_lines(vr)
        if vr.name != DEFAULT_VR:  # the default VR's are with the rest of remote access
            lines += radius_lines(config.remote_access, vr.name)
        tunnels = [t for t in config.tunnels if t.vr == vr.name]
        if lines:
            sections.append(lines)
        sections.extend(_tunnel(t) for t in tunnels)
    return "\n!\n".join("\n".join(section) for section in sections) + "\n"


def _certificates(certificates: Certificates) -> list[str]:
    lines = []
    if certificates.local_certificate is not None and certificates.private_key is not None:
        lines.append(f"ipsec certificate local {quote(certificates.local_certificate)} "
                     f"private-key {quote(certificates.private_key)}")
    lines += [f"ipsec certificate ca {quote(path)}" for path in certificates.ca_certificates]
    return lines


def _lifetime(prefix: str, lifetime: Lifetime) -> str:
    return f"{prefix} seconds {lifetime.seconds} kilobytes {lifetime.kilobytes}"


def _ike_rule(rule: IkePolicyRule) -> list[str]:
    default = IkePolicyRule(rule.priority)
    lines = [f"ipsec ike-policy-rule {rule.priority}"]
    if rule.authentication != default.authentication:
        lines.append(f" authentication {rule.authentication}")
    if rule.encryption != default.encryption:
        lines.append(f" encryption {rule.encryption}")
    if rule.hash != default.hash:
        lines.append(f" hash {rule.hash}")
    if rule.group != default.group:
        lines.append(f" group {rule.group}")
    if rule.lifetime_seconds != default.lifetime_seconds:
        lines.append(f" lifetime seconds {rule.lifetime_seconds}")
    if rule.aggressive_mode != default.aggressive_mode:
        lines.append(f" aggressive-mode {rule.aggressive_mode}")
    return [*lines, " exit"]


def _manual_key(key: PreSharedKey) -> list[str]:
    lines = [f"ipsec key manual pre-share {key.peer}"]
    if key.secret is not None:
        lines.append(f" masked-key {mask_secret(key.secret)}")
    return [*lines, " exit"]


def _dpd(dpd: Dpd) -> list[str]:
    default = Dpd()
    timers = [
        (word, value)
        for word, value, default_value in (
            ("idle", dpd.idle, default.idle),
            ("silence", dpd.silence, default.silence),
            ("retry", dpd.retry, default.retry),
            ("retries", dpd.retries, default.retries),
        )
        if value != default_value
    ]
    lines = []
    if timers:
        lines.append("ipsec option dpd " + " ".join(f"{w} {v}" for w, v in timers))
    if not dpd.enabled:
        lines.append("no ipsec option dpd")
    return lines


def _vr_lines(vr: VirtualRouter) -> list[str]:
    lines = [
        f"ipsec local-endpoint {ep.address} transport-virtual-router {ep.transport_vr}"
        for ep in vr.local_endpoints
    ]
    if vr.options.tx_invalid_cookie:
        lines.append("ipsec option tx-invalid-cookie")
    if not vr.options.nat_t:
        lines.append("no ipsec option nat-t")
    return lines + _dpd(vr.options.dpd)


def _identity(identity: Identity) -> str:
    return f"{identity.kind} {quote(identity.value)}"


def render_tunnel(tunnel: TunnelInterface) -> str:
    """One tunnel interface's block, as `show configuration` prints it."""
    return "\n".join(_tunnel(tunnel)) + "\n"


def _manual(direction: str, keys: ManualKeys) -> str:
    """Keys masked like pre-shared keys (masking.py)."""
    line = f" tunnel manual {direction} spi {keys.spi}"
    if keys.encryption_key:
        line += f" masked-encryption-key {mask_secret(keys.encryption_key)}"
    if keys.authentication_key:
        line += f" masked-authentication-key {mask_secret(keys.authentication_key)}"
    return line


def _tunnel(t: TunnelInterface) -> list[str]:
    lines = [f"interface tunnel {t.interface_name} transport-virtual-router {t.transport_vr}"]
    if t.description is not None:
        lines.append(f" description {quote(t.description)}")
    if t.source is not None:
        lines.append(f" tunnel source {t.source}")
    if t.destination is not None:
        backup = f" backup {t.backup_destination}" if t.backup_destination else ""
        lines.append(f" tunnel destination {t.destination}{backup}")
    if t.transform_set is not None:
        lines.append(f" tunnel transform-set {t.transform_set}")
    if t.pfs_group is not None:
        lines.append(f" tunnel pfs group {t.pfs_group}")
    if t.lifetime is not None:
        lines.append(_lifetime(" tunnel lifetime", t.lifetime))
    if t.local_identity is not None:
        lines.append(f" tunnel local-identity {_identity(t.local_identity)}")
    if t.peer_identity is not None:
        lines.append(f" tunnel peer-identity {_identity(t.peer_identity)}")
    if t.local_network != ANY_NETWORK:
        lines.append(f" tunnel local-network {t.local_network}")
    if t.remote_network != ANY_NETWORK:
        lines.append(f" tunnel remote-network {t.remote_network}")
    if t.mtu is not None:
        lines.append(f" tunnel mtu {t.mtu}")
    if t.ip_address is not None:
        lines.append(f" ip address {t.ip_address}")
    if t.responder_only:
        lines.append(" tunnel responder-only")
    for direction, keys in (("inbound", t.manual_inbound), ("outbound", t.manual_outbound)):
        if keys is not None:
            lines.append(_manual(direction, keys))
    if t.shutdown:
        lines.append(" shutdown")
    return [*lines, " exit"]
