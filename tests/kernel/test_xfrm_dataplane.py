"""The kernel's reading of ipsecgw's XFRM messages and the `xfrm` data plane,
without IKE: SAs of every transform as `ip xfrm state` shows them, two
gateways' data planes passing pings, counters from the kernel, and the
ownership rules (nothing left after close, a crashed run's state swept,
another daemon's state untouched)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ipsecgw.dataplane import DataPlaneError, TunnelSpec
from ipsecgw.dataplane.xfrm import IF_ID_FIRST, XfrmDataPlane
from ipsecgw.dataplane.xfrm_netlink import Encap, StateSpec, XfrmSocket, algorithms
from ipsecgw.isakmp.events import SaKeys
from ipsecgw.netns import in_vr
from ipsecgw.tools import testbed as tb

pytestmark = pytest.mark.kernel

# (ipsecgw's names, key sizes, what `ip xfrm state` prints for them)
TRANSFORMS = [
    ("esp", "aes128", 16, "hmac-sha1-96", 20, ["enc cbc(aes)", "auth-trunc hmac(sha1)", " 96"]),
    ("esp", "aes256", 32, "hmac-sha256-128", 32,
     ["enc cbc(aes)", "auth-trunc hmac(sha256)", " 128"]),
    ("esp", "3des", 24, "hmac-md5-96", 16, ["enc cbc(des3_ede)", "auth-trunc hmac(md5)"]),
    ("esp", "des", 8, "hmac-sha1-96", 20, ["enc cbc(des)"]),
    ("esp", "null", 0, "hmac-sha1-96", 20, ["enc ecb(cipher_null)"]),
    ("esp", "aes128gcm", 20, None, 0, ["aead rfc4106(gcm(aes))", " 128"]),
    ("esp", "aes256gcm", 36, None, 0, ["aead rfc4106(gcm(aes))", " 128"]),
    ("ah", "null", 0, "hmac-md5-96", 16, ["proto ah", "auth-trunc hmac(md5)"]),
    ("ah", "null", 0, "hmac-sha1-96", 20, ["proto ah", "auth-trunc hmac(sha1)"]),
]


@pytest.fixture
def netns() -> Iterator[tb.Netns]:
    ns = tb.Netns.create("igwk")
    yield ns
    ns.close()


def test_the_kernel_reads_each_transform_as_ip_xfrm_shows_it(netns: tb.Netns) -> None:
    with in_vr(netns.name):
        xfrm = XfrmSocket()
    try:
        for protocol, encryption, key_size, integrity, integrity_size, expected in TRANSFORMS:
            key = os.urandom(key_size)
            integrity_key = os.urandom(integrity_size)
            spi = bytes.fromhex("0a0b0c0d")
            xfrm.add_state(StateSpec(
                "10.99.0.1", "10.99.0.2", spi, protocol,
                algorithms(encryption, key, integrity, integrity_key, protocol),
                IF_ID_FIRST + 5, reqid=3, replay_window=32,
                encap=Encap(4500, 31000) if protocol == "esp" else None))
            shown = netns.ip("xfrm", "state")
            for text in expected:
                assert text in shown, shown
            assert "src 10.99.0.1 dst 10.99.0.2" in shown and "spi 0x0a0b0c0d" in shown, shown
            assert "mode tunnel" in shown and "reqid 3" in shown, shown
            assert f"if_id {IF_ID_FIRST + 5:#x}" in shown, shown
            assert "replay-window 32" in shown, shown
            if key_size:
                assert key.hex() in shown, shown
            if integrity:
                assert integrity_key.hex() in shown, shown
            if protocol == "esp":
                assert "encap type espinudp sport 4500 dport 31000" in shown, shown
            info = xfrm.get_state("10.99.0.2", spi, protocol)
            assert (info.spi, info.bytes, info.packets, info.if_id) == (
                spi, 0, 0, IF_ID_FIRST + 5)
            xfrm.delete_state("10.99.0.2", spi, protocol)
            assert netns.ip("xfrm", "state").strip() == ""
    finally:
        xfrm.close()


@dataclass(frozen=True)
class Sa:
    tunnel: str
    peer: tuple[str, int]
    local: tuple[str, int]
    inbound: SaKeys
    outbound: SaKeys
    protocol: str
    encapsulation: str
    local_network: str
    remote_network: str
    lifetime_seconds: int = 3600
    lifetime_kilobytes: int = 0
    rekey_of: bytes | None = None


def _pair(protocol: str, encryption: str, key_size: int, integrity: str | None,
          integrity_size: int) -> tuple[Sa, Sa]:
    """Matching SAs of site A and site B (A's outbound is B's inbound)."""
    a_to_b = SaKeys(os.urandom(4), encryption, os.urandom(key_size), integrity,  # type: ignore[arg-type]
                    os.urandom(integrity_size))
    b_to_a = SaKeys(os.urandom(4), encryption, os.urandom(key_size), integrity,  # type: ignore[arg-type]
                    os.urandom(integrity_size))
    a = Sa("t", (tb.SITE_B_OUTER, 0), (tb.SITE_A_OUTER, 0), b_to_a, a_to_b, protocol, "tunnel",
           tb.SITE_A_NET, tb.SITE_B_NET)
    b = Sa("t", (tb.SITE_A_OUTER, 0), (tb.SITE_B_OUTER, 0), a_to_b, b_to_a, protocol, "tunnel",
           tb.SITE_B_NET, tb.SITE_A_NET)
    return a, b


def _ping(ns: tb.Netns, source: str, target: str, count: int = 3) -> bool:
    out = ns.run("ping", "-c", str(count), "-i", "0.2", "-W", "2", "-I", source, target,
                 check=False)
    return f"{count} received" in out


@pytest.mark.parametrize("transform", [TRANSFORMS[0], TRANSFORMS[6], TRANSFORMS[8]],
                         ids=["esp-aes128-sha1", "esp-aes256gcm", "ah-sha1"])
def test_two_data_planes_carry_pings_count_them_and_leave_nothing(
        transform: tuple) -> None:  # type: ignore[type-arg]
    protocol, encryption, key_size, integrity, integrity_size, _ = transform
    with tb.TwoSites("igwk") as sites:
        a = XfrmDataPlane()
        b = XfrmDataPlane()
        try:
            with in_vr(sites.a.name):
                a.add_tunnel(TunnelSpec("t", vr="default", remote_networks=(tb.SITE_B_NET,),
                                        local_networks=(tb.SITE_A_NET,)))
            with in_vr(sites.b.name):
                b.add_tunnel(TunnelSpec("t", vr="default", remote_networks=(tb.SITE_A_NET,),
                                        local_networks=(tb.SITE_B_NET,)))
            sa_a, sa_b = _pair(protocol, encryption, key_size, integrity, integrity_size)
            with in_vr(sites.a.name):
                a.install_sa(sa_a)
                a.set_tunnel_up("t", True)
            with in_vr(sites.b.name):
                b.install_sa(sa_b)
                b.set_tunnel_up("t", True)
            assert _ping(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), sites.a.ip("xfrm", "state")
            shown = sites.a.ip("-s", "xfrm", "state")
            with in_vr(sites.a.name):
                counters = a.counters("t")
                sa = a.sa_counters(sa_a.inbound.spi)
                changes = a.traffic_changes()
            assert counters.outbound_packets == 3 and counters.inbound_packets == 3, shown
            assert sa is not None and sa.outbound_packets == 3 and sa.inbound_packets == 3
            assert changes == {"t": (counters.inbound_bytes, counters.outbound_bytes)}
            # the kernel's own byte counts, as `ip -s xfrm state` prints them
            kernel_bytes = sorted(int(n) for n in re.findall(r"(\d+)\(bytes\)", shown))
            assert kernel_bytes == sorted([counters.inbound_bytes, counters.outbound_bytes])
            assert counters.last_inbound_at is not None
            with in_vr(sites.a.name):
                a.close()
            assert sites.a.ip("xfrm", "state").strip() == ""
            assert sites.a.ip("xfrm", "policy").strip() == ""
            assert "xfrm" not in sites.a.ip("-d", "link", "show")
        finally:
            with in_vr(sites.b.name):
                b.close()


def test_a_crashed_runs_state_is_swept_and_another_daemons_is_kept(netns: tb.Netns) -> None:
    netns.ip("link", "add", "ips-old", "type", "xfrm", "if_id", hex(IF_ID_FIRST + 7))
    netns.ip("link", "add", "other0", "type", "xfrm", "if_id", "0x42")
    for if_id, spi in ((IF_ID_FIRST + 7, "0x1001"), (0x42, "0x1002")):
        netns.ip("xfrm", "state", "add", "src", "10.99.0.1", "dst", "10.99.0.2", "proto", "esp",
                 "spi", spi, "mode", "tunnel", "if_id", hex(if_id), "enc", "cbc(aes)",
                 "0x" + "11" * 16, "auth-trunc", "hmac(sha1)", "0x" + "22" * 20, "96")
        netns.ip("xfrm", "policy", "add", "src", "10.98.1.0/24", "dst", "10.98.2.0/24",
                 "dir", "out", "if_id", hex(if_id), "tmpl", "src", "10.99.0.1", "dst",
                 "10.99.0.2", "proto", "esp", "mode", "tunnel")
    plane = XfrmDataPlane()
    with in_vr(netns.name):
        plane.add_tunnel(TunnelSpec("new"))
    states, policies = netns.ip("xfrm", "state"), netns.ip("xfrm", "policy")
    links = netns.ip("-d", "link", "show")
    assert "0x00001001" not in states and "spi 0x00001002" in states, states
    assert policies.count("dir out") == 1 and "if_id 0x42" in policies, policies
    assert "ips-old" not in links and "other0" in links and "ips-new" in links, links
    with in_vr(netns.name):
        plane.close()
    assert "ips-new" not in netns.ip("link", "show")


def test_an_sa_the_kernel_refuses_raises_with_the_kernels_reason(netns: tb.Netns) -> None:
    plane = XfrmDataPlane()
    with in_vr(netns.name):
        plane.add_tunnel(TunnelSpec("t"))
        sa, _ = _pair("esp", "aes128", 16, "hmac-sha1-96", 20)
        # a 16-byte key announced as AES but cut short: the kernel says EINVAL
        bad = Sa(**{**sa.__dict__, "inbound": SaKeys(sa.inbound.spi, "aes128", b"\x01" * 15,
                                                      "hmac-sha1-96", bytes(20))})
        with pytest.raises(DataPlaneError, match=r"kernel refused the inbound SA \(ESP aes128/hmac-sha1-96.*Invalid"):
            plane.install_sa(bad)
        assert netns.ip("xfrm", "state").strip() == ""
        plane.close()
