"""The data plane interface: what the daemon asks of a backend.

The daemon turns engine events into calls on a `DataPlane`: tunnel interfaces
come and go with the configuration (`add_tunnel`, `remove_tunnel`), routes
follow the tunnel state (`set_tunnel_up`), SAs follow `IpsecSaEstablished` and
`IpsecSaDeleted` (`install_sa`, `remove_sa`), and UDP-encapsulated ESP that
arrives on the daemon's port-4500 sockets is handed over with `receive_esp`.
Raw ESP (IP protocol 50) and AH (protocol 51, RFC 4302; never
UDP-encapsulated) arrive on the backend's own raw sockets.
The counters drive kilobyte lifetimes (`Engine.traffic`), DPD and the show
commands.

Backends: `memory.MemoryDataPlane` (records everything, no privileges) and
`userspace.UserspaceDataPlane` (TUN devices, ESP and AH in Python).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ipsecgw.dataplane.esp import DropReason, EspKeys

Address = tuple[str, int]  # (ip, port); port 0 for raw ESP

SendUdp = Callable[[str, bytes, Address, Address], None]
"""The daemon's output for UDP-encapsulated ESP: (vr, esp, local, remote).

`esp` starts with the SPI; RFC 3948 2.1 ESP-in-UDP carries no marker, so the
daemon sends it as is from its socket bound to `local` (port 4500) in
transport VR `vr`; OSError when it cannot (no such socket)."""

UdpSocketOf = Callable[[str, Address], "socket.socket | None"]
"""The daemon's UDP socket of (vr, local address), if it has one: lets the
data plane send runs of UDP-encapsulated ESP itself, segmented (RFC 3948
datagrams all the same on the wire)."""

DEFAULT_MTU = 1400  # leaves room for outer IP, UDP, ESP header, IV, padding, ICV


class DataPlaneError(Exception):
    """A request the data plane cannot carry out (unknown tunnel, bad SA ...)."""


class UnknownTunnel(DataPlaneError, KeyError):
    """No tunnel interface of that name (also a KeyError: a failed lookup)."""

    def __str__(self) -> str:
        return f"no tunnel {self.args[0]}"


class IpsecSa(Protocol):
    """What `install_sa` reads; `ipsecgw.isakmp.events.IpsecSaEstablished` fits."""

    @property
    def tunnel(self) -> str: ...
    @property
    def peer(self) -> Address: ...
    @property
    def local(self) -> Address: ...
    @property
    def inbound(self) -> EspKeys: ...
    @property
    def outbound(self) -> EspKeys: ...
    @property
    def protocol(self) -> str: ...  # "esp" | "ah"
    @property
    def encapsulation(self) -> str: ...  # "tunnel" | "udp-tunnel"
    @property
    def local_network(self) -> str: ...  # "10.98.1.0/24"
    @property
    def remote_network(self) -> str: ...
    @property
    def lifetime_seconds(self) -> int: ...
    @property
    def lifetime_kilobytes(self) -> int: ...
    @property
    def rekey_of(self) -> bytes | None: ...


@dataclass(frozen=True)
class TunnelSpec:
    """One tunnel interface as the data plane needs it."""

    name: str  # the tunnel's name, as events carry it
    vr: str = "default"  # operational VR: the network namespace of the TUN device
    address: str | None = None  # "ip/len" on the TUN device (`ip address`)
    mtu: int = DEFAULT_MTU
    remote_networks: tuple[str, ...] = ()  # routed into the tunnel while it is up
    local_networks: tuple[str, ...] = ()  # preferred source for those routes
    transport_vr: str | None = None  # namespace of the outer (ESP) packets; None = vr
    ifname: str | None = None  # TUN device name; None = derived from `name`

    def __post_init__(self) -> None:
        for network in (*self.remote_networks, *self.local_networks):
            ipaddress.ip_network(network)  # ValueError on a typo, before any device exists
        if self.address is not None:
            ipaddress.ip_interface(self.address)
        if not 68 <= self.mtu <= 65535:
            raise ValueError(f"MTU {self.mtu} out of range 68-65535")

    @property
    def outer_vr(self) -> str:
        return self.transport_vr if self.transport_vr is not None else self.vr

    def route_source(self, remote_network: str, candidates: Iterable[str] = ()) -> str | None:
        """Preferred source address for the route to `remote_network`.

        Packets the gateway itself originates must carry a source inside the
        local selector or the SA will not carry them (RFC 4301 5.1), and the
        kernel would otherwise pick the outer interface's address.  The first
        of the tunnel's own address and `candidates` (addresses present in
        the VR) that lies in a local network of the same IP version wins.
        """
        version = ipaddress.ip_network(remote_network, strict=False).version
        own = [str(ipaddress.ip_interface(self.address).ip)] if self.address else []
        local_networks = [ipaddress.ip_network(n, strict=False) for n in self.local_networks]
        if not local_networks:
            candidates = ()  # no selector to satisfy: only the tunnel's own address
            local_networks = [ipaddress.ip_network("::/0" if version == 6 else "0.0.0.0/0")]
        for candidate in (*own, *candidates):
            address = ipaddress.ip_address(candidate)
            if address.version != version or address.is_loopback or address.is_link_local:
                continue
            if any(address in network for network in local_networks):
                return candidate
        return None


@dataclass(frozen=True)
class TunnelCounters:
    """Cumulative counters of one tunnel interface.

    Bytes are inner (plaintext IP) bytes, which is what kilobyte lifetimes
    count.  Times are the data plane's clock (the event loop's monotonic
    time for `userspace`); None until the first packet.
    """

    inbound_bytes: int = 0
    inbound_packets: int = 0
    outbound_bytes: int = 0
    outbound_packets: int = 0
    auth_failed: int = 0
    replay: int = 0
    unknown_spi: int = 0  # attributed by the outer addresses of the packet
    malformed: int = 0
    pad_error: int = 0
    policy: int = 0  # decrypted inner packet outside the SA's selectors
    no_sa: int = 0  # outbound packet with no usable SA
    io_errors: int = 0  # TUN writes or ESP sends that failed
    last_inbound_at: float | None = None  # last authenticated ESP/AH packet: DPD
    last_outbound_at: float | None = None

    @property
    def drops(self) -> int:
        return (
            self.auth_failed
            + self.replay
            + self.unknown_spi
            + self.malformed
            + self.pad_error
            + self.policy
            + self.no_sa
        )


@dataclass(frozen=True)
class SaCounters:
    """Counters of one installed SA pair, found by its inbound SPI."""

    tunnel: str
    inbound_spi: bytes
    outbound_spi: bytes
    inbound_bytes: int
    inbound_packets: int
    outbound_bytes: int
    outbound_packets: int
    auth_failed: int
    replay: int
    malformed: int
    pad_error: int
    policy: int
    sequence_number: int  # last outbound sequence number sent
    rekey_needed: bool  # sequence numbers about to run out (RFC 4303 3.3.3)
    installed_at: float
    last_inbound_at: float | None


class DataPlane(Protocol):
    """The interface every backend implements (docs/INTERNALS.md section 4)."""

    def add_tunnel(self, tunnel: TunnelSpec) -> None:
        """Create the tunnel interface (down: no routes); DataPlaneError if it exists."""

    def remove_tunnel(self, name: str) -> None:
        """Remove the interface, its routes and all its SAs; unknown names are ignored."""

    def set_tunnel_up(self, name: str, up: bool) -> None:
        """Install (up) or remove (down) the routes of the tunnel's remote networks.

        A backend may hold the routes for a while after down (userspace:
        `ROUTE_HOLD_SECONDS`) so that a tunnel without SA for a moment, as
        during a late rekey, drops its packets instead of being unrouted."""

    def install_sa(self, sa: IpsecSa) -> None:
        """Install both directions; the newest matching SA carries outbound traffic.

        Older SAs of the tunnel keep decrypting until `remove_sa` (rekey
        overlap).  DataPlaneError (UnknownTunnel) for an unknown tunnel, an unsupported
        protocol or algorithm, AH with UDP encapsulation (AH cannot cross a NAT)
        or IPv6 outer addresses, or an inbound SPI already installed (under
        either protocol: a pair is named by its inbound SPI).
        """

    def remove_sa(self, tunnel: str, inbound_spi: bytes, outbound_spi: bytes) -> None:
        """Remove one SA pair; unknown SPIs are ignored (deletes may cross)."""

    def receive_esp(self, data: bytes, local: Address, remote: Address, udp: bool) -> None:
        """An ESP packet (starting at the SPI) that arrived at `local` from `remote`."""

    def receive_ah(self, packet: bytes) -> None:
        """An AH packet: the whole outer IPv4 packet, header included, as a raw
        socket delivers it (the ICV covers the header).  Backends with their
        own protocol-51 sockets call this themselves."""

    def counters(self, tunnel: str) -> TunnelCounters:
        """Cumulative counters; UnknownTunnel for an unknown tunnel."""

    def sa_counters(self, inbound_spi: bytes) -> SaCounters | None:
        """Counters of an installed SA pair, None when it is not installed."""

    def drop_counters(self) -> dict[DropReason, int]:
        """Drops that could not be attributed to any tunnel."""

    def traffic_changes(self) -> dict[str, tuple[int, int]]:
        """Tunnel -> (inbound bytes, outbound bytes), cumulative as in
        `counters`, for the tunnels whose byte counters changed since the
        previous call (every tunnel that carried a packet)."""

    def close(self) -> None:
        """Remove every tunnel and release every resource."""
