"""The memory data plane: bookkeeping, routes, and traffic between two of them."""

from __future__ import annotations

import ipaddress
import os
import struct

import pytest

from ipsecgw.dataplane import (
    DataPlane,
    DataPlaneError,
    DropReason,
    MemoryDataPlane,
    TunnelSpec,
    UnknownTunnel,
)
from ipsecgw.dataplane.esp import ENCRYPTIONS, INTEGRITIES, OutboundSa
from ipsecgw.dataplane.memory import Route, connect
from ipsecgw.dataplane.sadb import SWITCH_DELAY
from ipsecgw.isakmp.events import EncryptionName, IntegrityName, IpsecSaEstablished, SaKeys

A_OUTER, B_OUTER = "10.99.0.1", "10.99.0.2"
A_NET, B_NET = "10.98.1.0/24", "10.98.2.0/24"


def ipv4(src: str, dst: str, payload: bytes = b"hello through the tunnel") -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(payload),
            7,
            0,
            64,
            17,
            0,
            bytes(map(int, src.split("."))),
            bytes(map(int, dst.split("."))),
        )
        + payload
    )


def sa_keys(spi: bytes, encryption: EncryptionName, integrity: IntegrityName | None) -> SaKeys:
    return SaKeys(
        spi=spi,
        encryption=encryption,
        encryption_key=os.urandom(ENCRYPTIONS[encryption].key_size),
        integrity=integrity,
        integrity_key=os.urandom(INTEGRITIES[integrity][1]) if integrity else b"",
    )


def sa_pair(
    spi_a: bytes,
    spi_b: bytes,
    *,
    udp: bool = False,
    encryption: EncryptionName = "aes128",
    integrity: IntegrityName | None = "hmac-sha1-96",
    tunnel: str = "t1",
    rekey_of: tuple[bytes, bytes] | None = None,
    protocol: str = "esp",
) -> tuple[IpsecSaEstablished, IpsecSaEstablished]:
    """Mirrored events for site A (inbound SPI spi_a) and site B (inbound spi_b).

    For AH the encryption is "null" without a key, as the engine reports it."""
    if protocol == "ah":
        encryption = "null"
    to_a = sa_keys(spi_a, encryption, integrity)  # B -> A traffic
    to_b = sa_keys(spi_b, encryption, integrity)  # A -> B traffic
    port = 4500 if udp else 500
    common = {
        "protocol": protocol,
        "encapsulation": "udp-tunnel" if udp else "tunnel",
        "lifetime_seconds": 3600,
        "lifetime_kilobytes": 102400,
    }
    a = IpsecSaEstablished(
        tunnel=tunnel,
        peer=(B_OUTER, port),
        local=(A_OUTER, port),
        inbound=to_a,
        outbound=to_b,
        local_network=A_NET,
        remote_network=B_NET,
        rekey_of=rekey_of[0] if rekey_of else None,
        **common,  # type: ignore[arg-type]
    )
    b = IpsecSaEstablished(
        tunnel=tunnel,
        peer=(A_OUTER, port),
        local=(B_OUTER, port),
        inbound=to_b,
        outbound=to_a,
        local_network=B_NET,
        remote_network=A_NET,
        rekey_of=rekey_of[1] if rekey_of else None,
        **common,  # type: ignore[arg-type]
    )
    return a, b


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sites(clock: Clock) -> tuple[MemoryDataPlane, MemoryDataPlane]:
    a, b = MemoryDataPlane(clock=clock), MemoryDataPlane(clock=clock)
    connect(a, b)
    a.add_tunnel(TunnelSpec("t1", remote_networks=(B_NET,), local_networks=(A_NET,)))
    b.add_tunnel(TunnelSpec("t1", remote_networks=(A_NET,), local_networks=(B_NET,)))
    return a, b


def test_memory_backend_is_a_data_plane() -> None:
    plane: DataPlane = MemoryDataPlane()
    assert plane.drop_counters() == dict.fromkeys(DropReason, 0)


@pytest.mark.parametrize("udp", [False, True])
@pytest.mark.parametrize(
    ("encryption", "integrity"),
    [("aes128", "hmac-sha1-96"), ("aes256gcm", None), ("3des", "hmac-md5-96")],
)
def test_traffic_both_ways(
    sites: tuple[MemoryDataPlane, MemoryDataPlane],
    clock: Clock,
    udp: bool,
    encryption: EncryptionName,
    integrity: IntegrityName | None,
) -> None:
    a, b = sites
    ev_a, ev_b = sa_pair(
        b"\xa0\x00\x00\x01",
        b"\xb0\x00\x00\x01",
        udp=udp,
        encryption=encryption,
        integrity=integrity,
    )
    a.install_sa(ev_a)
    b.install_sa(ev_b)
    ping, pong = ipv4("10.98.1.1", "10.98.2.1"), ipv4("10.98.2.1", "10.98.1.1", b"reply")
    a.inject("t1", ping)
    clock.now += 1
    b.inject("t1", pong)

    assert b.delivered["t1"] == [ping]
    assert a.delivered["t1"] == [pong]
    sent = a.sent[0]
    assert sent.udp is udp
    assert sent.local == (A_OUTER, 4500 if udp else 0)
    assert sent.remote == (B_OUTER, 4500 if udp else 0)
    assert sent.data[:4] == b"\xb0\x00\x00\x01"  # the peer's inbound SPI
    assert ping not in sent.data

    ca, cb = a.counters("t1"), b.counters("t1")
    assert (ca.outbound_packets, ca.outbound_bytes) == (1, len(ping))
    assert (ca.inbound_packets, ca.inbound_bytes) == (1, len(pong))
    assert (cb.inbound_packets, cb.outbound_packets) == (1, 1)
    assert ca.drops == cb.drops == 0
    assert ca.last_outbound_at == 1000.0 and ca.last_inbound_at == 1001.0
    assert cb.last_inbound_at == 1000.0

    sa = a.sa_counters(b"\xa0\x00\x00\x01")
    assert sa is not None
    assert (sa.tunnel, sa.outbound_spi, sa.sequence_number) == ("t1", b"\xb0\x00\x00\x01", 1)
    assert (sa.inbound_packets, sa.outbound_packets, sa.outbound_bytes) == (1, 1, len(ping))
    assert sa.installed_at == 1000.0 and not sa.rekey_needed


def test_routes_follow_tunnel_state() -> None:
    plane = MemoryDataPlane()
    plane.add_tunnel(
        TunnelSpec(
            "t1",
            vr="vr2",
            address="10.98.1.254/32",
            remote_networks=(B_NET, "10.97.0.0/16"),
            local_networks=(A_NET,),
        )
    )
    assert plane.routes == set()
    plane.set_tunnel_up("t1", True)
    assert plane.routes == {
        Route("vr2", B_NET, "t1", "10.98.1.254"),
        Route("vr2", "10.97.0.0/16", "t1", "10.98.1.254"),
    }
    plane.set_tunnel_up("t1", True)  # idempotent
    assert len(plane.routes) == 2
    plane.set_tunnel_up("t1", False)
    assert plane.routes == set()
    plane.set_tunnel_up("t1", True)
    plane.remove_tunnel("t1")
    assert plane.routes == set() and plane.tunnels == {}


def test_route_source_must_lie_in_a_local_network() -> None:
    spec = TunnelSpec("t", address="192.0.2.1/32", local_networks=(A_NET,))
    assert spec.route_source(B_NET) is None
    assert spec.route_source(B_NET, ["127.0.0.1", "10.99.0.1", "10.98.1.1"]) == "10.98.1.1"
    assert spec.route_source("2001:db8::/32", ["10.98.1.1"]) is None
    assert TunnelSpec("t", address="10.98.1.9/24").route_source(B_NET, ["10.98.1.1"]) == "10.98.1.9"
    assert TunnelSpec("t").route_source(B_NET, ["10.98.1.1"]) is None


def test_tunnel_spec_validates() -> None:
    for bad in (
        {"remote_networks": ("10.1.0.0/33",)},
        {"address": "10.0.0.300/24"},
        {"mtu": 20},
    ):
        with pytest.raises(ValueError):
            TunnelSpec("t", **bad)  # type: ignore[arg-type]
    assert TunnelSpec("t", vr="v").outer_vr == "v"
    assert TunnelSpec("t", vr="v", transport_vr="w").outer_vr == "w"


def test_rekey_keeps_old_inbound_until_removed(
    sites: tuple[MemoryDataPlane, MemoryDataPlane], clock: Clock
) -> None:
    a, b = sites
    old_a, old_b = sa_pair(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01")
    a.install_sa(old_a)
    b.install_sa(old_b)
    ping = ipv4("10.98.1.1", "10.98.2.1")

    # B installs the new SA first; A still sends on the old one for a while.
    new_a, new_b = sa_pair(
        b"\xa0\x00\x00\x02",
        b"\xb0\x00\x00\x02",
        rekey_of=(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01"),
    )
    b.install_sa(new_b)
    a.inject("t1", ping)
    assert a.sent[-1].data[:4] == b"\xb0\x00\x00\x01"
    assert b.delivered["t1"] == [ping]
    # B's new pair does not carry outbound traffic yet: A may not have it
    # installed (a Quick Mode initiator installs on sending HASH(3)).
    b.inject("t1", ipv4("10.98.2.1", "10.98.1.1"))
    assert b.sent[-1].data[:4] == b"\xa0\x00\x00\x01"
    assert a.delivered["t1"] == [ipv4("10.98.2.1", "10.98.1.1")]

    a.install_sa(new_a)
    clock.now += SWITCH_DELAY  # now the newest SA carries outbound traffic
    a.inject("t1", ping)
    assert a.sent[-1].data[:4] == b"\xb0\x00\x00\x02"
    assert b.delivered["t1"] == [ping, ping]
    b.inject("t1", ipv4("10.98.2.1", "10.98.1.1"))
    assert b.sent[-1].data[:4] == b"\xa0\x00\x00\x02"

    # The old SA's late packet still decrypts until the delete arrives.
    late = a.sent[0].data
    b.remove_sa("t1", b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01")  # mismatched pair: ignored
    assert b.sa_counters(b"\xb0\x00\x00\x01") is not None
    b.remove_sa("t1", b"\xb0\x00\x00\x01", b"\xa0\x00\x00\x01")
    assert b.sa_counters(b"\xb0\x00\x00\x01") is None
    assert set(b.installed) == {b"\xb0\x00\x00\x02"}
    b.receive_esp(late, (B_OUTER, 0), (A_OUTER, 0), udp=False)
    assert b.counters("t1").unknown_spi == 1
    b.remove_sa("t1", b"\xb0\x00\x00\x01", b"\xa0\x00\x00\x01")  # again: ignored


def test_rekeyed_sa_carries_traffic_once_the_peer_uses_it(
    sites: tuple[MemoryDataPlane, MemoryDataPlane],
) -> None:
    a, b = sites
    old_a, old_b = sa_pair(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01")
    a.install_sa(old_a)
    b.install_sa(old_b)
    new_a, new_b = sa_pair(b"\xa0\x00\x00\x02", b"\xb0\x00\x00\x02")
    a.install_sa(new_a)
    b.install_sa(new_b)
    b.inject("t1", ipv4("10.98.2.1", "10.98.1.1"))
    assert b.sent[-1].data[:4] == b"\xa0\x00\x00\x01"  # before the delay: the old pair
    # ... unless the peer's traffic shows it has the new SA: ESP from A on it.
    esp = OutboundSa(new_a.outbound).encapsulate(ipv4("10.98.1.1", "10.98.2.1"))
    b.receive_esp(esp, (B_OUTER, 0), (A_OUTER, 0), udp=False)
    b.inject("t1", ipv4("10.98.2.1", "10.98.1.1"))
    assert b.sent[-1].data[:4] == b"\xa0\x00\x00\x02"


def test_old_sa_decrypts_during_overlap(sites: tuple[MemoryDataPlane, MemoryDataPlane]) -> None:
    a, b = sites
    old_a, old_b = sa_pair(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01")
    new_a, new_b = sa_pair(b"\xa0\x00\x00\x02", b"\xb0\x00\x00\x02")
    a.install_sa(old_a)
    b.install_sa(old_b)
    a.inject("t1", ipv4("10.98.1.1", "10.98.2.1", b"old"))
    in_flight = a.sent[-1].data
    a.install_sa(new_a)
    b.install_sa(new_b)
    b.receive_esp(in_flight, (B_OUTER, 0), (A_OUTER, 0), udp=False)  # delivered late
    assert b.delivered["t1"][-1].endswith(b"old")


def test_tampered_and_replayed_packets_are_counted(
    sites: tuple[MemoryDataPlane, MemoryDataPlane],
) -> None:
    a, b = sites
    ev_a, ev_b = sa_pair(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01")
    a.install_sa(ev_a)
    b.install_sa(ev_b)
    a.send_raw = None  # capture only
    a.inject("t1", ipv4("10.98.1.1", "10.98.2.1"))
    packet = a.sent[-1].data
    tampered = packet[:-1] + bytes([packet[-1] ^ 1])
    for data in (tampered, packet, packet, b"\xb0\x00\x00\x01\x00"):
        b.receive_esp(data, (B_OUTER, 0), (A_OUTER, 0), udp=False)
    counters = b.counters("t1")
    assert (counters.auth_failed, counters.replay, counters.malformed) == (1, 1, 1)
    assert counters.inbound_packets == 1
    sa = b.sa_counters(b"\xb0\x00\x00\x01")
    assert sa is not None and (sa.auth_failed, sa.replay) == (1, 1)


def test_unattributed_drops() -> None:
    plane = MemoryDataPlane()
    plane.receive_esp(
        b"\x01\x02\x03\x04" + bytes(40), ("192.0.2.1", 4500), ("192.0.2.2", 4500), True
    )
    plane.receive_esp(b"\x01\x02", ("192.0.2.1", 4500), ("192.0.2.2", 4500), True)
    drops = plane.drop_counters()
    assert drops[DropReason.UNKNOWN_SPI] == 1 and drops[DropReason.MALFORMED] == 1


def test_outbound_selectors(sites: tuple[MemoryDataPlane, MemoryDataPlane]) -> None:
    a, b = sites
    ev_a, ev_b = sa_pair(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01")
    a.install_sa(ev_a)
    b.install_sa(ev_b)
    a.inject("t1", ipv4("10.99.0.1", "10.98.2.1"))  # source outside the local network
    a.inject("t1", ipv4("10.98.1.1", "10.98.3.1"))  # destination outside the remote one
    a.inject("t1", b"\x60" + bytes(39))  # IPv6 on an IPv4 SA
    a.inject("t1", b"\x45\x00")  # truncated
    assert a.sent == [] and a.counters("t1").no_sa == 4
    a.inject("nonexistent", ipv4("10.98.1.1", "10.98.2.1"))
    assert a.sent == []


def test_inbound_policy_check(clock: Clock) -> None:
    """A peer with wider selectors cannot inject traffic outside ours (RFC 4301 5.2)."""
    a, b = MemoryDataPlane(clock=clock), MemoryDataPlane(clock=clock)
    connect(a, b)
    a.add_tunnel(TunnelSpec("t1"))
    b.add_tunnel(TunnelSpec("t1"))
    ev_a, ev_b = sa_pair(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01")
    wide_a = IpsecSaEstablished(
        **{**ev_a.__dict__, "local_network": "0.0.0.0/0", "remote_network": "0.0.0.0/0"}
    )
    a.install_sa(wide_a)
    b.install_sa(ev_b)
    a.inject("t1", ipv4("10.98.1.1", "10.98.2.1"))
    a.inject("t1", ipv4("10.98.1.1", "10.50.0.1"))
    a.inject("t1", ipv4("172.16.0.1", "10.98.2.1"))
    assert len(b.delivered["t1"]) == 1
    counters = b.counters("t1")
    assert counters.policy == 2 and counters.inbound_packets == 1
    assert counters.last_inbound_at == clock.now  # authenticated: the peer is alive


def test_errors() -> None:
    plane = MemoryDataPlane()
    ev_a, _ = sa_pair(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01")
    with pytest.raises(UnknownTunnel):
        plane.install_sa(ev_a)
    with pytest.raises(KeyError):  # the daemon catches lookups as KeyError
        plane.counters("t1")
    plane.add_tunnel(TunnelSpec("t1"))
    with pytest.raises(DataPlaneError):
        plane.add_tunnel(TunnelSpec("t1"))
    plane.install_sa(ev_a)
    with pytest.raises(DataPlaneError, match="already installed"):
        plane.install_sa(ev_a)
    ah_with_cipher = IpsecSaEstablished(
        **{
            **ev_a.__dict__,
            "protocol": "ah",
            "inbound": sa_keys(b"\x01\x01\x01\x01", "null", "hmac-sha1-96"),
        }
    )
    with pytest.raises(DataPlaneError, match="AH does not encrypt"):
        plane.install_sa(ah_with_cipher)  # its outbound keys carry an AES key
    ipcomp = IpsecSaEstablished(
        **{
            **ev_a.__dict__,
            "protocol": "ipcomp",
            "inbound": sa_keys(b"\x04\x04\x04\x04", "aes128", "hmac-sha1-96"),
        }
    )
    with pytest.raises(DataPlaneError, match="'ipcomp' is not supported"):
        plane.install_sa(ipcomp)
    bad_key = IpsecSaEstablished(
        **{
            **ev_a.__dict__,
            "inbound": SaKeys(b"\x02\x02\x02\x02", "aes128", bytes(5), "hmac-sha1-96", bytes(20)),
        }
    )
    with pytest.raises(DataPlaneError, match="16-byte key"):
        plane.install_sa(bad_key)
    mixed = IpsecSaEstablished(
        **{
            **ev_a.__dict__,
            "inbound": sa_keys(b"\x03\x03\x03\x03", "aes128", "hmac-sha1-96"),
            "remote_network": "2001:db8::/32",
        }
    )
    with pytest.raises(DataPlaneError, match="IP versions"):
        plane.install_sa(mixed)
    assert len(plane.installed) == 1  # failed installs leave nothing behind
    with pytest.raises(UnknownTunnel):
        plane.set_tunnel_up("t2", True)
    plane.remove_tunnel("t2")  # unknown: ignored


def test_remove_tunnel_drops_its_sas(sites: tuple[MemoryDataPlane, MemoryDataPlane]) -> None:
    a, b = sites
    ev_a, ev_b = sa_pair(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01")
    a.install_sa(ev_a)
    b.install_sa(ev_b)
    b.inject("t1", ipv4("10.98.2.1", "10.98.1.1"))
    packet = b.sent[-1].data
    a.remove_tunnel("t1")
    assert a.installed == {} and a.sa_counters(b"\xa0\x00\x00\x01") is None
    a.receive_esp(packet, (A_OUTER, 0), (B_OUTER, 0), udp=False)
    assert a.drop_counters()[DropReason.UNKNOWN_SPI] == 1  # no tunnel left to charge
    a.add_tunnel(TunnelSpec("t1"))
    a.install_sa(ev_a)  # the same SPI can be installed again
    a.close()
    assert a.closed and a.tunnels == {}


def test_two_tunnels_are_independent(clock: Clock) -> None:
    a, b = MemoryDataPlane(clock=clock), MemoryDataPlane(clock=clock)
    connect(a, b)
    for plane in (a, b):
        plane.add_tunnel(TunnelSpec("t1"))
        plane.add_tunnel(TunnelSpec("t2"))
    t1 = sa_pair(b"\xa0\x00\x00\x01", b"\xb0\x00\x00\x01", tunnel="t1")
    t2 = sa_pair(b"\xa0\x00\x00\x02", b"\xb0\x00\x00\x02", tunnel="t2", udp=True)
    for ev_a, ev_b in (t1, t2):
        a.install_sa(ev_a)
        b.install_sa(ev_b)
    a.inject("t2", ipv4("10.98.1.1", "10.98.2.1", b"via t2"))
    assert b.delivered == {"t1": [], "t2": [ipv4("10.98.1.1", "10.98.2.1", b"via t2")]}
    assert a.counters("t1").outbound_packets == 0 and a.counters("t2").outbound_packets == 1


def ipv6(src: str, dst: str, payload: bytes = b"six") -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), 17, 64)
        + ipaddress.ip_address(src).packed
        + ipaddress.ip_address(dst).packed
        + payload
    )


def test_ipv6_inner_traffic(clock: Clock) -> None:
    a, b = MemoryDataPlane(clock=clock), MemoryDataPlane(clock=clock)
    connect(a, b)
    a.add_tunnel(TunnelSpec("t6", remote_networks=("2001:db8:2::/48",)))
    b.add_tunnel(TunnelSpec("t6", remote_networks=("2001:db8:1::/48",)))
    ev_a, ev_b = sa_pair(
        b"\xa6\x00\x00\x01",
        b"\xb6\x00\x00\x01",
        tunnel="t6",
        encryption="aes128gcm",
        integrity=None,
    )
    a.install_sa(
        IpsecSaEstablished(
            **{
                **ev_a.__dict__,
                "local_network": "2001:db8:1::/48",
                "remote_network": "2001:db8:2::/48",
            }
        )
    )
    b.install_sa(
        IpsecSaEstablished(
            **{
                **ev_b.__dict__,
                "local_network": "2001:db8:2::/48",
                "remote_network": "2001:db8:1::/48",
            }
        )
    )
    good = ipv6("2001:db8:1::1", "2001:db8:2:ffff::9")
    a.inject("t6", good)
    a.inject("t6", ipv6("2001:db8:1::1", "2001:db8:3::1"))  # outside the remote network
    a.inject("t6", ipv4("10.98.1.1", "10.98.2.1"))  # IPv4 on an IPv6 SA
    a.inject("t6", good[:30])  # shorter than an IPv6 header
    assert b.delivered["t6"] == [good]
    assert a.counters("t6").no_sa == 3


def test_traffic_changes_name_only_tunnels_that_carried_traffic(clock: Clock) -> None:
    """The daemon's poll visits only these, so idle tunnels cost it nothing."""
    a, b = MemoryDataPlane(clock=clock), MemoryDataPlane(clock=clock)
    connect(a, b)
    for n, remote in ((1, B_NET), (2, "10.98.3.0/24")):
        a.add_tunnel(TunnelSpec(f"t{n}", remote_networks=(remote,), local_networks=(A_NET,)))
        b.add_tunnel(TunnelSpec(f"t{n}", remote_networks=(A_NET,), local_networks=(remote,)))
        ev_a, ev_b = sa_pair(bytes([0xA0, 0, 0, n]), bytes([0xB0, 0, 0, n]), tunnel=f"t{n}")
        a.install_sa(ev_a)
        b.install_sa(ev_b)
    assert a.traffic_changes() == {}

    ping = ipv4("10.98.1.1", "10.98.2.1")
    a.inject("t1", ping)
    assert a.traffic_changes() == {"t1": (0, len(ping))}
    assert a.traffic_changes() == {}  # reported once
    pong = ipv4("10.98.2.1", "10.98.1.1", b"reply")
    b.inject("t1", pong)
    a.inject("t1", ping)
    assert a.traffic_changes() == {"t1": (len(pong), 2 * len(ping))}  # cumulative

    # Dropped packets move no byte counter; a removed tunnel is not reported.
    a.inject("t2", ipv4("10.98.1.1", "10.98.9.9"))  # outside t2's selectors
    assert a.traffic_changes() == {}
    a.inject("t2", ipv4("10.98.1.1", "10.98.3.1"))
    a.remove_tunnel("t2")
    assert a.traffic_changes() == {}


# AH (RFC 4302): tunnel mode over IPv4, never UDP-encapsulated


@pytest.fixture
def ah_sites(
    sites: tuple[MemoryDataPlane, MemoryDataPlane],
) -> tuple[MemoryDataPlane, MemoryDataPlane]:
    a, b = sites
    ev_a, ev_b = sa_pair(b"\xa0\x00\x00\x51", b"\xb0\x00\x00\x51", protocol="ah")
    a.install_sa(ev_a)
    b.install_sa(ev_b)
    return a, b


@pytest.mark.parametrize("integrity", ["hmac-sha1-96", "hmac-md5-96"])
def test_ah_traffic_both_ways(clock: Clock, integrity: IntegrityName) -> None:
    a, b = MemoryDataPlane(clock=clock), MemoryDataPlane(clock=clock)
    connect(a, b)
    a.add_tunnel(TunnelSpec("t1", remote_networks=(B_NET,), local_networks=(A_NET,)))
    b.add_tunnel(TunnelSpec("t1", remote_networks=(A_NET,), local_networks=(B_NET,)))
    ev_a, ev_b = sa_pair(
        b"\xa0\x00\x00\x51", b"\xb0\x00\x00\x51", protocol="ah", integrity=integrity
    )
    a.install_sa(ev_a)
    b.install_sa(ev_b)
    ping, pong = ipv4("10.98.1.1", "10.98.2.1"), ipv4("10.98.2.1", "10.98.1.1", b"reply")
    for _ in range(3):
        a.inject("t1", ping)
        clock.now += 1
        b.inject("t1", pong)
    assert b.delivered["t1"] == [ping] * 3
    assert a.delivered["t1"] == [pong] * 3

    sent = a.sent[0]
    assert (sent.protocol, sent.udp) == ("ah", False)
    assert (sent.local, sent.remote) == ((A_OUTER, 0), (B_OUTER, 0))
    # A whole IPv4 packet: protocol 51 between the outer addresses, AH
    # carrying the peer's inbound SPI, the inner packet in the clear.
    data = sent.data
    assert data[0] == 0x45 and data[9] == 51
    assert ipaddress.ip_address(data[12:16]) == ipaddress.ip_address(A_OUTER)
    assert ipaddress.ip_address(data[16:20]) == ipaddress.ip_address(B_OUTER)
    assert data[24:28] == b"\xb0\x00\x00\x51"
    assert data.endswith(ping) and len(data) == 20 + 24 + len(ping)

    ca, cb = a.counters("t1"), b.counters("t1")
    assert (ca.outbound_packets, ca.outbound_bytes) == (3, 3 * len(ping))
    assert (ca.inbound_packets, ca.inbound_bytes) == (3, 3 * len(pong))
    assert ca.drops == cb.drops == 0
    assert ca.last_inbound_at == clock.now
    sa = b.sa_counters(b"\xb0\x00\x00\x51")
    assert sa is not None
    assert (sa.outbound_spi, sa.inbound_packets, sa.sequence_number) == (
        b"\xa0\x00\x00\x51", 3, 3)


def test_ah_tampered_replayed_and_misdirected_packets_are_counted(
    ah_sites: tuple[MemoryDataPlane, MemoryDataPlane],
) -> None:
    a, b = ah_sites
    a.send_ah = None  # capture only
    inner = ipv4("10.98.1.1", "10.98.2.1")
    a.inject("t1", inner)
    packet = a.sent[-1].data
    tampered = packet[:-1] + bytes([packet[-1] ^ 1])  # a payload byte: AH covers it
    ttl_changed = packet[:8] + b"\x01" + packet[9:]  # mutable: still good
    for data in (tampered, ttl_changed, packet, packet[:30]):
        b.receive_ah(data)
    counters = b.counters("t1")
    assert (counters.auth_failed, counters.replay, counters.malformed) == (1, 1, 1)
    assert counters.inbound_packets == 1 and b.delivered["t1"] == [inner]
    sa = b.sa_counters(b"\xb0\x00\x00\x51")
    assert sa is not None and (sa.auth_failed, sa.replay, sa.malformed) == (1, 1, 1)

    # An unknown SPI between the tunnel's outer addresses is charged to it.
    b.receive_ah(packet[:24] + b"\x0b\xad\x0b\xad" + packet[28:])
    assert b.counters("t1").unknown_spi == 1
    # From somewhere else: nobody's.
    elsewhere = packet[:12] + bytes([192, 0, 2, 9]) + packet[16:]
    b.receive_ah(elsewhere[:24] + b"\x0b\xad\x0b\xad" + elsewhere[28:])
    b.receive_ah(b"\x45")
    assert b.drop_counters()[DropReason.UNKNOWN_SPI] == 1
    assert b.drop_counters()[DropReason.MALFORMED] == 1


def test_esp_and_ah_spis_are_separate_spaces(
    ah_sites: tuple[MemoryDataPlane, MemoryDataPlane],
) -> None:
    """A packet is looked up among the SAs of its own protocol only."""
    a, b = ah_sites
    a.send_ah = None
    a.inject("t1", ipv4("10.98.1.1", "10.98.2.1"))
    ah_packet = a.sent[-1].data
    # ESP carrying the AH SA's SPI: no ESP SA has it.
    b.receive_esp(ah_packet[24:], (B_OUTER, 0), (A_OUTER, 0), udp=False)
    assert b.counters("t1").unknown_spi == 1 and b.counters("t1").auth_failed == 0

    b.add_tunnel(TunnelSpec("esp"))
    esp_a, esp_b = sa_pair(b"\xa0\x00\x00\x50", b"\xb0\x00\x00\x50", tunnel="esp")
    b.install_sa(esp_b)
    esp = OutboundSa(esp_a.outbound).encapsulate(ipv4("10.98.1.1", "10.98.2.1"))
    # AH carrying an ESP SA's SPI: no AH SA has it (charged to the tunnel
    # installed last between these outer addresses).
    b.receive_ah(ah_packet[:24] + esp[:4] + ah_packet[28:])
    assert b.counters("esp").unknown_spi == 1 and b.counters("esp").auth_failed == 0
    b.receive_esp(esp, (B_OUTER, 0), (A_OUTER, 0), udp=False)
    assert b.counters("esp").inbound_packets == 1  # it does have an ESP SA
    # A pair is named by its inbound SPI (remove_sa, sa_counters): one SPI,
    # one pair, whatever the protocol.
    same_spi = IpsecSaEstablished(
        **{**esp_b.__dict__, "inbound": sa_keys(b"\xb0\x00\x00\x51", "aes128", "hmac-sha1-96")}
    )
    with pytest.raises(DataPlaneError, match="already installed"):
        b.install_sa(same_spi)


def test_ah_is_refused_where_it_cannot_work() -> None:
    plane = MemoryDataPlane()
    plane.add_tunnel(TunnelSpec("t1"))
    ev_a, _ = sa_pair(b"\xa0\x00\x00\x51", b"\xb0\x00\x00\x51", protocol="ah", udp=True)
    with pytest.raises(DataPlaneError, match="AH cannot be UDP-encapsulated"):
        plane.install_sa(ev_a)  # a NAT rewrites the addresses the ICV covers
    ev_a, _ = sa_pair(b"\xa0\x00\x00\x51", b"\xb0\x00\x00\x51", protocol="ah")
    six = IpsecSaEstablished(
        **{**ev_a.__dict__, "local": ("2001:db8::1", 500), "peer": ("2001:db8::2", 500)}
    )
    with pytest.raises(DataPlaneError, match="IPv6 outer addresses .* not supported"):
        plane.install_sa(six)
    assert plane.installed == {}
    plane.install_sa(ev_a)  # the same SA over IPv4 is fine
    assert plane.sa_counters(b"\xa0\x00\x00\x51") is not None


def test_ah_rekey_overlap_and_removal(
    ah_sites: tuple[MemoryDataPlane, MemoryDataPlane], clock: Clock
) -> None:
    a, b = ah_sites
    deliver, a.send_ah = a.send_ah, None
    a.inject("t1", ipv4("10.98.1.1", "10.98.2.1", b"old"))
    in_flight = a.sent[-1].data
    a.send_ah = deliver
    new_a, new_b = sa_pair(b"\xa0\x00\x00\x52", b"\xb0\x00\x00\x52", protocol="ah")
    a.install_sa(new_a)
    b.install_sa(new_b)
    clock.now += SWITCH_DELAY
    a.inject("t1", ipv4("10.98.1.1", "10.98.2.1", b"new"))
    assert a.sent[-1].data[24:28] == b"\xb0\x00\x00\x52"
    b.receive_ah(in_flight)  # the old SA still verifies until it is removed
    assert [p[-3:] for p in b.delivered["t1"]] == [b"new", b"old"]
    b.remove_sa("t1", b"\xb0\x00\x00\x51", b"\xa0\x00\x00\x51")
    assert b.sa_counters(b"\xb0\x00\x00\x51") is None
    a.inject("t1", ipv4("10.98.1.1", "10.98.2.1", b"end"))
    assert b.delivered["t1"][-1].endswith(b"end")
