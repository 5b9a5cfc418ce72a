"""Manual SAs (`tunnel manual ...`, issue 15 item 2): CLI, configuration, translation."""

from __future__ import annotations

import pytest

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.loader import load_config_text
from ipsecgw.cli.session import Session
from ipsecgw.config.manual import ManualKeys, key_lengths
from ipsecgw.config.model import TRANSFORMS
from ipsecgw.config.render import render
from ipsecgw.daemon.translate import engine_policies, manual_sas
from ipsecgw.isakmp.proposals import phase2_suite

EKEY = "00112233445566778899aabbccddeeff"
AKEY = "0123456789abcdef0123456789abcdef01234567"
INBOUND = f"tunnel manual inbound spi 4096 encryption-key {EKEY} authentication-key {AKEY}"
OUTBOUND = f"tunnel manual outbound spi 8192 encryption-key {EKEY} authentication-key 0x{AKEY}"


def session(*lines: str) -> Session:
    s = Session(FakeGateway())
    for line in ("configure terminal", "ipsec transform-set one esp-aes128-hmac-sha",
                 "interface tunnel ipsec:m", "tunnel source 10.0.0.1",
                 "tunnel destination 10.0.0.2", "tunnel transform-set one", *lines):
        result = s.execute(line)
        assert result.ok, (line, result.error)
    return s


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_key_lengths_agree_with_the_engine(transform: str) -> None:
    suite = phase2_suite(transform)
    assert key_lengths(transform) == (suite.encryption_key_length, suite.integrity_key_length)


def test_manual_sa_is_configured_masked_and_loads_back() -> None:
    s = session(INBOUND, OUTBOUND)
    tunnel = s.gateway.config.tunnel("m")
    assert tunnel is not None and tunnel.manual
    assert tunnel.manual_outbound == ManualKeys(8192, EKEY, AKEY)
    text = render(s.gateway.config)
    assert EKEY not in text and AKEY not in text  # masked like pre-shared keys
    assert " tunnel manual inbound spi 4096 masked-encryption-key " in text
    loaded, errors = load_config_text(text)
    assert not errors and loaded == s.gateway.config
    assert EKEY not in repr(tunnel) and AKEY not in repr(tunnel)


def test_translation_leaves_ike_out_and_builds_the_sa() -> None:
    s = session(INBOUND, OUTBOUND)
    config = s.gateway.config
    assert engine_policies(config, lambda name: name)["default"].tunnels == ()
    sa = manual_sas(config, lambda name: name)["m"]
    assert sa.protocol == "esp" and sa.encapsulation == "tunnel"
    assert sa.inbound.spi == (4096).to_bytes(4, "big")
    assert sa.outbound.spi == (8192).to_bytes(4, "big")
    assert sa.inbound.encryption == "aes128" and sa.inbound.integrity == "hmac-sha1-96"
    assert sa.outbound.encryption_key == bytes.fromhex(EKEY)
    assert sa.outbound.integrity_key == bytes.fromhex(AKEY)
    assert EKEY not in repr(sa)
    # One direction only: not installed, not negotiated either.
    assert s.execute("no tunnel manual outbound").ok
    assert manual_sas(s.gateway.config, lambda name: name) == {}
    assert engine_policies(s.gateway.config, lambda name: name)["default"].tunnels == ()
    assert s.execute("no tunnel manual").ok
    assert len(engine_policies(s.gateway.config, lambda name: name)["default"].tunnels) == 1


@pytest.mark.parametrize(("line", "error"), [
    (f"tunnel manual inbound spi 4096 encryption-key {EKEY[:-2]} authentication-key {AKEY}",
     "esp-aes128-hmac-sha needs a 16-byte encryption key (32 hex digits), not 15 bytes"),
    (f"tunnel manual inbound spi 4096 encryption-key {EKEY}",
     "esp-aes128-hmac-sha needs a 20-byte authentication key (40 hex digits), not 0 bytes"),
    (f"tunnel manual inbound spi 4096 encryption-key {EKEY}x authentication-key {AKEY}",
     "Expected a key in hexadecimal"),
    (f"tunnel manual inbound spi 255 encryption-key {EKEY} authentication-key {AKEY}",
     "Value out of range"),
])
def test_bad_manual_sa_is_refused_and_the_key_not_echoed(line: str, error: str) -> None:
    s = session()
    before = s.gateway.config
    result = s.execute(line)
    assert not result.ok and error in (result.error or ""), result.error
    assert s.gateway.config == before
    assert EKEY[:-2] not in (result.error or "") and AKEY not in (result.error or "")


def test_a_transform_set_of_several_is_refused() -> None:
    s = session("ipsec transform-set two esp-aes128-hmac-sha esp-3des-hmac-md5",
                "interface tunnel ipsec:m", "tunnel transform-set two")
    result = s.execute(INBOUND)
    assert not result.ok and "exactly one transform" in (result.error or "")


def test_ah_takes_no_encryption_key() -> None:
    s = session("ipsec transform-set ah ah-hmac-sha", "interface tunnel ipsec:m",
                "tunnel transform-set ah")
    result = s.execute(INBOUND)
    assert not result.ok and "ah-hmac-sha takes no encryption key" in (result.error or "")
    assert s.execute(f"tunnel manual inbound spi 4096 authentication-key {AKEY}").ok


def test_no_forms_check_what_is_given() -> None:
    s = session(INBOUND, OUTBOUND)
    refused = s.execute("no tunnel manual inbound spi 4097")
    assert not refused.ok and "inbound SPI is not 4097" in (refused.error or "")
    refused = s.execute(f"no tunnel manual inbound spi 4096 encryption-key {AKEY[:32]}")
    assert not refused.ok and refused.error == "% Not the configured key"
    assert s.execute("no tunnel manual inbound spi 4096").ok
    tunnel = s.gateway.config.tunnel("m")
    assert tunnel is not None and tunnel.manual_inbound is None and tunnel.manual


def test_inbound_spi_unique_per_transport_vr() -> None:
    s = session(INBOUND, "interface tunnel ipsec:n", "tunnel transform-set one")
    result = s.execute(INBOUND)
    assert not result.ok and "Inbound SPI 4096 is used by another tunnel" in (result.error or "")
