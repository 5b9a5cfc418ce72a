"""The `userspace` data plane: TUN devices and ESP/AH in Python, on the event loop.

This is what strongSwan's kernel-libipsec does, and the only ESP these
machines can run (their kernel has no ESP, TESTBED.md).  Outbound: the host
routes a packet into a tunnel's TUN device, we read it, pick the SA by its
selectors, encapsulate and send it either raw (IP protocol 50, from a raw
socket of our own in the transport VR) or UDP-encapsulated through the
daemon's port-4500 socket (`send_udp`, RFC 3948).  Inbound: raw ESP arrives on
our raw socket, UDP ESP comes from the daemon through `receive_esp`; after
SPI lookup and decapsulation the inner packet is written to the TUN device.

AH (RFC 4302) goes through a raw IP protocol 51 socket of its own per VR
and local address, with IP_HDRINCL: its ICV covers the outer header's
Identification and Total Length, so `ah.OutboundAh` builds that header and
the kernel must send it as it is (raw(7): with IP_HDRINCL only a zero
Identification or source would be replaced).  The kernel refuses to
fragment such packets (EMSGSIZE above the device MTU), so on that error
we learn the route's MTU and fragment them ourselves (`ah.fragment`).  AH
packets leave one `sendto` each.

Outbound packets are sent in batches: everything read from a TUN device in
one wakeup is protected first, and a run of equal-sized UDP-encapsulated
ESP packets to one peer leaves in a single `sendmsg` with UDP generic
segmentation offload (`UDP_SEGMENT`, Linux 4.18): the kernel cuts it into
ordinary datagrams, so the peer sees nothing unusual, and the per-packet
system call — a third of the daemon's time under TCP load — is paid once
per run.  Where the route cannot segment (EINVAL, EIO ...), that SA pair
falls back to one datagram per call.

Failures stay local: a TUN write or a send that fails is counted on its
tunnel and logged (with back-off), and the other tunnels carry on.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import sys
import time
from collections.abc import Callable
from typing import Literal

from ipsecgw.dataplane.ah import fragment
from ipsecgw.dataplane.base import (
    Address,
    DataPlaneError,
    IpsecSa,
    SendUdp,
    TunnelSpec,
    UdpSocketOf,
    UnknownTunnel,
)
from ipsecgw.dataplane.esp import DEFAULT_REPLAY_WINDOW
from ipsecgw.dataplane.sadb import OuterRoute, SaDatabase, SadbCounters
from ipsecgw.dataplane.tun import TunDevice
from ipsecgw.netns import NetnsError, in_vr

log = logging.getLogger("ipsecgw.dataplane")

IPPROTO_ESP = 50
IPPROTO_AH = 51
UDP_SEGMENT = 103  # linux/udp.h: the GSO segment size of a sendmsg
# The kernel takes at most 64 segments (UDP_MAX_SEGMENTS, older kernels) in
# one datagram of at most 64 KiB.
_GSO_MAX_SEGMENTS = 64
_GSO_MAX_BYTES = 65000
# errnos that mean "this path cannot segment" rather than "the send failed";
# EMSGSIZE: a segment is larger than the path MTU (a plain send fragments it).
_GSO_UNSUPPORTED = frozenset(
    {errno.EINVAL, errno.EIO, errno.EMSGSIZE, errno.EOPNOTSUPP, errno.ENOPROTOOPT}
)
# Packets handled per readiness callback before yielding to the loop, so that
# one busy tunnel cannot starve the others or the IKE sockets.
_BATCH = 64
# How long a tunnel's routes outlive its last SA (a hold-down, like a router
# interface's carrier delay).  A rekey whose Quick Mode finishes after the
# old SA's hard lifetime leaves the tunnel without SA for a moment (under a
# bulk transfer a kilobyte lifetime's last tenth passes in a fraction of a
# second); withdrawing the route then turns that gap into ENETUNREACH for
# every local sender, and a UDP application such as iperf3 gives up.  With
# the route held the gap's packets are only dropped (counted as "no SA").
# 10 s covers the first two retransmissions of the rekey (2 s, then 4 s);
# a tunnel still without SA after that is down for real.
ROUTE_HOLD_SECONDS = 10.0
IP_MTU = 14  # linux/in.h: a connected socket's route MTU; the socket module lacks it
RECEIVE_BUFFER = 4 << 20
SO_RCVBUFFORCE = 33  # asm-generic/socket.h; the socket module does not export it


def _worth_logging(count: int) -> bool:
    """Log the 1st, 2nd, 4th, 8th ... error: visible, but never a flood."""
    return count & (count - 1) == 0


def _enlarge_receive_buffer(sock: socket.socket) -> None:
    """Room for bursts: a TCP window's worth of ESP arrives back to back while
    the loop is busy, and the default buffer (~200 KB) overflowing costs TCP
    far more than the memory.  SO_RCVBUFFORCE passes net.core.rmem_max (root)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


class _RawSocket:
    """An IP protocol 50 (ESP) or 51 (AH) socket bound to one local address of one VR."""

    def __init__(self, vr: str, local_ip: str, protocol: Literal["esp", "ah"]) -> None:
        self.vr = vr
        self.local_ip = local_ip
        self.protocol = protocol
        self.ipv6 = ipaddress.ip_address(local_ip).version == 6
        with in_vr(vr):
            self.socket = socket.socket(
                socket.AF_INET6 if self.ipv6 else socket.AF_INET,
                socket.SOCK_RAW,
                IPPROTO_AH if protocol == "ah" else IPPROTO_ESP,
            )
        try:
            self.socket.setblocking(False)
            if protocol == "ah":
                # We send whole IPv4 packets: the ICV covers the header.
                self.socket.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            _enlarge_receive_buffer(self.socket)
            # Binding filters by destination address and fixes the source.
            self.socket.bind((local_ip, 0))
        except OSError:
            self.socket.close()
            raise
        self.users = 0  # SA pairs sending through it
        # AH: a UDP socket in the same VR, connected to a peer only to ask
        # the kernel for the route's MTU (IP_MTU).
        self._probe: socket.socket | None = None
        if protocol == "ah":
            try:
                with in_vr(vr):
                    self._probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            except BaseException:
                self.socket.close()
                raise

    def route_mtu(self, remote_ip: str) -> int | None:
        """The MTU of the route to `remote_ip` (AH sockets), None if unknown."""
        if self._probe is None:
            return None
        try:
            self._probe.connect((remote_ip, 9))
            mtu: int = self._probe.getsockopt(socket.IPPROTO_IP, IP_MTU)
        except OSError:
            return None
        return mtu

    def close(self) -> None:
        self.socket.close()
        if self._probe is not None:
            self._probe.close()

    def receive(self) -> tuple[bytes, str]:
        """(ESP packet from the SPI on, or the whole IPv4 packet for AH; source
        address); BlockingIOError when empty."""
        data, source = self.socket.recvfrom(65535)
        if not self.ipv6 and self.protocol == "esp":
            # IPv4 raw sockets deliver the IP header too (raw(7)); IPv6 ones do not.
            data = data[(data[0] & 0x0F) * 4 :]
        return data, source[0]


class UserspaceDataPlane(SadbCounters):
    """A `DataPlane` running ESP and AH in this process over TUN devices.

    `loop`: the daemon's event loop (TUN and raw sockets are read from it).
    `send_udp(vr, esp, local, remote)`: sends UDP-encapsulated ESP from the
    daemon's socket bound to `local` in `vr`.  `udp_socket(vr, local)`, when given,
    returns that socket itself (None if there is none), so that runs of
    packets can be sent with segmentation offload; `send_udp` then serves
    only where it returns None.  `clock`: the time base of
    `last_inbound_at`/`last_outbound_at` (the daemon's `now`).  `route_hold`:
    how long a tunnel's routes outlive its going down (`ROUTE_HOLD_SECONDS`).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send_udp: SendUdp,
        *,
        udp_socket: UdpSocketOf | None = None,
        clock: Callable[[], float] = time.monotonic,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
        route_hold: float = ROUTE_HOLD_SECONDS,
    ) -> None:
        self._loop = loop
        self._route_hold = route_hold
        self._send_udp = send_udp
        self._udp_socket = udp_socket
        # Paths on which the kernel refused to segment.
        self._no_gso: set[OuterRoute] = set()
        # AH routes whose MTU the kernel made us learn (see `_send_ah`).
        self._ah_mtu: dict[OuterRoute, int] = {}
        self._clock = clock
        self._sadb = SaDatabase(replay_window=replay_window)
        self._tuns: dict[str, TunDevice] = {}
        # Tunnels gone down whose routes are still held: their withdrawal.
        self._route_holds: dict[str, asyncio.TimerHandle] = {}
        self._raw: dict[tuple[str, str, str], _RawSocket] = {}  # (vr, local ip, protocol)

    # Tunnels

    def add_tunnel(self, tunnel: TunnelSpec) -> None:
        self._sadb.add_tunnel(tunnel)
        try:
            device = TunDevice(tunnel)
        except (OSError, NetnsError) as error:
            self._sadb.remove_tunnel(tunnel.name)
            raise DataPlaneError(
                f"tunnel {tunnel.name}: cannot create its TUN device in VR {tunnel.vr}: {error}"
            ) from error
        self._tuns[tunnel.name] = device
        self._loop.add_reader(device.fileno(), self._on_tun_readable, tunnel.name, device)
        log.info("tunnel %s: interface %s in VR %s", tunnel.name, device.ifname, tunnel.vr)

    def remove_tunnel(self, name: str) -> None:
        hold = self._route_holds.pop(name, None)
        if hold is not None:
            hold.cancel()
        for pair in self._sadb.remove_tunnel(name):
            self._release_raw(pair.route)
        device = self._tuns.pop(name, None)
        if device is not None:
            self._loop.remove_reader(device.fileno())
            device.close()  # the kernel removes the device and its routes

    def set_tunnel_up(self, name: str, up: bool) -> None:
        """Routes go in at once; they go out `route_hold` seconds after the
        tunnel went down, unless it is up again by then."""
        if not self._sadb.set_up(name, up):
            return
        if not up:
            self._route_holds[name] = self._loop.call_later(
                self._route_hold, self._withdraw_routes, name
            )
            return
        hold = self._route_holds.pop(name, None)
        if hold is not None:
            hold.cancel()  # the routes never left
            return
        self._set_routes(name, True)

    def _withdraw_routes(self, name: str) -> None:
        del self._route_holds[name]
        self._set_routes(name, False)

    def _set_routes(self, name: str, up: bool) -> None:
        spec, device = self._sadb.spec(name), self._tuns[name]
        candidates = device.addresses() if up and spec.remote_networks else []
        for network in spec.remote_networks:
            try:
                device.route(up, network, spec.route_source(network, candidates))
            except OSError as error:
                if not up and error.errno == errno.ESRCH:
                    continue  # already gone (someone removed it by hand)
                self._sadb.count_io_error(name)
                log.error(
                    "tunnel %s: cannot %s route %s via %s: %s",
                    name,
                    "add" if up else "remove",
                    network,
                    device.ifname,
                    error,
                )

    # SAs

    def install_sa(self, sa: IpsecSa) -> None:
        pair = self._sadb.install(sa, self._clock())
        if not pair.route.udp:
            try:
                self._acquire_raw(pair.route)
            except (OSError, NetnsError) as error:
                self._sadb.remove(sa.tunnel, sa.inbound.spi, sa.outbound.spi)
                raise DataPlaneError(
                    f"tunnel {sa.tunnel}: no raw {sa.protocol.upper()} socket on "
                    f"{pair.route.local[0]} in VR {pair.route.vr}: {error}"
                ) from error
        log.info(
            "tunnel %s: SA installed, SPI in %s out %s, %s %s, %s -> %s",
            sa.tunnel,
            sa.inbound.spi.hex(),
            sa.outbound.spi.hex(),
            sa.protocol.upper(),
            sa.encapsulation,
            sa.local_network,
            sa.remote_network,
        )

    def remove_sa(self, tunnel: str, inbound_spi: bytes, outbound_spi: bytes) -> None:
        pair = self._sadb.remove(tunnel, inbound_spi, outbound_spi)
        if pair is not None:
            self._release_raw(pair.route)
            log.info(
                "tunnel %s: SA removed, SPI in %s out %s",
                tunnel,
                inbound_spi.hex(),
                outbound_spi.hex(),
            )

    def _acquire_raw(self, route: OuterRoute) -> None:
        key = (route.vr, route.local[0], route.protocol)
        raw = self._raw.get(key)
        if raw is None:
            raw = _RawSocket(route.vr, route.local[0], route.protocol)
            self._raw[key] = raw
            self._loop.add_reader(raw.socket.fileno(), self._on_raw_readable, raw)
        raw.users += 1

    def _release_raw(self, route: OuterRoute) -> None:
        key = (route.vr, route.local[0], route.protocol)
        raw = self._raw.get(key) if not route.udp else None
        if raw is None:
            return
        raw.users -= 1
        if raw.users == 0:
            del self._raw[key]
            self._loop.remove_reader(raw.socket.fileno())
            raw.close()
        self._ah_mtu.pop(route, None)

    # Packets

    def _on_tun_readable(self, name: str, device: TunDevice) -> None:
        now = self._clock()
        protect = self._sadb.protect
        batch: list[bytes] = []
        route: OuterRoute | None = None
        for _ in range(_BATCH):
            try:
                inner = device.read()
            except BlockingIOError:
                break
            except OSError as error:
                self._io_error(name, "TUN read", error)
                break
            protected = protect(name, inner, now)
            if protected is None:
                continue
            packet, packet_route = protected
            if packet_route is not route:
                if route is not None:
                    self._send(name, batch, route)
                batch, route = [], packet_route
            batch.append(packet)
        if route is not None:
            self._send(name, batch, route)

    def _send(self, name: str, packets: list[bytes], route: OuterRoute) -> None:
        """Send one SA pair's packets, in order (raw ESP and AH one by one)."""
        if route.udp:
            sock = self._udp_socket(route.vr, route.local) if self._udp_socket else None
            if sock is None:
                try:
                    for esp in packets:
                        self._send_udp(route.vr, esp, route.local, route.remote)
                except OSError as error:
                    self._io_error(name, f"ESP send to {route.remote[0]}", error)
                return
            if len(packets) > 1 and route not in self._no_gso:
                self._send_segmented(name, sock, packets, route)
                return
            destination = route.remote
        elif route.protocol == "ah":
            raw = self._raw[(route.vr, route.local[0], route.protocol)]
            for packet in packets:
                self._send_ah(name, raw, packet, route)
            return
        else:
            sock = self._raw[(route.vr, route.local[0], route.protocol)].socket
            destination = (route.remote[0], 0)
        for packet in packets:
            try:
                sock.sendto(packet, destination)
            except OSError as error:
                self._io_error(name, f"ESP send to {route.remote[0]}", error)

    def _send_ah(
        self, name: str, raw: _RawSocket, packet: bytes, route: OuterRoute, retry: bool = True
    ) -> None:
        """One AH packet, in fragments when it exceeds the route's MTU: the
        kernel sends IP_HDRINCL packets only whole (EMSGSIZE otherwise),
        and RFC 4302 3.3.4 has fragmentation follow AH processing."""
        mtu = self._ah_mtu.get(route)
        try:
            for piece in fragment(packet, mtu) if mtu is not None else (packet,):
                raw.socket.sendto(piece, (route.remote[0], 0))
        except OSError as error:
            if retry and error.errno == errno.EMSGSIZE:
                learned = raw.route_mtu(route.remote[0])
                if learned is not None and learned != mtu:
                    self._ah_mtu[route] = learned
                    self._send_ah(name, raw, packet, route, retry=False)
                    return
            self._io_error(name, f"AH send to {route.remote[0]}", error)

    def _send_segmented(
        self, name: str, sock: socket.socket, packets: list[bytes], route: OuterRoute
    ) -> None:
        """Runs of equal-sized packets (the last of a run may be shorter, as
        GSO allows) go out as one segmented datagram each."""
        start, count = 0, len(packets)
        while start < count:
            size = len(packets[start])
            end, total = start + 1, size
            while end < count and end - start < _GSO_MAX_SEGMENTS:
                length = len(packets[end])
                if length > size or total + length > _GSO_MAX_BYTES:
                    break
                end, total = end + 1, total + length
                if length < size:
                    break  # a shorter segment ends the run
            run = packets[start:end]
            try:
                if len(run) == 1:
                    sock.sendto(run[0], route.remote)
                else:
                    sock.sendmsg(
                        run, [(socket.SOL_UDP, UDP_SEGMENT, size.to_bytes(2, sys.byteorder))],
                        0, route.remote,
                    )
            except OSError as error:
                if len(run) > 1 and error.errno in _GSO_UNSUPPORTED:
                    log.info(
                        "tunnel %s: no UDP segmentation towards %s (%s); one datagram per packet",
                        name, route.remote[0], error,
                    )
                    self._no_gso.add(route)
                    self._send(name, packets[start:], route)
                    return
                self._io_error(name, f"ESP send to {route.remote[0]}", error)
            start = end

    def _on_raw_readable(self, raw: _RawSocket) -> None:
        for _ in range(_BATCH):
            try:
                data, source = raw.receive()
            except BlockingIOError:
                return
            except OSError as error:
                log.warning(
                    "raw %s socket %s in VR %s: %s",
                    raw.protocol.upper(), raw.local_ip, raw.vr, error,
                )
                return
            if raw.protocol == "ah":
                self.receive_ah(data)
            else:
                self.receive_esp(data, (raw.local_ip, 0), (source, 0), udp=False)

    def receive_esp(self, data: bytes, local: Address, remote: Address, udp: bool) -> None:
        self._write(self._sadb.accept(data, local, remote, self._clock()))

    def receive_ah(self, packet: bytes) -> None:
        self._write(self._sadb.accept_ah(packet, self._clock()))

    def _write(self, accepted: tuple[str, bytes] | None) -> None:
        """Hand a verified inner packet to its tunnel's TUN device."""
        if accepted is None:
            return
        name, inner = accepted
        try:
            self._tuns[name].write(inner)
        except OSError as error:
            self._io_error(name, "TUN write", error)

    def _io_error(self, name: str, what: str, error: OSError) -> None:
        count = self._sadb.count_io_error(name)
        if _worth_logging(count):
            log.warning("tunnel %s: %s failed (%d so far): %s", name, what, count, error)

    def interface_name(self, tunnel: str) -> str:
        """The TUN device's name (for logs and show commands)."""
        device = self._tuns.get(tunnel)
        if device is None:
            raise UnknownTunnel(tunnel)
        return device.ifname

    def close(self) -> None:
        for name in self._sadb.tunnel_names():
            self.remove_tunnel(name)
        for raw in self._raw.values():
            self._loop.remove_reader(raw.socket.fileno())
            raw.close()
        self._raw.clear()
