"""AH (RFC 4302) carries real traffic between network namespaces.

Two `UserspaceDataPlane`s, one per site of `testbed.TwoSites`, with static
manually-keyed AH SAs, pass pings across their TUN devices as raw IP
protocol 51.  tshark checks the wire: AH with our SPIs and, AH not
encrypting, the inner ICMP in the clear; no ESP.  Then two ipsecgw daemons
negotiate `ah-hmac-sha` in Quick Mode and ping through it.

strongSwan's kernel-libipsec (the only strongSwan data plane these machines
can run, TESTBED.md) does not implement AH, so there is no strongSwan
interop test for AH.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_interop  # tests/interop is on sys.path (rootdir conftest)
from gwlab import IpsecgwProcess, ping_ok, site_config
from test_userspace_esp import eventually, ipv4_udp, run_in, tshark_fields

from ipsecgw.dataplane import TunnelSpec
from ipsecgw.dataplane.ah import InboundAh, OutboundAh
from ipsecgw.dataplane.esp import INTEGRITIES
from ipsecgw.dataplane.userspace import UserspaceDataPlane
from ipsecgw.isakmp.events import IntegrityName, IpsecSaEstablished, SaKeys
from ipsecgw.netns import in_vr
from ipsecgw.tools import testbed as tb

A_TO_B_SPI, B_TO_A_SPI = b"\xb5\x00\x00\x01", b"\xa5\x00\x00\x01"


@pytest.fixture
def sites() -> Iterator[tb.TwoSites]:
    require_interop(("ip", "ping", "tshark", "tcpdump"))
    with tb.TwoSites(prefix="igwah") as two:
        yield two


def ah_keys(spi: bytes, integrity: IntegrityName) -> SaKeys:
    return SaKeys(spi, "null", b"", integrity, os.urandom(INTEGRITIES[integrity][1]))


def ah_event(local: str, peer: str, inbound: SaKeys, outbound: SaKeys, local_network: str,
             remote_network: str) -> IpsecSaEstablished:
    return IpsecSaEstablished(
        tunnel="t1", peer=(peer, 500), local=(local, 500), inbound=inbound, outbound=outbound,
        protocol="ah", encapsulation="tunnel", local_network=local_network,
        remote_network=remote_network, lifetime_seconds=3600, lifetime_kilobytes=102400,
    )


def no_udp(*_: object) -> None:
    raise AssertionError("AH never goes through the daemon's UDP sockets")


def two_planes_over_ah(
    loop: asyncio.AbstractEventLoop, sites: tb.TwoSites, a_to_b: SaKeys, b_to_a: SaKeys
) -> tuple[UserspaceDataPlane, UserspaceDataPlane]:
    """Site A's and site B's data planes, tunnel t1 each, joined by an AH SA pair, up."""
    plane_a = UserspaceDataPlane(loop, no_udp)
    plane_b = UserspaceDataPlane(loop, no_udp)
    try:
        for plane, site, local_net, remote_net in (
            (plane_a, sites.a, tb.SITE_A_NET, tb.SITE_B_NET),
            (plane_b, sites.b, tb.SITE_B_NET, tb.SITE_A_NET),
        ):
            plane.add_tunnel(TunnelSpec("t1", vr=site.name, remote_networks=(remote_net,),
                                        local_networks=(local_net,)))
        plane_a.install_sa(ah_event(tb.SITE_A_OUTER, tb.SITE_B_OUTER, b_to_a, a_to_b,
                                    tb.SITE_A_NET, tb.SITE_B_NET))
        plane_b.install_sa(ah_event(tb.SITE_B_OUTER, tb.SITE_A_OUTER, a_to_b, b_to_a,
                                    tb.SITE_B_NET, tb.SITE_A_NET))
        plane_a.set_tunnel_up("t1", True)
        plane_b.set_tunnel_up("t1", True)
    except BaseException:
        plane_a.close()
        plane_b.close()
        raise
    return plane_a, plane_b


@pytest.mark.parametrize("integrity", ["hmac-sha1-96", "hmac-md5-96"])
def test_ping_over_ah_between_two_userspace_data_planes(
    sites: tb.TwoSites, tmp_path: Path, integrity: IntegrityName
) -> None:
    a_to_b = ah_keys(A_TO_B_SPI, integrity)
    b_to_a = ah_keys(B_TO_A_SPI, integrity)
    pcap = tmp_path / "veth-a.pcap"

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        plane_a, plane_b = two_planes_over_ah(loop, sites, a_to_b, b_to_a)
        try:

            capture = tb.Capture(sites.a, "veth-a", pcap, "ah or esp or icmp or udp")
            try:
                code, out = await run_in(
                    sites.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", tb.SITE_B_INNER
                )
                assert code == 0, out
                # The largest inner packet the default tunnel MTU lets through:
                # 1400 + 44 octets of outer header and AH fit the veth.
                code, out = await run_in(
                    sites.a, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1372",
                    tb.SITE_B_INNER,
                )
                assert code == 0, out
                # A forged packet (right SPI and addresses, a fresh sequence
                # number, wrong key) is counted as failing authentication.
                forger = OutboundAh(
                    ah_keys(B_TO_A_SPI, integrity), tb.SITE_B_OUTER, tb.SITE_A_OUTER
                )
                forger.sequence_number = 1000
                forged = forger.encapsulate(bytes.fromhex("4500001c00010000403b0000") + bytes(16))
                with in_vr(sites.b.name):
                    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 51)
                with raw:
                    raw.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
                    raw.sendto(forged, (tb.SITE_A_OUTER, 0))
                await eventually(lambda: plane_a.counters("t1").auth_failed == 1)
            finally:
                capture.stop()

            ca, cb = plane_a.counters("t1"), plane_b.counters("t1")
            assert (ca.outbound_packets, ca.inbound_packets) == (4, 4)
            assert (cb.outbound_packets, cb.inbound_packets) == (4, 4)
            assert ca.outbound_bytes == 3 * 84 + 1400
            assert ca.auth_failed == 1 and ca.drops == 1 and cb.drops == 0
            assert ca.io_errors == cb.io_errors == 0
            sa = plane_a.sa_counters(B_TO_A_SPI)
            assert sa is not None and (sa.sequence_number, sa.inbound_packets) == (4, 4)
        finally:
            plane_a.close()
            plane_b.close()
        assert "ips-t1" not in sites.a.ip("link", "show")

    asyncio.run(scenario())

    frames = tshark_fields(pcap, "frame.protocols", "ah.spi", "ip.ttl", "ip.id", "icmp.type")
    assert len(frames) == 9, frames  # 4 requests, 4 replies, the forged packet
    for protocols, spi, ttl, identification, _ in frames:
        layers = protocols.split(":")
        assert "ah" in layers and "esp" not in layers and "udp" not in layers, protocols
        assert spi in ("0xb5000001", "0xa5000001"), frames
        assert ttl.split(",")[0] == "64"
        assert int(identification.split(",")[0], 16) != 0
    # AH authenticates but does not encrypt: tshark reads the inner ICMP.
    inner = [row for row in frames if row[4]]
    assert [row[4] for row in inner] == ["8", "0"] * 4, frames
    assert all(row[0].endswith(":ip:ah:ip:icmp:data") for row in inner), inner


def test_ah_verified_independently(sites: tb.TwoSites) -> None:
    """What the data plane sends is what an independent InboundAh accepts
    after the kernel handled it (the Identification and total length the
    ICV covers reach the wire as built), and what it receives from a raw
    socket it accepts."""
    out_keys, in_keys = ah_keys(A_TO_B_SPI, "hmac-sha1-96"), ah_keys(B_TO_A_SPI, "hmac-sha1-96")

    async def scenario() -> bytes:
        loop = asyncio.get_running_loop()
        with in_vr(sites.b.name):
            peer = socket.socket(socket.AF_INET, socket.SOCK_RAW, 51)
        peer.setblocking(False)
        plane = UserspaceDataPlane(loop, no_udp)
        listener = None
        try:
            plane.add_tunnel(TunnelSpec("t1", vr=sites.a.name, remote_networks=(tb.SITE_B_NET,),
                                        local_networks=(tb.SITE_A_NET,)))
            plane.install_sa(ah_event(tb.SITE_A_OUTER, tb.SITE_B_OUTER, in_keys, out_keys,
                                      tb.SITE_A_NET, tb.SITE_B_NET))
            plane.set_tunnel_up("t1", True)
            with in_vr(sites.a.name):
                sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with sender:
                sender.sendto(b"over AH", (tb.SITE_B_INNER, 9))
            received = await asyncio.wait_for(loop.sock_recv(peer, 65535), 3)

            # Inbound: a packet built outside the data plane reaches a socket.
            with in_vr(sites.a.name):
                listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            listener.bind((tb.SITE_A_INNER, 7777))
            listener.setblocking(False)
            inner = ipv4_udp(tb.SITE_B_INNER, tb.SITE_A_INNER, 7777, b"back over AH")
            packet = OutboundAh(in_keys, tb.SITE_B_OUTER, tb.SITE_A_OUTER).encapsulate(inner)
            peer.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            peer.sendto(packet, (tb.SITE_A_OUTER, 0))
            assert await asyncio.wait_for(loop.sock_recv(listener, 100), 3) == b"back over AH"
            return received
        finally:
            if listener is not None:
                listener.close()
            plane.close()
            peer.close()

    received = asyncio.run(scenario())
    inner = InboundAh(out_keys, tb.SITE_B_OUTER, tb.SITE_A_OUTER).decapsulate(received)
    assert socket.inet_ntoa(inner[12:16]) == tb.SITE_A_INNER
    assert inner.endswith(b"over AH")


def test_ah_larger_than_the_outer_mtu_is_fragmented(sites: tb.TwoSites, tmp_path: Path) -> None:
    """The kernel sends IP_HDRINCL packets only whole; above the veth's MTU
    the data plane learns the route MTU and fragments after AH (RFC 4302
    3.3.4); the receiving kernel reassembles before our raw socket sees it."""
    a_to_b, b_to_a = ah_keys(A_TO_B_SPI, "hmac-sha1-96"), ah_keys(B_TO_A_SPI, "hmac-sha1-96")
    sites.a.ip("link", "set", "veth-a", "mtu", "1000")
    sites.b.ip("link", "set", "veth-b", "mtu", "1000")
    pcap = tmp_path / "veth-a.pcap"

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        plane_a, plane_b = two_planes_over_ah(loop, sites, a_to_b, b_to_a)
        try:
            capture = tb.Capture(sites.a, "veth-a", pcap, "ah or (ip[6:2] & 0x1fff != 0)")
            try:
                code, out = await run_in(
                    sites.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do",
                    "-s", "1372", tb.SITE_B_INNER,
                )
                assert code == 0, out
            finally:
                capture.stop()
            for plane in (plane_a, plane_b):
                counters = plane.counters("t1")
                assert (counters.outbound_packets, counters.inbound_packets) == (3, 3)
                assert counters.io_errors == 0 and counters.drops == 0
        finally:
            plane_a.close()
            plane_b.close()

    asyncio.run(scenario())
    frames = tshark_fields(pcap, "ip.flags.mf", "ip.frag_offset", "frame.len",
                           options=("-o", "ip.defragment:FALSE"))
    assert len(frames) == 12, frames  # 6 packets of 1444 octets, 2 fragments each
    assert all(int(row[2]) <= 1000 + 14 for row in frames), frames  # Ethernet header
    assert sorted(row[0].split(",")[0] for row in frames) == ["0"] * 6 + ["1"] * 6, frames


def spi_pairs(gw: IpsecgwProcess) -> set[tuple[str, str]]:
    return set(re.findall(r"0x([0-9a-f]{8})\s+0x([0-9a-f]{8})", gw.cli("show ipsec sa")))


def test_two_daemons_negotiate_ah_and_ping(sites: tb.TwoSites, tmp_path: Path) -> None:
    """Quick Mode with `ah-hmac-sha` end to end: both daemons install AH SAs
    and the pings cross as AH."""
    a = IpsecgwProcess(sites.a, tmp_path / "a", site_config(transforms="ah-hmac-sha"))
    b = IpsecgwProcess(sites.b, tmp_path / "b", site_config(
        hostname="siteB", local=tb.SITE_B_OUTER, peer=tb.SITE_A_OUTER,
        local_net=tb.SITE_B_NET, remote_net=tb.SITE_A_NET, tunnel="siteA",
        transforms="ah-hmac-sha", responder_only=True))
    pcap = tmp_path / "veth-a.pcap"
    try:
        assert a.wait_tunnel_up("siteB") and b.wait_tunnel_up("siteA"), a.log() + b.log()
        capture = tb.Capture(sites.a, "veth-a", pcap, "ah or esp or icmp")
        try:
            assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), a.log() + b.log()
            assert ping_ok(sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
        finally:
            capture.stop()
        pairs = spi_pairs(a)
        assert len(pairs) == 1 and pairs == {(o, i) for i, o in spi_pairs(b)}, pairs
        spis = set(next(iter(pairs)))
        assert "refused SA" not in a.log() + b.log()
    finally:
        a.stop()
        b.stop()
    frames = tshark_fields(pcap, "frame.protocols", "ah.spi", "icmp.type")
    assert len(frames) == 12, frames  # 2 x 3 requests and replies
    for protocols, spi, icmp_type in frames:
        assert protocols.endswith(":ip:ah:ip:icmp:data"), protocols
        assert spi[2:] in spis, (spi, spis)
        assert icmp_type in ("0", "8")
