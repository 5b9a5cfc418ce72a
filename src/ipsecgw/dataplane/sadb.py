"""The security association database shared by the data plane backends.

Sans-IO: it holds tunnels and SA pairs, picks the outbound SA for a packet
by its selectors, finds the inbound SA by SPI, runs ESP or AH and keeps the
counters.  The backends only move bytes between it and the world, so the
memory fake exercises exactly the packet logic that the user-space backend
runs.

Selectors are checked both ways (RFC 4301 section 5): an outbound packet is
protected only by an SA whose local/remote networks contain its source and
destination, and a decrypted inbound packet is dropped unless its addresses
fall inside the SA it arrived on.

ESP and AH SPIs are separate spaces (RFC 4301 4.1): a packet is looked up
among the SAs of its own protocol only.  The `DataPlane` interface names a
pair by its inbound SPI alone (`remove_sa`, `sa_counters`), so an inbound
SPI is installed at most once across both protocols; the SPIs are our own
choice (the engine allocates them), so that costs nothing.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Literal

from ipsecgw.dataplane.ah import InboundAh, OutboundAh
from ipsecgw.dataplane.base import (
    Address,
    DataPlaneError,
    IpsecSa,
    SaCounters,
    TunnelCounters,
    TunnelSpec,
    UnknownTunnel,
)
from ipsecgw.dataplane.common import DropReason, PacketDropped, SequenceExhausted
from ipsecgw.dataplane.esp import InboundSa, OutboundSa

# Source and destination address of an IPv4 (at offset 12) and an IPv6
# header (at offset 8, as two 64-bit halves each).
_IPV4_ADDRESSES = struct.Struct("!II")
_IPV6_ADDRESSES = struct.Struct("!QQQQ")
_AH_SPI_OFFSET = 4  # SPI within the AH header (RFC 4302 2)


#: How long a rekeyed SA pair waits before carrying outbound traffic (see SaPair).
SWITCH_DELAY = 0.5


@dataclass(frozen=True)
class OuterRoute:
    """Where the ESP or AH packets of one SA pair go and come from."""

    vr: str  # transport VR: namespace of the outer packets
    local: Address
    remote: Address
    udp: bool  # RFC 3948 UDP-encapsulated ESP, else raw IP protocol 50 or 51
    protocol: Literal["esp", "ah"] = "esp"
    # "ah": `protect` returns whole IPv4 packets, to be sent with IP_HDRINCL


class _Selectors:
    """An SA's local and remote networks (RFC 4301 4.4.1), matched against
    raw IP headers without building address objects per packet."""

    __slots__ = ("version", "local_network", "local_mask", "remote_network", "remote_mask")

    def __init__(self, local: str, remote: str) -> None:
        local_network = ipaddress.ip_network(local, strict=False)
        remote_network = ipaddress.ip_network(remote, strict=False)
        if local_network.version != remote_network.version:
            raise ValueError("local and remote networks are of different IP versions")
        self.version = local_network.version
        self.local_network = int(local_network.network_address)
        self.local_mask = int(local_network.netmask)
        self.remote_network = int(remote_network.network_address)
        self.remote_mask = int(remote_network.netmask)

    def _addresses(self, packet: bytes) -> tuple[int, int] | None:
        if not packet or packet[0] >> 4 != self.version:
            return None
        try:
            if self.version == 4:
                source, destination = _IPV4_ADDRESSES.unpack_from(packet, 12)
                return source, destination
            high, low, destination_high, destination_low = _IPV6_ADDRESSES.unpack_from(packet, 8)
        except struct.error:
            return None  # shorter than an IP header
        return high << 64 | low, destination_high << 64 | destination_low

    def outbound(self, packet: bytes) -> bool:
        addresses = self._addresses(packet)
        return (
            addresses is not None
            and addresses[0] & self.local_mask == self.local_network
            and addresses[1] & self.remote_mask == self.remote_network
        )

    def inbound(self, packet: bytes) -> bool:
        addresses = self._addresses(packet)
        return (
            addresses is not None
            and addresses[0] & self.remote_mask == self.remote_network
            and addresses[1] & self.local_mask == self.local_network
        )


class SaPair:
    """One installed SA pair: both directions (ESP or AH) of one Quick Mode."""

    inbound: InboundSa | InboundAh
    outbound: OutboundSa | OutboundAh

    def __init__(self, sa: IpsecSa, vr: str, *, replay_window: int, now: float) -> None:
        if sa.protocol not in ("esp", "ah"):
            raise DataPlaneError(f"protocol {sa.protocol!r} is not supported")
        if sa.encapsulation not in ("tunnel", "udp-tunnel"):
            raise DataPlaneError(f"encapsulation {sa.encapsulation!r} is not supported")
        self.ah = sa.protocol == "ah"
        udp = sa.encapsulation == "udp-tunnel"
        if self.ah and udp:
            # The ICV covers the outer addresses, which a NAT rewrites, and
            # RFC 3948 defines UDP encapsulation for ESP only.
            raise DataPlaneError(
                f"SA for {sa.tunnel}: AH cannot be UDP-encapsulated (it cannot cross a NAT)"
            )
        try:
            if self.ah:
                self.inbound = InboundAh(
                    sa.inbound, sa.local[0], sa.peer[0], replay_window=replay_window
                )
                self.outbound = OutboundAh(sa.outbound, sa.local[0], sa.peer[0])
            else:
                self.inbound = InboundSa(sa.inbound, replay_window=replay_window)
                self.outbound = OutboundSa(sa.outbound)
            self.selectors = _Selectors(sa.local_network, sa.remote_network)
        except ValueError as error:
            raise DataPlaneError(f"SA for {sa.tunnel}: {error}") from error
        # Raw ESP and AH have no ports; keep 0 so that addresses compare alike.
        self.route = OuterRoute(
            vr,
            sa.local if udp else (sa.local[0], 0),
            sa.peer if udp else (sa.peer[0], 0),
            udp,
            "ah" if self.ah else "esp",
        )
        self.tunnel = sa.tunnel
        self.installed_at = now
        # A pair that replaces another takes over outbound traffic only after
        # SWITCH_DELAY, or as soon as the peer uses it: the Quick Mode
        # initiator installs on sending HASH(3), and ESP sent at once could
        # reach the peer before it has processed that message and installed
        # its inbound SA (a few packets lost at every rekey otherwise).
        self.outbound_from = now
        self.last_inbound_at: float | None = None
        self.drops = dict.fromkeys(DropReason, 0)

    def counters(self) -> SaCounters:
        return SaCounters(
            tunnel=self.tunnel,
            inbound_spi=self.inbound.spi,
            outbound_spi=self.outbound.spi,
            inbound_bytes=self.inbound.bytes,
            inbound_packets=self.inbound.packets,
            outbound_bytes=self.outbound.bytes,
            outbound_packets=self.outbound.packets,
            auth_failed=self.drops[DropReason.AUTH_FAILED],
            replay=self.drops[DropReason.REPLAY],
            malformed=self.drops[DropReason.MALFORMED],
            pad_error=self.drops[DropReason.PAD_ERROR],
            policy=self.drops[DropReason.POLICY],
            sequence_number=self.outbound.sequence_number,
            rekey_needed=self.outbound.rekey_needed,
            installed_at=self.installed_at,
            last_inbound_at=self.last_inbound_at,
        )


class _Tunnel:
    def __init__(self, spec: TunnelSpec) -> None:
        self.spec = spec
        self.up = False
        self.pairs: list[SaPair] = []  # oldest first; the newest carries outbound traffic
        self.inbound_bytes = 0
        self.inbound_packets = 0
        self.outbound_bytes = 0
        self.outbound_packets = 0
        self.drops = dict.fromkeys(DropReason, 0)
        self.no_sa = 0
        self.io_errors = 0
        self.last_inbound_at: float | None = None
        self.last_outbound_at: float | None = None


class SaDatabase:
    """Tunnels, SA pairs and counters; every method is pure bookkeeping."""

    def __init__(self, *, replay_window: int = 64) -> None:
        self._replay_window = replay_window
        self._tunnels: dict[str, _Tunnel] = {}
        self._by_inbound_spi: dict[bytes, SaPair] = {}
        # (local ip, remote ip) -> tunnel, to charge drops that name no SA.
        self._by_addresses: dict[tuple[str, str], str] = {}
        self.unattributed_drops = dict.fromkeys(DropReason, 0)
        # Tunnels whose byte counters moved since `traffic_changes` last ran.
        self._touched: set[str] = set()

    # Configuration

    def add_tunnel(self, spec: TunnelSpec) -> None:
        if spec.name in self._tunnels:
            raise DataPlaneError(f"tunnel {spec.name} already exists")
        self._tunnels[spec.name] = _Tunnel(spec)

    def remove_tunnel(self, name: str) -> list[SaPair]:
        """Forget the tunnel; returns the SA pairs that went with it."""
        tunnel = self._tunnels.pop(name, None)
        if tunnel is None:
            return []
        self._forget(tunnel.pairs)
        return tunnel.pairs

    def spec(self, name: str) -> TunnelSpec:
        return self._tunnel(name).spec

    def tunnel_names(self) -> list[str]:
        return list(self._tunnels)

    def set_up(self, name: str, up: bool) -> bool:
        """Record the state; returns whether it changed."""
        tunnel = self._tunnel(name)
        changed = tunnel.up != up
        tunnel.up = up
        return changed

    def is_up(self, name: str) -> bool:
        return self._tunnel(name).up

    def install(self, sa: IpsecSa, now: float) -> SaPair:
        tunnel = self._tunnel(sa.tunnel)
        if sa.inbound.spi in self._by_inbound_spi:
            raise DataPlaneError(f"inbound SPI {sa.inbound.spi.hex()} is already installed")
        pair = SaPair(sa, tunnel.spec.outer_vr, replay_window=self._replay_window, now=now)
        if tunnel.pairs:
            pair.outbound_from = now + SWITCH_DELAY
        tunnel.pairs.append(pair)
        self._by_inbound_spi[pair.inbound.spi] = pair
        self._by_addresses[(pair.route.local[0], pair.route.remote[0])] = tunnel.spec.name
        return pair

    def remove(self, tunnel_name: str, inbound_spi: bytes, outbound_spi: bytes) -> SaPair | None:
        pair = self._by_inbound_spi.get(inbound_spi)
        if pair is None or pair.tunnel != tunnel_name or pair.outbound.spi != outbound_spi:
            return None
        self._tunnels[tunnel_name].pairs.remove(pair)
        self._forget([pair])
        return pair

    def pairs(self) -> list[SaPair]:
        return list(self._by_inbound_spi.values())

    def _forget(self, pairs: list[SaPair]) -> None:
        for pair in pairs:
            del self._by_inbound_spi[pair.inbound.spi]
        for key in {(pair.route.local[0], pair.route.remote[0]) for pair in pairs}:
            survivor = next(
                (
                    p.tunnel
                    for p in reversed(self._by_inbound_spi.values())
                    if (p.route.local[0], p.route.remote[0]) == key
                ),
                None,
            )
            if survivor is None:
                self._by_addresses.pop(key, None)
            else:
                self._by_addresses[key] = survivor

    def _tunnel(self, name: str) -> _Tunnel:
        tunnel = self._tunnels.get(name)
        if tunnel is None:
            raise UnknownTunnel(name)
        return tunnel

    # Packets

    def protect(
        self, tunnel_name: str, inner: bytes, now: float
    ) -> tuple[bytes, OuterRoute] | None:
        """What to send for an inner packet leaving through the tunnel, and
        how; None if dropped.  ESP starts at the SPI; AH (`route.protocol`)
        is a whole outer IPv4 packet."""
        tunnel = self._tunnels.get(tunnel_name)
        if tunnel is None:
            return None
        pair = newest = None
        for candidate in reversed(tunnel.pairs):
            if candidate.selectors.outbound(inner):
                if now >= candidate.outbound_from or candidate.last_inbound_at is not None:
                    pair = candidate
                    break
                newest = newest or candidate
        pair = pair or newest
        if pair is None:
            tunnel.no_sa += 1
            return None
        try:
            packet = pair.outbound.encapsulate(inner)
        except SequenceExhausted:
            tunnel.no_sa += 1
            return None
        tunnel.outbound_packets += 1
        tunnel.outbound_bytes += len(inner)
        tunnel.last_outbound_at = now
        self._touched.add(tunnel_name)
        return packet, pair.route

    def accept(
        self, data: bytes, local: Address, remote: Address, now: float
    ) -> tuple[str, bytes] | None:
        """(tunnel, inner packet) for an arriving ESP packet; None if dropped."""
        pair = self._by_inbound_spi.get(data[:4]) if len(data) >= 8 else None
        if pair is None or pair.ah:
            reason = DropReason.UNKNOWN_SPI if len(data) >= 8 else DropReason.MALFORMED
            self._drop_unattributed(reason, local[0], remote[0])
            return None
        return self._deliver(pair, data, now)

    def accept_ah(self, packet: bytes, now: float) -> tuple[str, bytes] | None:
        """(tunnel, inner packet) for an arriving AH packet, the whole outer
        IPv4 packet as a raw socket delivers it; None if dropped."""
        if len(packet) < 20 or packet[0] >> 4 != 4:
            self._drop_unattributed(DropReason.MALFORMED, "", "")
            return None
        spi_at = (packet[0] & 0x0F) * 4 + _AH_SPI_OFFSET
        if spi_at < 20 + _AH_SPI_OFFSET or len(packet) < spi_at + 4:
            self._drop_unattributed(DropReason.MALFORMED, *_ipv4_addresses(packet))
            return None
        pair = self._by_inbound_spi.get(packet[spi_at : spi_at + 4])
        if pair is None or not pair.ah:
            self._drop_unattributed(DropReason.UNKNOWN_SPI, *_ipv4_addresses(packet))
            return None
        return self._deliver(pair, packet, now)

    def _drop_unattributed(self, reason: DropReason, local_ip: str, remote_ip: str) -> None:
        """A drop that names no SA: charged to the tunnel between those
        outer addresses, if there is one."""
        name = self._by_addresses.get((local_ip, remote_ip))
        drops = self._tunnels[name].drops if name is not None else self.unattributed_drops
        drops[reason] += 1

    def _deliver(self, pair: SaPair, data: bytes, now: float) -> tuple[str, bytes] | None:
        tunnel = self._tunnels[pair.tunnel]
        try:
            inner = pair.inbound.decapsulate(data)
            if inner and not pair.selectors.inbound(inner):
                raise PacketDropped(DropReason.POLICY, "inner addresses outside the selectors")
        except PacketDropped as error:
            pair.drops[error.reason] += 1
            tunnel.drops[error.reason] += 1
            return None
        pair.last_inbound_at = now
        tunnel.last_inbound_at = now  # authenticated: the peer is alive (RFC 3706)
        if not inner:
            return None  # dummy packet (RFC 4303 2.6)
        tunnel.inbound_packets += 1
        tunnel.inbound_bytes += len(inner)
        self._touched.add(pair.tunnel)
        return pair.tunnel, inner

    def count_io_error(self, tunnel_name: str) -> int:
        """Count a failed TUN write or ESP/AH send; returns the tunnel's total."""
        tunnel = self._tunnels.get(tunnel_name)
        if tunnel is None:
            return 0
        tunnel.io_errors += 1
        return tunnel.io_errors

    # Counters

    def counters(self, name: str) -> TunnelCounters:
        tunnel = self._tunnel(name)
        return TunnelCounters(
            inbound_bytes=tunnel.inbound_bytes,
            inbound_packets=tunnel.inbound_packets,
            outbound_bytes=tunnel.outbound_bytes,
            outbound_packets=tunnel.outbound_packets,
            auth_failed=tunnel.drops[DropReason.AUTH_FAILED],
            replay=tunnel.drops[DropReason.REPLAY],
            unknown_spi=tunnel.drops[DropReason.UNKNOWN_SPI],
            malformed=tunnel.drops[DropReason.MALFORMED],
            pad_error=tunnel.drops[DropReason.PAD_ERROR],
            policy=tunnel.drops[DropReason.POLICY],
            no_sa=tunnel.no_sa,
            io_errors=tunnel.io_errors,
            last_inbound_at=tunnel.last_inbound_at,
            last_outbound_at=tunnel.last_outbound_at,
        )

    def sa_counters(self, inbound_spi: bytes) -> SaCounters | None:
        pair = self._by_inbound_spi.get(inbound_spi)
        return pair.counters() if pair is not None else None

    def traffic_changes(self) -> dict[str, tuple[int, int]]:
        """(inbound bytes, outbound bytes) of every tunnel whose counters
        moved since the previous call: the daemon's poll then costs nothing
        for the thousands of tunnels that carried no traffic."""
        touched, self._touched = self._touched, set()
        return {
            name: (tunnel.inbound_bytes, tunnel.outbound_bytes)
            for name in touched
            if (tunnel := self._tunnels.get(name)) is not None
        }


def _ipv4_addresses(packet: bytes) -> tuple[str, str]:
    """(destination, source) of an IPv4 header: (local, remote) on arrival."""
    return str(ipaddress.IPv4Address(packet[16:20])), str(ipaddress.IPv4Address(packet[12:16]))


class SadbCounters:
    """The counter half of the `DataPlane` interface, read from the backend's
    `SaDatabase` (the same for every backend)."""

    _sadb: SaDatabase

    def counters(self, tunnel: str) -> TunnelCounters:
        return self._sadb.counters(tunnel)

    def sa_counters(self, inbound_spi: bytes) -> SaCounters | None:
        return self._sadb.sa_counters(inbound_spi)

    def drop_counters(self) -> dict[DropReason, int]:
        return dict(self._sadb.unattributed_drops)

    def traffic_changes(self) -> dict[str, tuple[int, int]]:
        return self._sadb.traffic_changes()
