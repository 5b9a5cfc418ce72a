"""From the running configuration to what the engines and the data plane take.

The configuration model speaks the CLI's language; the engine has its own
plain policy dataclasses (`ipsecgw.isakmp.policy`) and the data plane its
`TunnelSpec`. This module is the one place that maps one onto the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config.manual import ManualKeys
from ..config.model import ANY_NETWORK, DEFAULT_VR, RunningConfig, TunnelInterface
from ..dataplane.base import DEFAULT_MTU, TunnelSpec
from ..isakmp.events import SaKeys
from ..isakmp.policy import DpdPolicy, EnginePolicy, Identity, IkeRule, TunnelPolicy
from ..isakmp.proposals import Phase2Suite, phase2_suite
from .manual import ManualSa
from .subscriber_engine import engine_profiles

log = logging.getLogger("ipsecgw.daemon")


Resolve = Callable[[str], "str | None"]
"""`tunnel destination` (an address or a name) -> IPv4 address, None while
unknown; must not block (`resolver.Resolver.address`)."""


def _tunnel_policy(config: RunningConfig, tunnel: TunnelInterface,
                   resolve: Resolve) -> TunnelPolicy | None:
    if tunnel.manual or tunnel.source is None or tunnel.destination is None:
        return None
    if config.missing(tunnel):
        log.info("tunnel ipsec:%s: incomplete (no %s): not negotiating", tunnel.name,
                 ", no ".join(config.missing(tunnel)))
        return None
    peer = resolve(tunnel.destination)
    if peer is None:
        log.info("tunnel ipsec:%s: no address for destination %s (yet)", tunnel.name,
                 tunnel.destination)
        return None
    backup = None if tunnel.backup_destination is None else resolve(tunnel.backup_destination)
    if backup == peer:
        log.warning("tunnel ipsec:%s: backup destination %s is the primary's address %s",
                    tunnel.name, tunnel.backup_destination, peer)
        backup = None
    lifetime = config.tunnel_lifetime(tunnel)
    return TunnelPolicy(
        name=tunnel.name,
        local_address=tunnel.source,
        peer_address=peer,
        backup_address=backup,
        transforms=config.tunnel_transforms(tunnel),
        pfs_group=tunnel.pfs_group,
        lifetime_seconds=lifetime.seconds,
        lifetime_kilobytes=lifetime.kilobytes,
        local_identity=(Identity(tunnel.local_identity.kind, tunnel.local_identity.value)
                        if tunnel.local_identity else None),
        peer_identity=(Identity(tunnel.peer_identity.kind, tunnel.peer_identity.value)
                       if tunnel.peer_identity else None),
        local_network=tunnel.local_network,
        remote_network=tunnel.remote_network,
        enabled=not tunnel.shutdown,
        initiate=not tunnel.responder_only,
    )


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        log.error("%s %s: %s", what, path, exc.strerror or exc)
        return None


def _credentials(config: RunningConfig) -> tuple[bytes | None, bytes | None, tuple[bytes, ...]]:
    """PEM bytes of our certificate, its key and the trusted CAs (unreadable ones logged)."""
    certificates = config.certificates
    cas = tuple(
        data for path in certificates.ca_certificates
        if (data := _read(path, "CA certificate")) is not None
    )
    return (_read(certificates.local_certificate, "certificate"),
            _read(certificates.private_key, "private key"), cas)


def engine_policies(config: RunningConfig, resolve: Resolve) -> dict[str, EnginePolicy]:
    """One `EnginePolicy` per transport virtual router (a tunnel whose
    destination has no address yet is left out until it has one)."""
    rules = tuple(
        IkeRule(
            priority=r.priority,
            authentication=r.authentication,
            encryption=r.encryption,
            hash=r.hash,
            group=r.group,
            lifetime_seconds=r.lifetime_seconds,
            aggressive_mode=r.aggressive_mode,
        )
        for r in config.ike_policy_rules
    )
    keys = {k.peer: k.secret.encode() for k in config.pre_shared_keys if k.secret is not None}
    certificate, private_key, cas = _credentials(config)
    policies: dict[str, EnginePolicy] = {}
    vrs = sorted({*config.transport_vrs(), *config.remote_access.transport_vrs()},
                 key=lambda n: (n != DEFAULT_VR, n))
    for vr in vrs:
        tunnels = []
        profiles = engine_profiles(config, vr)
        addresses = set(config.local_endpoints_in(vr)) | {p.local_address for p in profiles}
        for tunnel in config.tunnels:
            if tunnel.transport_vr != vr:
                continue
            policy = _tunnel_policy(config, tunnel, resolve)
            if policy is not None:
                tunnels.append(policy)
                addresses.add(policy.local_address)
        options = config.options(vr)
        policies[vr] = EnginePolicy(
            vr=vr,
            local_addresses=tuple(sorted(addresses)),
            ike_rules=rules,
            preshared_keys=keys,
            local_certificate=certificate,
            local_private_key=private_key,
            ca_certificates=cas,
            tunnels=tuple(tunnels),
            profiles=profiles,
            tx_invalid_cookie=options.tx_invalid_cookie,
            nat_t=options.nat_t,
            dpd=DpdPolicy(
                enabled=options.dpd.enabled,
                idle=float(options.dpd.idle),
                silence=float(options.dpd.silence),
                retry=float(options.dpd.retry),
                retries=options.dpd.retries,
            ),
        )
    return policies


def _sa_keys(suite: Phase2Suite, manual: ManualKeys) -> SaKeys:
    return SaKeys(manual.spi.to_bytes(4, "big"), suite.encryption,
                  bytes.fromhex(manual.encryption_key), suite.integrity,
                  bytes.fromhex(manual.authentication_key))


def manual_sas(config: RunningConfig, resolve: Resolve) -> dict[str, ManualSa]:
    """Tunnel -> its manual SA pair, for the tunnels whose manual SA is complete:
    source, a destination with an address, both directions, keys that fit
    the one transform (daemon/manual.py).  The others are logged and wait."""
    sas: dict[str, ManualSa] = {}
    for tunnel in config.tunnels:
        if not tunnel.manual or tunnel.shutdown:
            continue
        inbound, outbound = tunnel.manual_inbound, tunnel.manual_outbound
        transforms = config.tunnel_transforms(tunnel)
        peer = resolve(tunnel.destination) if tunnel.destination is not None else None
        problem = None
        if tunnel.source is None or peer is None:
            problem = "no source, or no address for its destination (yet)"
        elif inbound is None or outbound is None:
            problem = "only one direction configured"
        elif len(transforms) != 1:
            problem = f"{len(transforms)} transforms, a manual SA takes exactly one"
        else:
            problem = inbound.check(transforms[0]) or outbound.check(transforms[0])
        if problem is not None or tunnel.source is None or peer is None or \
                inbound is None or outbound is None:
            log.info("tunnel ipsec:%s: manual SA not installed: %s", tunnel.name, problem)
            continue
        suite = phase2_suite(transforms[0])
        sas[tunnel.name] = ManualSa(
            tunnel=tunnel.name, vr=tunnel.transport_vr, transform=transforms[0],
            peer=(peer, 0), local=(tunnel.source, 0), inbound=_sa_keys(suite, inbound),
            outbound=_sa_keys(suite, outbound), protocol=suite.protocol,
            local_network=tunnel.local_network, remote_network=tunnel.remote_network)
    return sas


def tunnel_specs(config: RunningConfig) -> list[TunnelSpec]:
    """The tunnel interfaces the data plane should have.

    A remote network of 0.0.0.0/0 (the default selector) is not routed into
    the tunnel: that would also capture the IKE and ESP packets to the peer
    itself. Route such traffic with an explicit `tunnel remote-network`.
    """
    specs = []
    for tunnel in config.tunnels:
        remote = () if tunnel.remote_network == ANY_NETWORK else (tunnel.remote_network,)
        local = () if tunnel.local_network == ANY_NETWORK else (tunnel.local_network,)
        try:
            specs.append(
                TunnelSpec(
                    name=tunnel.name,
                    vr=tunnel.vr,
                    address=tunnel.ip_address,
                    mtu=tunnel.mtu or DEFAULT_MTU,
                    remote_networks=remote,
                    local_networks=local,
                    transport_vr=tunnel.transport_vr,
                )
            )
        except ValueError as exc:
            log.error("tunnel ipsec:%s: %s", tunnel.name, exc)
    return specs
