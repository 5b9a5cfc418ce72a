"""The `memory` data plane: everything a real backend would do, minus the kernel.

It keeps the same SA database and runs the same ESP code as the user-space
backend, but its "TUN devices" are lists: `inject` stands for a packet the
host routed into a tunnel interface, and `delivered` collects the packets
that would have been written to it.  Raw ESP goes to `send_raw`, UDP ESP
to `send_udp` and AH (whole outer IPv4 packets) to `send_ah` when given, and
everything is recorded in `sent`.  `connect` wires two of them back to back,
which is how unit tests pass traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ipsecgw.dataplane.base import (
    Address,
    IpsecSa,
    TunnelSpec,
)
from ipsecgw.dataplane.esp import DEFAULT_REPLAY_WINDOW
from ipsecgw.dataplane.sadb import SaDatabase, SadbCounters

SendRaw = Callable[[bytes, Address, Address], None]


@dataclass(frozen=True)
class SentEsp:
    """One ESP or AH packet the data plane sent (AH: the whole IPv4 packet)."""

    data: bytes
    local: Address
    remote: Address
    udp: bool
    vr: str
    protocol: Literal["esp", "ah"] = "esp"


@dataclass(frozen=True)
class Route:
    """A route the data plane would have installed in a VR."""

    vr: str
    network: str
    tunnel: str
    source: str | None  # preferred source address


class MemoryDataPlane(SadbCounters):
    """A `DataPlane` that records what it would install and loops packets in memory."""

    def __init__(
        self,
        send_udp: SendRaw | None = None,
        *,
        send_raw: SendRaw | None = None,
        send_ah: SendRaw | None = None,
        clock: Callable[[], float] = time.monotonic,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
    ) -> None:
        self.send_udp = send_udp
        self.send_raw = send_raw
        self.send_ah = send_ah
        self._clock = clock
        self._sadb = SaDatabase(replay_window=replay_window)
        self.sent: list[SentEsp] = []
        self.delivered: dict[str, list[bytes]] = {}
        self.routes: set[Route] = set()
        self.installed: dict[bytes, IpsecSa] = {}  # inbound SPI -> the event installed
        self.closed = False

    @property
    def tunnels(self) -> dict[str, TunnelSpec]:
        return {name: self._sadb.spec(name) for name in self._sadb.tunnel_names()}

    def is_up(self, name: str) -> bool:
        return self._sadb.is_up(name)

    def add_tunnel(self, tunnel: TunnelSpec) -> None:
        self._sadb.add_tunnel(tunnel)
        self.delivered[tunnel.name] = []

    def remove_tunnel(self, name: str) -> None:
        for pair in self._sadb.remove_tunnel(name):
            self.installed.pop(pair.inbound.spi, None)
        self.routes = {route for route in self.routes if route.tunnel != name}
        self.delivered.pop(name, None)

    def set_tunnel_up(self, name: str, up: bool) -> None:
        if not self._sadb.set_up(name, up):
            return
        spec = self._sadb.spec(name)
        routes = {
            Route(spec.vr, network, name, spec.route_source(network))
            for network in spec.remote_networks
        }
        if up:
            self.routes |= routes
        else:
            self.routes -= routes

    def install_sa(self, sa: IpsecSa) -> None:
        self._sadb.install(sa, self._clock())
        self.installed[sa.inbound.spi] = sa

    def remove_sa(self, tunnel: str, inbound_spi: bytes, outbound_spi: bytes) -> None:
        if self._sadb.remove(tunnel, inbound_spi, outbound_spi) is not None:
            del self.installed[inbound_spi]

    def inject(self, tunnel: str, inner: bytes) -> None:
        """A packet the host routed into the tunnel interface."""
        protected = self._sadb.protect(tunnel, inner, self._clock())
        if protected is None:
            return
        packet, route = protected
        self.sent.append(
            SentEsp(packet, route.local, route.remote, route.udp, route.vr, route.protocol)
        )
        if route.protocol == "ah":
            output = self.send_ah
        else:
            output = self.send_udp if route.udp else self.send_raw
        if output is not None:
            output(packet, route.local, route.remote)

    def receive_esp(self, data: bytes, local: Address, remote: Address, udp: bool) -> None:
        accepted = self._sadb.accept(data, local, remote, self._clock())
        if accepted is not None:
            tunnel, inner = accepted
            self.delivered[tunnel].append(inner)

    def receive_ah(self, packet: bytes) -> None:
        accepted = self._sadb.accept_ah(packet, self._clock())
        if accepted is not None:
            tunnel, inner = accepted
            self.delivered[tunnel].append(inner)

    def close(self) -> None:
        for name in self._sadb.tunnel_names():
            self.remove_tunnel(name)
        self.closed = True


def connect(a: MemoryDataPlane, b: MemoryDataPlane) -> None:
    """Wire two memory data planes back to back: what one sends, the other receives."""

    def to(receiver: MemoryDataPlane, udp: bool) -> SendRaw:
        def deliver(data: bytes, local: Address, remote: Address) -> None:
            receiver.receive_esp(data, remote, local, udp)

        return deliver

    def ah_to(receiver: MemoryDataPlane) -> SendRaw:
        def deliver(packet: bytes, local: Address, remote: Address) -> None:
            receiver.receive_ah(packet)  # the addresses travel in the IPv4 header

        return deliver

    a.send_udp, a.send_raw, a.send_ah = to(b, True), to(b, False), ah_to(b)
    b.send_udp, b.send_raw, b.send_ah = to(a, True), to(a, False), ah_to(a)
