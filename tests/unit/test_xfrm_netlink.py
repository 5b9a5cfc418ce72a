"""NETLINK_XFRM encoding (ipsecgw.dataplane.xfrm_netlink), checked field by
field against the layouts of linux/xfrm.h; the kernel's own reading of these
messages is checked in the VM (tests/kernel/test_xfrm_kernel.py)."""

from __future__ import annotations

import socket
import struct

import pytest

from ipsecgw.dataplane import xfrm_netlink as xn

SPI = bytes.fromhex("c0ffee01")


def _attrs(data: bytes) -> dict[int, bytes]:
    return dict(xn.attributes(data))


def test_esp_cbc_state_carries_addresses_spi_algorithms_and_if_id() -> None:
    algorithms = xn.algorithms("aes256", bytes(range(32)), "hmac-sha256-128",
                               bytes(range(32, 64)), "esp")
    body = xn.encode_state(xn.StateSpec("10.99.0.1", "10.99.0.2", SPI, "esp", algorithms,
                                        0x49500001, reqid=7, replay_window=32))
    info = body[:224]
    assert info[56:60] == socket.inet_aton("10.99.0.2")  # id.daddr
    assert info[72:76] == SPI and info[76] == 50  # id.spi, id.proto
    assert info[80:84] == socket.inet_aton("10.99.0.1")  # saddr
    # lft: byte and packet limits infinite, no time limits (the engine rekeys)
    assert struct.unpack_from("=8Q", info, 96) == (xn.XFRM_INF,) * 4 + (0,) * 4
    reqid, family, mode, window, flags = struct.unpack_from("=IHBBB", info, 208)
    assert (reqid, family, mode, window, flags) == (7, socket.AF_INET, 1, 32, 0)
    attrs = _attrs(body[224:])
    crypt = attrs[xn.XFRMA_ALG_CRYPT]
    assert crypt[:64].rstrip(b"\0") == b"cbc(aes)"
    assert struct.unpack_from("=I", crypt, 64) == (256,) and crypt[68:] == bytes(range(32))
    auth = attrs[xn.XFRMA_ALG_AUTH_TRUNC]
    assert auth[:64].rstrip(b"\0") == b"hmac(sha256)"
    assert struct.unpack_from("=II", auth, 64) == (256, 128) and auth[72:] == bytes(range(32, 64))
    assert struct.unpack("=I", attrs[xn.XFRMA_IF_ID]) == (0x49500001,)
    assert xn.XFRMA_ENCAP not in attrs and xn.XFRMA_REPLAY_ESN_VAL not in attrs


def test_gcm_is_one_aead_attribute_with_the_salt_in_the_key() -> None:
    key = bytes(range(36))  # 32-byte key + 4-byte salt (RFC 4106 8.1)
    (aead,) = xn.algorithms("aes256gcm", key, None, b"", "esp")
    attr = _attrs(aead.encode())[xn.XFRMA_ALG_AEAD]
    assert attr[:64].rstrip(b"\0") == b"rfc4106(gcm(aes))"
    assert struct.unpack_from("=II", attr, 64) == (288, 128) and attr[72:] == key


def test_nat_t_state_carries_the_udp_ports_and_a_wide_window_uses_the_esn_state() -> None:
    algorithms = xn.algorithms("null", b"", "hmac-sha1-96", bytes(20), "esp")
    body = xn.encode_state(xn.StateSpec("10.99.0.1", "10.99.0.2", SPI, "esp", algorithms,
                                        0x49500002, replay_window=64,
                                        encap=xn.Encap(4500, 31000)))
    assert body[215] == 0  # the legacy window holds at most 32 packets
    attrs = _attrs(body[224:])
    encap_type, sport, dport = struct.unpack_from("=HHH", attrs[xn.XFRMA_ENCAP])
    assert (encap_type, socket.ntohs(sport), socket.ntohs(dport)) == (2, 4500, 31000)
    esn = attrs[xn.XFRMA_REPLAY_ESN_VAL]
    assert struct.unpack_from("=6I", esn) == (2, 0, 0, 0, 0, 64) and len(esn) == 24 + 8
    assert attrs[xn.XFRMA_ALG_CRYPT][:64].rstrip(b"\0") == b"ecb(cipher_null)"


def test_ah_has_only_an_auth_attribute_and_refuses_what_it_cannot_map() -> None:
    (auth,) = xn.algorithms("null", b"", "hmac-md5-96", bytes(16), "ah")
    assert (auth.attribute, auth.name, auth.bits) == (xn.XFRMA_ALG_AUTH_TRUNC, "hmac(md5)", 96)
    with pytest.raises(ValueError, match="AH needs"):
        xn.algorithms("null", b"", None, b"", "ah")
    with pytest.raises(ValueError, match="unsupported ESP encryption"):
        xn.algorithms("blowfish", bytes(16), "hmac-sha1-96", bytes(20), "esp")
    with pytest.raises(ValueError, match="no separate integrity"):
        xn.algorithms("aes128gcm", bytes(20), "hmac-sha1-96", bytes(20), "esp")


def test_decode_state_reads_back_what_the_kernel_echoes() -> None:
    algorithms = xn.algorithms("3des", bytes(24), "hmac-sha1-96", bytes(20), "esp")
    body = bytearray(xn.encode_state(xn.StateSpec("10.99.0.1", "10.99.0.2", SPI, "esp",
                                                  algorithms, 0x49500003)))
    struct.pack_into("=4Q", body, 160, 1234, 5, 1700000000, 0)  # curlft as GETSA fills it
    struct.pack_into("=3I", body, 192, 32, 2, 3)  # stats: window, replay, integrity failed
    state = xn.decode_state(bytes(body))
    assert (state.destination, state.spi, state.protocol) == ("10.99.0.2", SPI, 50)
    assert (state.bytes, state.packets, state.replay, state.integrity_failed) == (1234, 5, 2, 3)
    assert state.if_id == 0x49500003


def test_policy_selector_template_and_if_id() -> None:
    policy = xn.PolicySpec(xn.Selector("10.98.1.0/24", "10.98.2.0/24"), xn.XFRM_POLICY_OUT,
                           "10.99.0.1", "10.99.0.2", "esp", 0x49500004, reqid=9)
    body = xn.encode_policy(policy)
    selector = body[:56]
    assert selector[:4] == socket.inet_aton("10.98.2.0") and selector[16:20] == socket.inet_aton(
        "10.98.1.0")
    assert struct.unpack_from("=HBB", selector, 40) == (socket.AF_INET, 24, 24)
    assert body[160] == xn.XFRM_POLICY_OUT and body[161] == xn.XFRM_POLICY_ALLOW
    attrs = _attrs(body[168:])
    template = attrs[xn.XFRMA_TMPL]
    assert template[:4] == socket.inet_aton("10.99.0.2") and template[20] == 50
    assert template[28:32] == socket.inet_aton("10.99.0.1")
    assert struct.unpack_from("=IB", template, 44) == (9, xn.XFRM_MODE_TUNNEL)
    assert struct.unpack("=I", attrs[xn.XFRMA_IF_ID]) == (0x49500004,)
    info = xn.decode_policy(body)
    assert (info.selector_bytes, info.direction, info.if_id) == (selector, 1, 0x49500004)
