"""The user-space data plane carries real traffic between network namespaces.

Two `UserspaceDataPlane`s, one per site of `testbed.TwoSites`, with static
manually-keyed SAs (the same keys on both sides), pass pings across their
TUN devices as raw ESP (IP protocol 50) and as UDP-encapsulated ESP on port
4500 (a small forwarder stands in for the daemon's sockets).  tshark checks
the wire: only ESP on the veth, and Wireshark's own ESP code, given the
keys, decrypts the packets and finds their ICVs good.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_interop  # tests/interop is on sys.path (rootdir conftest)

from ipsecgw.dataplane import DataPlane, TunnelSpec
from ipsecgw.dataplane.esp import ENCRYPTIONS, INTEGRITIES, InboundSa, OutboundSa
from ipsecgw.dataplane.userspace import UserspaceDataPlane
from ipsecgw.isakmp.constants import NAT_T_PORT as NATT_PORT
from ipsecgw.isakmp.events import EncryptionName, IntegrityName, IpsecSaEstablished, SaKeys
from ipsecgw.netns import in_vr
from ipsecgw.tools import testbed as tb

# Wireshark's names (epan/dissectors/packet-ipsec.c) for its esp_sa table.
WIRESHARK_ENCRYPTION = {
    "aes128": "AES-CBC [RFC3602]",
    "3des": "TripleDES-CBC [RFC2451]",
    "aes256gcm": "AES-GCM with 16 octet ICV [RFC4106]",
}
WIRESHARK_INTEGRITY = {
    None: "NULL",
    "hmac-sha1-96": "HMAC-SHA-1-96 [RFC2404]",
    "hmac-md5-96": "HMAC-MD5-96 [RFC2403]",
    "hmac-sha256-128": "HMAC-SHA-256-128 [RFC4868]",
}


@pytest.fixture
def sites() -> Iterator[tb.TwoSites]:
    require_interop(("ip", "ping", "tshark"))
    with tb.TwoSites(prefix="igwesp") as two:
        yield two


def keys(spi: bytes, encryption: EncryptionName, integrity: IntegrityName | None) -> SaKeys:
    return SaKeys(
        spi,
        encryption,
        os.urandom(ENCRYPTIONS[encryption].key_size),
        integrity,
        os.urandom(INTEGRITIES[integrity][1]) if integrity else b"",
    )


def event(
    tunnel: str,
    local: str,
    peer: str,
    inbound: SaKeys,
    outbound: SaKeys,
    local_network: str,
    remote_network: str,
    udp: bool,
) -> IpsecSaEstablished:
    port = NATT_PORT if udp else 500
    return IpsecSaEstablished(
        tunnel=tunnel,
        peer=(peer, port),
        local=(local, port),
        inbound=inbound,
        outbound=outbound,
        protocol="esp",
        encapsulation="udp-tunnel" if udp else "tunnel",
        local_network=local_network,
        remote_network=remote_network,
        lifetime_seconds=3600,
        lifetime_kilobytes=102400,
    )


class EspOverUdp:
    """Stands in for the daemon's port-4500 sockets.

    RFC 3948 2.1: ESP in UDP carries no marker; a datagram whose first four
    octets are zero would be IKE (non-ESP marker) and is not ours here.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._sockets: dict[tuple[str, int], socket.socket] = {}

    def open(self, vr: str, address: str, plane: DataPlane) -> None:
        with in_vr(vr):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, NATT_PORT))
        sock.setblocking(False)
        self._sockets[(address, NATT_PORT)] = sock
        self._loop.add_reader(sock.fileno(), self._readable, sock, plane)

    def _readable(self, sock: socket.socket, plane: DataPlane) -> None:
        data, remote = sock.recvfrom(65535)
        if data[:4] != bytes(4) and data != b"\xff":
            plane.receive_esp(data, sock.getsockname(), remote, True)

    def send(self, vr: str, data: bytes, local: tuple[str, int],
             remote: tuple[str, int]) -> None:
        self._sockets[local].sendto(data, remote)

    def close(self) -> None:
        for sock in self._sockets.values():
            self._loop.remove_reader(sock.fileno())
            sock.close()


async def run_in(netns: tb.Netns, *args: str) -> tuple[int, str]:
    """Run a command in a namespace without blocking the loop that carries its packets."""
    proc = await asyncio.create_subprocess_exec(
        *netns.exec_prefix(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def eventually(condition: object, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition() and loop.time() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.02)


def esp_sa_row(source: str, destination: str, k: SaKeys) -> str:
    fields = (
        "IPv4",
        source,
        destination,
        "0x" + k.spi.hex(),
        WIRESHARK_ENCRYPTION[k.encryption],
        "0x" + k.encryption_key.hex(),
        WIRESHARK_INTEGRITY[k.integrity],
        "0x" + k.integrity_key.hex() if k.integrity_key else "",
    )
    return ",".join(f'"{f}"' for f in fields)


def tshark_fields(
    pcap: Path, *fields: str, options: tuple[str, ...] = (), display: str = ""
) -> list[list[str]]:
    args = ["tshark", "-r", str(pcap), *options, "-T", "fields", "-E", "separator=|"]
    if display:
        args += ["-Y", display]
    for name in fields:
        args += ["-e", name]
    out = tb.run(args)
    return [line.split("|") for line in out.splitlines() if line]


SUITES: list[tuple[EncryptionName, IntegrityName | None]] = [
    ("aes128", "hmac-sha1-96"),
    ("aes256gcm", None),
    ("3des", "hmac-md5-96"),
]


@pytest.mark.parametrize("udp", [False, True], ids=["raw-esp", "udp-4500"])
@pytest.mark.parametrize(("encryption", "integrity"), SUITES)
def test_ping_across_two_userspace_data_planes(
    sites: tb.TwoSites,
    tmp_path: Path,
    udp: bool,
    encryption: EncryptionName,
    integrity: IntegrityName | None,
) -> None:
    a_to_b = keys(b"\xb0\x00\x00\x01", encryption, integrity)
    b_to_a = keys(b"\xa0\x00\x00\x01", encryption, integrity)

    pcap = tmp_path / "veth-a.pcap"

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        forwarder = EspOverUdp(loop)
        plane_a = UserspaceDataPlane(loop, forwarder.send, route_hold=0.5)
        plane_b = UserspaceDataPlane(loop, forwarder.send)
        try:
            if udp:
                forwarder.open(sites.a.name, tb.SITE_A_OUTER, plane_a)
                forwarder.open(sites.b.name, tb.SITE_B_OUTER, plane_b)
            # No address on the TUN devices: the routes' preferred source must
            # come from the local network (10.98.x.1 on lo), or the kernel
            # would pick the veth address and the selectors would refuse it.
            plane_a.add_tunnel(
                TunnelSpec(
                    "t1",
                    vr=sites.a.name,
                    remote_networks=(tb.SITE_B_NET,),
                    local_networks=(tb.SITE_A_NET,),
                )
            )
            plane_b.add_tunnel(
                TunnelSpec(
                    "t1",
                    vr=sites.b.name,
                    remote_networks=(tb.SITE_A_NET,),
                    local_networks=(tb.SITE_B_NET,),
                )
            )
            plane_a.install_sa(
                event(
                    "t1",
                    tb.SITE_A_OUTER,
                    tb.SITE_B_OUTER,
                    b_to_a,
                    a_to_b,
                    tb.SITE_A_NET,
                    tb.SITE_B_NET,
                    udp,
                )
            )
            plane_b.install_sa(
                event(
                    "t1",
                    tb.SITE_B_OUTER,
                    tb.SITE_A_OUTER,
                    a_to_b,
                    b_to_a,
                    tb.SITE_B_NET,
                    tb.SITE_A_NET,
                    udp,
                )
            )
            code, out = await run_in(sites.a, "ping", "-c", "1", "-W", "1", tb.SITE_B_INNER)
            assert code != 0, "ping passed before the tunnel was up (no route expected)"
            plane_a.set_tunnel_up("t1", True)
            plane_b.set_tunnel_up("t1", True)
            route = sites.a.ip("route", "show", tb.SITE_B_NET)
            assert "dev ips-t1" in route and f"src {tb.SITE_A_INNER}" in route, route

            capture = tb.Capture(sites.a, "veth-a", pcap, "esp or udp port 4500 or icmp")
            try:
                code, out = await run_in(
                    sites.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", tb.SITE_B_INNER
                )
                assert code == 0, out
                # Anything arriving that fails authentication is counted, not delivered.
                icv_size = 12 if integrity is not None else 16
                forged = b_to_a.spi + (1000).to_bytes(4, "big") + os.urandom(16 * 5 + icv_size)
                await send_from_b(sites, forwarder, forged, udp)
                await eventually(lambda: plane_a.counters("t1").auth_failed == 1)
            finally:
                capture.stop()

            ca, cb = plane_a.counters("t1"), plane_b.counters("t1")
            assert (ca.outbound_packets, ca.inbound_packets) == (3, 3)
            assert (cb.outbound_packets, cb.inbound_packets) == (3, 3)
            assert ca.outbound_bytes == 3 * 84  # 20-byte IP + 64-byte ICMP echo
            assert ca.auth_failed == 1 and ca.drops == 1 and cb.drops == 0
            assert ca.io_errors == cb.io_errors == 0
            assert ca.last_inbound_at is not None
            sa = plane_a.sa_counters(b_to_a.spi)
            assert sa is not None and (sa.sequence_number, sa.inbound_packets) == (3, 3)

            # Down: the route is held for a while (a rekey may be late), so
            # that senders see drops, not an unreachable network; back up
            # within the hold, nothing changed; down for longer, it goes.
            plane_a.set_tunnel_up("t1", False)
            await asyncio.sleep(0.3)
            assert "dev ips-t1" in sites.a.ip("route", "show", tb.SITE_B_NET)
            plane_a.set_tunnel_up("t1", True)
            await asyncio.sleep(0.3)
            plane_a.set_tunnel_up("t1", False)
            await asyncio.sleep(0.3)
            assert "dev ips-t1" in sites.a.ip("route", "show", tb.SITE_B_NET)
            await asyncio.sleep(0.4)
            assert sites.a.ip("route", "show", tb.SITE_B_NET).strip() == ""
        finally:
            plane_a.close()
            plane_b.close()
            forwarder.close()
        # Closing removed the TUN devices with their file descriptors.
        assert "ips-t1" not in sites.a.ip("link", "show")

    asyncio.run(scenario())

    # The wire carried ESP only: no ICMP in the clear on the veth.
    frames = tshark_fields(pcap, "frame.protocols", "esp.spi", "udp.dstport")
    assert len(frames) >= 7, frames  # 3 requests, 3 replies, the forged packet
    for protocols, spi, port in frames:
        assert "icmp" not in protocols.split(":"), protocols
        assert spi in ("0xb0000001", "0xa0000001"), frames
        assert port == (str(NATT_PORT) if udp else ""), frames

    # Wireshark's ESP implementation, given the keys, decrypts every packet
    # and verifies its ICV: an independent check of the packet format.
    table = "\n".join(
        (
            esp_sa_row(tb.SITE_A_OUTER, tb.SITE_B_OUTER, a_to_b),
            esp_sa_row(tb.SITE_B_OUTER, tb.SITE_A_OUTER, b_to_a),
        )
    )
    options = (
        "-o",
        "esp.enable_encryption_decode:TRUE",
        "-o",
        "esp.enable_authentication_check:TRUE",
        "-o",
        f"uat:esp_sa:{table.splitlines()[0]}",
        "-o",
        f"uat:esp_sa:{table.splitlines()[1]}",
    )
    decrypted = tshark_fields(
        pcap, "icmp.type", "ip.src", "ip.dst", "esp.icv_good", options=options, display="icmp"
    )
    assert [row[0] for row in decrypted] == ["8", "0"] * 3, decrypted
    inner_addresses = {(row[1].split(",")[-1], row[2].split(",")[-1]) for row in decrypted}
    assert inner_addresses == {
        (tb.SITE_A_INNER, tb.SITE_B_INNER),
        (tb.SITE_B_INNER, tb.SITE_A_INNER),
    }
    if integrity is not None:
        # Wireshark checks HMAC ICVs; it does not flag GCM tags either way.
        assert all(row[3] == "1" for row in decrypted), decrypted


async def send_from_b(sites: tb.TwoSites, forwarder: EspOverUdp, data: bytes, udp: bool) -> None:
    if udp:
        forwarder.send(sites.b.name, data, (tb.SITE_B_OUTER, NATT_PORT),
                       (tb.SITE_A_OUTER, NATT_PORT))
        return
    with in_vr(sites.b.name):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
    with raw:
        raw.sendto(data, (tb.SITE_A_OUTER, 0))


def ipv4_udp(src: str, dst: str, port: int, payload: bytes) -> bytes:
    """An IPv4/UDP packet with a valid header checksum (the kernel checks it)."""
    total = 20 + 8 + len(payload)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        total,
        1,
        0,
        64,
        17,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    words = struct.unpack("!10H", header)
    checksum = sum(words)
    checksum = (checksum & 0xFFFF) + (checksum >> 16)
    checksum = ~((checksum & 0xFFFF) + (checksum >> 16)) & 0xFFFF
    header = header[:10] + struct.pack("!H", checksum) + header[12:]
    return header + struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload


def test_tunnels_are_isolated_and_selected_by_destination(sites: tb.TwoSites) -> None:
    """Two tunnels in one VR: outbound picks the tunnel by route and SA by selector;
    a failing TUN write on one tunnel is counted and does not disturb the other."""
    ns = sites.a.name
    keys_in = {
        t: keys(bytes([0xA0, 0, 0, i]), "aes128", "hmac-sha256-128")
        for i, t in enumerate(("t1", "t2"))
    }
    keys_out = {
        t: keys(bytes([0xB0, 0, 0, i]), "aes128", "hmac-sha256-128")
        for i, t in enumerate(("t1", "t2"))
    }
    remote = {"t1": "10.98.2.0/24", "t2": "10.98.3.0/24"}
    sent: list[tuple[str, bytes, tuple[str, int], tuple[str, int]]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        plane = UserspaceDataPlane(
            loop, lambda vr, data, local, peer: sent.append((vr, data, local, peer)))
        listener = None
        try:
            for tunnel in ("t1", "t2"):
                plane.add_tunnel(
                    TunnelSpec(
                        tunnel,
                        vr=ns,
                        mtu=1380,
                        remote_networks=(remote[tunnel],),
                        local_networks=(tb.SITE_A_NET,),
                    )
                )
                plane.install_sa(
                    event(
                        tunnel,
                        tb.SITE_A_OUTER,
                        tb.SITE_B_OUTER,
                        keys_in[tunnel],
                        keys_out[tunnel],
                        tb.SITE_A_NET,
                        remote[tunnel],
                        udp=True,
                    )
                )
                plane.set_tunnel_up(tunnel, True)
            link = sites.a.ip("link", "show", "ips-t2")
            assert "mtu 1380" in link and "qlen 2000" in link, link

            # Outbound: a datagram to 10.98.3.5 leaves through t2's SA only.
            with in_vr(ns):
                sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with sender:
                sender.sendto(b"to site three", ("10.98.3.5", 9))
            await eventually(lambda: len(sent) == 1)
            assert len(sent) == 1
            vr, data, local, peer = sent[0]
            assert (vr, local, peer) == (
                sites.a.name, (tb.SITE_A_OUTER, NATT_PORT), (tb.SITE_B_OUTER, NATT_PORT))
            inner = InboundSa(keys_out["t2"]).decapsulate(data)
            assert socket.inet_ntoa(inner[12:16]) == tb.SITE_A_INNER  # preferred source
            assert inner.endswith(b"to site three")

            # Inbound: t1's TUN device fails; t2 still delivers to a local socket.
            with in_vr(ns):
                listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            listener.bind((tb.SITE_A_INNER, 7777))
            listener.setblocking(False)

            def broken_write(packet: bytes) -> None:
                raise OSError(errno.EIO, "TUN device gone")

            plane._tuns["t1"].write = broken_write  # type: ignore[method-assign]
            for tunnel, source in (("t1", "10.98.2.7"), ("t2", "10.98.3.7")):
                packet = ipv4_udp(source, tb.SITE_A_INNER, 7777, f"via {tunnel}".encode())
                esp = OutboundSa(keys_in[tunnel]).encapsulate(packet)
                plane.receive_esp(
                    esp, (tb.SITE_A_OUTER, NATT_PORT), (tb.SITE_B_OUTER, NATT_PORT), True
                )
            received = await asyncio.wait_for(loop.sock_recv(listener, 100), 3)
            assert received == b"via t2"
            assert plane.counters("t1").io_errors == 1
            assert plane.counters("t1").inbound_packets == 1  # decrypted, then the write failed
            assert plane.counters("t2").inbound_packets == 1
            assert plane.counters("t2").io_errors == 0

            plane.remove_tunnel("t1")
            assert "ips-t1" not in sites.a.ip("link", "show")
            assert sites.a.ip("route", "show", "10.98.2.0/24").strip() == ""
            assert "ips-t2" in sites.a.ip("route", "show", "10.98.3.0/24")
        finally:
            if listener is not None:
                listener.close()
            plane.close()

    asyncio.run(scenario())


def test_tunnel_in_missing_namespace_is_refused(sites: tb.TwoSites) -> None:
    async def scenario() -> None:
        plane = UserspaceDataPlane(asyncio.get_running_loop(), lambda *_: None)
        try:
            with pytest.raises(Exception, match="no-such-vr"):
                plane.add_tunnel(TunnelSpec("t1", vr="no-such-vr-" + sites.a.name))
            # Nothing half-made is left behind: the name can be used again.
            plane.add_tunnel(TunnelSpec("t1", vr=sites.a.name))
            assert "ips-t1" in sites.a.ip("link", "show")
        finally:
            plane.close()

    asyncio.run(scenario())


class CountingSocket(socket.socket):
    """A UDP socket that counts its sends, to see how a burst left."""

    sendmsg_segments: list[int]
    sendto_calls: int

    def sendmsg(self, buffers, ancdata=(), flags=0, address=None):  # type: ignore[no-untyped-def,override]
        self.sendmsg_segments.append(len(buffers))
        return super().sendmsg(buffers, ancdata, flags, address)

    def sendto(self, *args):  # type: ignore[no-untyped-def,override]
        self.sendto_calls += 1
        return super().sendto(*args)


@pytest.mark.parametrize("veth_mtu", [1500, 900], ids=["segmented", "too-big-to-segment"])
def test_a_burst_leaves_as_ordinary_datagrams(sites: tb.TwoSites, veth_mtu: int) -> None:
    """A burst read from the TUN device in one wakeup goes out with UDP segmentation
    offload (one sendmsg), and the peer receives one ordinary ESP datagram per inner
    packet, in order.  When the packets exceed the path MTU the kernel refuses to
    segment; the data plane then sends them one by one (the kernel fragments them)
    and nothing is lost."""
    count, size = 24, 1000
    out_keys = keys(b"\xb0\x00\x00\x07", "aes128", "hmac-sha1-96")
    in_keys = keys(b"\xa0\x00\x00\x07", "aes128", "hmac-sha1-96")
    sites.a.ip("link", "set", "veth-a", "mtu", str(veth_mtu))
    sites.b.ip("link", "set", "veth-b", "mtu", str(veth_mtu))

    async def scenario() -> list[bytes]:
        loop = asyncio.get_running_loop()
        with in_vr(sites.a.name):
            gw_socket = CountingSocket(socket.AF_INET, socket.SOCK_DGRAM)
        gw_socket.sendmsg_segments, gw_socket.sendto_calls = [], 0
        gw_socket.bind((tb.SITE_A_OUTER, NATT_PORT))
        gw_socket.setblocking(False)
        with in_vr(sites.b.name):
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind((tb.SITE_B_OUTER, NATT_PORT))
        peer.setblocking(False)

        def udp_socket(vr: str, local: tuple[str, int]) -> socket.socket | None:
            assert (vr, local) == (sites.a.name, (tb.SITE_A_OUTER, NATT_PORT))
            return gw_socket

        def no_fallback(*_: object) -> None:
            raise AssertionError("send_udp used although the socket was given")

        plane = UserspaceDataPlane(loop, no_fallback, udp_socket=udp_socket)
        try:
            plane.add_tunnel(
                TunnelSpec(
                    "t1", vr=sites.a.name, remote_networks=(tb.SITE_B_NET,),
                    local_networks=(tb.SITE_A_NET,),
                )
            )
            plane.install_sa(
                event("t1", tb.SITE_A_OUTER, tb.SITE_B_OUTER, in_keys, out_keys,
                      tb.SITE_A_NET, tb.SITE_B_NET, udp=True)
            )
            plane.set_tunnel_up("t1", True)
            # The loop is not running while these are sent: all of them wait
            # in the TUN device's queue and are read in one wakeup.
            with in_vr(sites.a.name):
                sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with sender:
                for n in range(count):
                    sender.sendto(n.to_bytes(2, "big") * (size // 2), (tb.SITE_B_INNER, 9))
            received: list[bytes] = []
            deadline = loop.time() + 5
            while len(received) < count and loop.time() < deadline:
                try:
                    received.append(peer.recv(65535))
                except BlockingIOError:
                    await asyncio.sleep(0.01)
            if veth_mtu == 1500:
                assert gw_socket.sendmsg_segments == [count], gw_socket.sendmsg_segments
                assert gw_socket.sendto_calls == 0
            else:
                assert gw_socket.sendmsg_segments == [count]  # tried once, refused
                assert gw_socket.sendto_calls == count
            assert plane.counters("t1").io_errors == 0
            return received
        finally:
            plane.close()
            gw_socket.close()
            peer.close()

    datagrams = asyncio.run(scenario())
    assert len(datagrams) == count
    inbound = InboundSa(out_keys)
    for n, datagram in enumerate(datagrams):
        assert datagram[:4] == out_keys.spi
        assert int.from_bytes(datagram[4:8], "big") == n + 1  # in order, one per packet
        inner = inbound.decapsulate(datagram)
        assert inner[28:] == n.to_bytes(2, "big") * (size // 2)
