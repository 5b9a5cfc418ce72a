"""Where the daemon meets the engine's subscriber classes (docs/INTERNALS.md, "Subscribers").

`translate` builds the engine's `TunnelProfile`s from the configuration here,
and the runtime hands the engine's subscriber events to `SubscriberManager`
and its answers back to `Engine.subscriber_login_result` through here: the
one module of the daemon that names those classes.
"""

from __future__ import annotations

from ..config.model import RunningConfig
from ..config.remote_access import ProfileIdentity
from ..isakmp import events as ev
from ..isakmp.engine import Engine
from ..isakmp.events import SubscriberAssignment
from ..isakmp.policy import Identity, IdentityPattern, TunnelProfile
from .subscribers import Grant, Refusal, SubscriberManager


def engine_profiles(config: RunningConfig, vr: str) -> tuple[TunnelProfile, ...]:
    """The tunnel profiles whose clients connect in transport VR `vr`."""
    profiles = []
    for p in config.remote_access.profiles:
        if p.local_address is None or p.transport_vr != vr:
            continue
        profiles.append(TunnelProfile(
            name=p.name,
            local_address=p.local_address,
            peer_identity=(IdentityPattern(p.peer_identity.kind, p.peer_identity.value)
                           if p.peer_identity is not None else None),
            local_identity=_identity(p.local_identity),
            psk=p.psk.encode() if p.psk is not None else None,
            aggressive_mode=p.aggressive_mode,
            transforms=p.transforms,
            pfs_group=p.pfs_group,
            lifetime_seconds=(p.lifetime_seconds if p.lifetime_seconds is not None
                              else config.lifetime.seconds),
            lifetime_kilobytes=(p.lifetime_kilobytes if p.lifetime_kilobytes is not None
                                else config.lifetime.kilobytes),
            local_networks=p.local_networks,
            xauth=p.xauth,
            max_interfaces=p.max_interfaces,
            dns=p.dns,
            wins=p.wins,
            domain_suffix=p.domain_suffix,
            mtu=p.mtu,
            mode_config=p.mode_config,
        ))
    return tuple(profiles)


def _identity(identity: ProfileIdentity | None) -> Identity | None:
    return Identity(identity.kind, identity.value) if identity is not None else None


def dispatch(manager: SubscriberManager, vr: str, event: object) -> bool:
    """Hand a subscriber event to the manager; False for any other event."""
    if isinstance(event, ev.SubscriberLoginRequested):
        manager.login_requested(vr, event)
    elif isinstance(event, ev.SubscriberUp):
        manager.up(vr, event)
    elif isinstance(event, ev.SubscriberDown):
        manager.down(vr, event)
    elif isinstance(event, ev.SubscriberLoginFailed):
        manager.login_failed(vr, event)
    else:
        return False
    return True


def deliver(engine: Engine, subscriber: int, answer: Grant | Refusal, now: float) -> None:
    """The manager's answer to a login, as the engine takes it."""
    if isinstance(answer, Refusal):
        engine.subscriber_login_result(subscriber, now, accepted=False, reason=answer.reason)
        return
    engine.subscriber_login_result(subscriber, now, accepted=True, assignment=SubscriberAssignment(
        address=answer.address, netmask=answer.netmask, dns=answer.dns, wins=answer.wins,
        domain=answer.domain, split_networks=answer.split_networks))
