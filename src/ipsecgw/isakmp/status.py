"""Status snapshots of the engine's tunnels and SAs (`show ipsec tunnel`, `show ipsec ike-sa`).

Pure functions over the engine's tables (`Registry`, `TunnelTable`): the
snapshots are the frozen dataclasses of `ipsecgw.status`, built in time
linear in what they list; nothing here changes state.
"""

from __future__ import annotations

from collections.abc import Callable

from ipsecgw.status import DpdStatus, IkeSaStatus, IpsecSaStatus, TunnelState, TunnelStatus

from .identity import identity_string
from .registry import Registry
from .sa import IkeSa, IpsecSa
from .tunnel_table import TunnelRuntime, TunnelTable


def ike_sa_status(vr: str, sas: Registry, tunnels: TunnelTable,
                  now: float) -> list[IkeSaStatus]:
    """Every ISAKMP SA, negotiating or established (`show ipsec ike-sa`)."""
    return [_ike_status(vr, ike, tunnels, now) for ike in sas.ike.values()]


#: The DPD state of a tunnel's peer (`DeadPeerDetection.status`).
DpdOf = Callable[[TunnelRuntime, float], DpdStatus]


def tunnel_status(vr: str, sas: Registry, tunnels: TunnelTable, now: float,
                  dpd: DpdOf | None = None) -> list[TunnelStatus]:
    """Every configured tunnel with its SAs (`show ipsec tunnel`), in configuration order.

    A responder-only tunnel without SAs is "down", like any tunnel waiting
    for its next attempt; it is "negotiating" only while the peer is.
    """
    return [_tunnel_status(vr, sas, tunnels, runtime, now, dpd) for runtime in tunnels]


def tunnel_states(sas: Registry, tunnels: TunnelTable) -> dict[str, TunnelState]:
    """Each configured tunnel's state alone (`show ipsec tunnel summary`):
    no SA snapshots, so that thousands of tunnels are counted cheaply."""
    states = {}
    for runtime in tunnels:
        children = sas.children_of_tunnel(runtime.name)
        states[runtime.name] = _state(sas, runtime, any(not c.superseded for c in children))
    return states


def _state(sas: Registry, runtime: TunnelRuntime, live: bool) -> TunnelState:
    policy = runtime.policy
    if not policy.enabled:
        return TunnelState.DISABLED
    if live:
        return TunnelState.UP
    if sas.quick_mode_running(policy.name) or sas.phase1_in_progress(runtime.peer_key):
        return TunnelState.NEGOTIATING
    return TunnelState.DOWN


def _ike_status(vr: str, ike: IkeSa, tunnels: TunnelTable, now: float) -> IkeSaStatus:
    suite = ike.suite or (ike.offered[0] if ike.offered else None)
    tunnel = tunnels.serving(ike)
    return IkeSaStatus(
        vr=vr, local=ike.local[0], remote=ike.remote[0],
        local_port=ike.local[1], remote_port=ike.remote[1],
        initiator_cookie=ike.cookie_i, responder_cookie=ike.cookie_r,
        role=ike.role.value, state=ike.state.value, exchange=ike.exchange,
        authentication=suite.authentication if suite else "",
        encryption=suite.encryption if suite else "", hash=suite.hash if suite else "",
        group=suite.group if suite else 0,
        lifetime_seconds=suite.lifetime_seconds if suite else 0,
        remaining_seconds=max(0, int((ike.expires_at or now) - now)),
        nat_detected=ike.nat_detected,
        tunnel=ike.tunnel or (tunnel.name if tunnel is not None else None),
        local_identity=identity_string(ike.local_id) if ike.local_id else "",
        peer_identity=identity_string(ike.peer_id) if ike.peer_id else "",
    )


def _tunnel_status(vr: str, sas: Registry, tunnels: TunnelTable, runtime: TunnelRuntime,
                   now: float, dpd: DpdOf | None) -> TunnelStatus:
    policy = runtime.policy
    children = sas.children_of_tunnel(policy.name)
    live = [c for c in children if not c.superseded]
    # A subscriber's phase 1 belongs to its own tunnel only (subscribers.py), not
    # to the other subscribers' tunnels at the same address nor to configured ones.
    ikes = tuple(_ike_status(vr, ike, tunnels, now) for ike in sas.ike_of_peer(runtime.peer_key)
                 if ike.profile is None or ike.tunnel == policy.name)
    return TunnelStatus(
        name=policy.name, vr=vr, state=_state(sas, runtime, bool(live)),
        local=policy.local_address, peer=policy.peer_address,
        transform=live[-1].transform if live else policy.transforms[0],
        up_since=runtime.up_since if live else None, last_failure=runtime.last_failure,
        last_failure_at=runtime.last_failure_at,
        dpd=dpd(runtime, now) if dpd is not None and policy.enabled else None,
        backup=policy.backup_address, on_backup=runtime.on_backup,
        switchovers=runtime.switchovers, last_switchover=runtime.last_switchover,
        ike_sas=ikes,
        ipsec_sas=tuple(_child_status(vr, child, runtime, now) for child in children))


def _child_status(vr: str, child: IpsecSa, runtime: TunnelRuntime, now: float) -> IpsecSaStatus:
    return IpsecSaStatus(
        vr=vr, tunnel=child.tunnel, inbound_spi=child.inbound_spi,
        outbound_spi=child.outbound_spi, protocol=child.protocol, transform=child.transform,
        local_network=child.local_network, remote_network=child.remote_network,
        encapsulation=child.encapsulation, pfs_group=child.pfs_group,
        lifetime_seconds=child.lifetime_seconds, lifetime_kilobytes=child.lifetime_kilobytes,
        remaining_seconds=max(0, int(child.expires_at - now)),
        remaining_kilobytes=max(0, child.lifetime_kilobytes - max(
            runtime.inbound_bytes - child.inbound_at_start,
            runtime.outbound_bytes - child.outbound_at_start) // 1024)
        if child.lifetime_kilobytes else None,
        inbound_bytes=max(0, runtime.inbound_bytes - child.inbound_at_start),
        outbound_bytes=max(0, runtime.outbound_bytes - child.outbound_at_start))
