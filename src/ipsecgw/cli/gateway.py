"""What the command line needs from the gateway, and an in-memory gateway for tests.

The daemon implements `Gateway`; a `Session` only ever talks to it through
these methods, synchronously, from the daemon's event loop.

Virtual-router scope: the CLI passes `vr=None` when the session is in the
default virtual router, which sees the whole router, and the VR name in any
other context, which sees only the SAs whose transport VR it is.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

from ..config.model import RunningConfig
from ..config.render import render
from ..config.store import save_atomic
from ..status import (
    IkeSaStatus,
    IpsecSaStatus,
    LocalEndpointStatus,
    TunnelState,
    TunnelStatus,
    VrStatistics,
)
from .show import config_status

SaSelector = Literal["all"] | tuple[Literal["tunnel"], str] | tuple[Literal["state"], TunnelState]


@dataclass(frozen=True)
class SubscriberInfo:
    """One remote-access subscriber as `show subscribers` lists it (issue 16)."""

    subscriber: int
    profile: str
    vr: str  # the profile's transport VR
    username: str | None
    peer: str  # the client's address:port
    address: str | None  # the address lent to it
    interface: str  # its dynamic tunnel interface, "ipsec:PROFILE:N"
    since: float  # wall-clock time it logged in
    inbound_bytes: int = 0
    outbound_bytes: int = 0


@dataclass(frozen=True)
class PoolUsage:
    """One address pool as `show ip local pool` lists it."""

    name: str
    first: str
    last: str
    size: int
    in_use: int


def pool_usage(name: str, first: str, last: str, in_use: int) -> PoolUsage:
    size = int(ipaddress.IPv4Address(last)) - int(ipaddress.IPv4Address(first)) + 1
    return PoolUsage(name, first, last, size, in_use)


class GatewayError(Exception):
    """The gateway refuses a change or an operation; the message says why."""


class Gateway(Protocol):
    @property
    def config(self) -> RunningConfig:
        """The running configuration."""
        ...

    #: Where ESP runs and why, e.g. "userspace (the kernel cannot ...)".
    data_plane: str

    def apply(self, new_config: RunningConfig) -> None:
        """Make `new_config` the running configuration, or raise GatewayError."""
        ...

    def clear_sa(self, vr: str | None, selector: SaSelector, phase: int | None) -> int:
        """`ipsec clear sa` (SPEC 1.1); returns how many SAs were cleared.

        `vr`: the transport VR to act in, None for every VR. `selector`:
        "all", ("tunnel", NAME) (the CLI has checked that the tunnel exists;
        `vr` is then its transport VR) or ("state", STATE) (tunnels whose
        state `tunnels()` reports as STATE). `phase`: 1 (ISAKMP/IKE SAs),
        2 (IPsec SAs) or None (both). Each SA is announced to the peer with a
        Delete, removed, and renegotiated for tunnels that are not shut down.
        """
        ...

    def tunnels(self) -> list[TunnelStatus]: ...

    def tunnel_states(self) -> dict[str, tuple[str, TunnelState]]:
        """Tunnel name -> (transport VR, state) for the tunnels the gateway
        runs: the cheap part of `tunnels()` (`show ipsec tunnel summary`)."""
        ...

    def ike_sas(self) -> list[IkeSaStatus]: ...

    def ipsec_sas(self) -> list[IpsecSaStatus]: ...

    def statistics(self) -> list[VrStatistics]: ...

    def local_endpoint_status(self) -> list[LocalEndpointStatus]:
        """Each IKE local endpoint the gateway runs (configured, or a tunnel's
        source): up (its UDP 500 and 4500 sockets open), or the reason it is not."""
        ...

    def write_memory(self) -> str:
        """Save `render(config)` atomically to the startup file; return its path."""
        ...

    def subscribers(self) -> list[SubscriberInfo]:
        """The remote-access subscribers logged in now."""
        ...

    def pool_usage(self) -> list[PoolUsage]:
        """Each configured address pool with how many of its addresses are lent."""
        ...


class FakeGateway:
    """A gateway with no engine: configuration in memory, status set by tests.

    Also what the startup-file loader runs its session against.
    """

    def __init__(
        self, config: RunningConfig | None = None, *, startup_path: str | Path | None = None
    ) -> None:
        self._config = config if config is not None else RunningConfig()
        self.startup_path = Path(startup_path) if startup_path is not None else None
        self.status: dict[str, TunnelStatus] = {}  # per tunnel name, overrides the default
        self.counters: dict[str, dict[str, int]] = {}  # per transport VR
        self.refuse: str | None = None  # the next apply() raises GatewayError(refuse)
        self.cleared: list[tuple[str | None, SaSelector, int | None]] = []
        #: (VR, address) -> why that endpoint is down; the others are up.
        self.endpoints_down: dict[tuple[str, str], str] = {}
        self.applied = 0
        self.subscriber_list: list[SubscriberInfo] = []  # what subscribers() reports
        self.pools_in_use: dict[str, int] = {}  # pool name -> addresses lent
        self.data_plane = "memory (no daemon)"

    @property
    def config(self) -> RunningConfig:
        return self._config

    def apply(self, new_config: RunningConfig) -> None:
        if self.refuse is not None:
            message, self.refuse = self.refuse, None
            raise GatewayError(message)
        self._config = new_config
        self.applied += 1

    def tunnels(self) -> list[TunnelStatus]:
        return [self.status.get(t.name) or config_status(t) for t in self._config.tunnels]

    def tunnel_states(self) -> dict[str, tuple[str, TunnelState]]:
        return {s.name: (s.vr, s.state) for s in self.status.values()}

    def ike_sas(self) -> list[IkeSaStatus]:
        return [sa for t in self.tunnels() for sa in t.ike_sas]

    def ipsec_sas(self) -> list[IpsecSaStatus]:
        return [sa for t in self.tunnels() for sa in t.ipsec_sas]

    def statistics(self) -> list[VrStatistics]:
        return [VrStatistics(vr, dict(c)) for vr, c in sorted(self.counters.items())]

    def local_endpoint_status(self) -> list[LocalEndpointStatus]:
        config = self._config
        wanted = {(vr, address) for vr in config.transport_vrs()
                  for address in config.local_endpoints_in(vr)}
        wanted |= {(t.transport_vr, t.source) for t in config.tunnels if t.source is not None}
        return [LocalEndpointStatus(vr, address, (vr, address) not in self.endpoints_down,
                                    self.endpoints_down.get((vr, address)))
                for vr, address in sorted(wanted)]

    def clear_sa(self, vr: str | None, selector: SaSelector, phase: int | None) -> int:
        self.cleared.append((vr, selector, phase))
        cleared = 0
        for status in self.tunnels():
            if vr is not None and status.vr != vr:
                continue
            if selector != "all" and selector[0] == "tunnel" and status.name != selector[1]:
                continue
            if selector != "all" and selector[0] == "state" and status.state != selector[1]:
                continue
            ike = status.ike_sas if phase in (None, 1) else ()
            ipsec = status.ipsec_sas if phase in (None, 2) else ()
            cleared += len(ike) + len(ipsec)
            if ike or ipsec:
                self.status[status.name] = replace(
                    status,
                    state=TunnelState.NEGOTIATING,
                    up_since=None,
                    ike_sas=tuple(sa for sa in status.ike_sas if sa not in ike),
                    ipsec_sas=tuple(sa for sa in status.ipsec_sas if sa not in ipsec),
                )
        return cleared

    def subscribers(self) -> list[SubscriberInfo]:
        return list(self.subscriber_list)

    def pool_usage(self) -> list[PoolUsage]:
        return [pool_usage(p.name, p.first, p.last, self.pools_in_use.get(p.name, 0))
                for p in self._config.remote_access.pools]

    def write_memory(self) -> str:
        if self.startup_path is None:
            raise GatewayError("no startup configuration file")
        save_atomic(self.startup_path, render(self._config))
        return str(self.startup_path)
