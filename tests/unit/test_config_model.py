"""The configuration model, masked keys, word quoting and atomic saving."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipsecgw.config.masking import mask_secret, unmask_secret
from ipsecgw.config.model import (
    DEFAULT_TRANSFORMS,
    DEFAULT_VR,
    Lifetime,
    LocalEndpoint,
    PreSharedKey,
    RunningConfig,
    TransformSet,
    TunnelInterface,
    VirtualRouter,
)
from ipsecgw.config.store import save_atomic
from ipsecgw.config.tokens import TokenizeError, quote, tokenize

printable = st.text(st.characters(exclude_categories=("C", "Z"), include_characters=" "))


def test_defaults_follow_the_spec() -> None:
    config = RunningConfig()
    assert config.hostname == "host1"
    assert config.lifetime == Lifetime(28800, 102400)
    options = config.options(DEFAULT_VR)
    assert not options.tx_invalid_cookie
    assert options.nat_t
    dpd = options.dpd
    assert (dpd.enabled, dpd.idle, dpd.silence, dpd.retry, dpd.retries) == (True, 150, 60, 10, 3)
    assert [vr.name for vr in config.virtual_routers] == [DEFAULT_VR]


def test_collections_are_kept_sorted_so_order_of_commands_does_not_matter() -> None:
    a = RunningConfig().with_transform_set(TransformSet("b", ("ah-hmac-md5",)))
    a = a.with_transform_set(TransformSet("a", ("ah-hmac-sha",)))
    b = RunningConfig().with_transform_set(TransformSet("a", ("ah-hmac-sha",)))
    b = b.with_transform_set(TransformSet("b", ("ah-hmac-md5",)))
    assert a == b
    assert [ts.name for ts in a.transform_sets] == ["a", "b"]
    vrs = (
        RunningConfig()
        .with_virtual_router(VirtualRouter("zz"))
        .with_virtual_router(VirtualRouter("aa"))
    )
    assert [vr.name for vr in vrs.virtual_routers] == [DEFAULT_VR, "aa", "zz"]


def test_tunnel_helpers() -> None:
    config = RunningConfig().with_transform_set(TransformSet("ts", ("esp-3des-hmac-md5",)))
    config = config.with_tunnel(TunnelInterface("t1", vr="blue", transform_set="ts"))
    config = config.with_tunnel(TunnelInterface("t2", lifetime=Lifetime(60, 10)))
    assert config.has_virtual_router("blue"), "a tunnel declares its operational VR"
    assert config.tunnels_using_transform_set("ts") == ("ipsec:t1",)
    t1, t2 = config.tunnel("t1"), config.tunnel("t2")
    assert t1 is not None and t2 is not None
    assert config.tunnel_transforms(t1) == ("esp-3des-hmac-md5",)
    assert config.tunnel_transforms(t2) == DEFAULT_TRANSFORMS
    assert config.tunnel_lifetime(t1) == config.lifetime
    assert config.tunnel_lifetime(t2) == Lifetime(60, 10)
    assert config.without_virtual_router("blue").tunnel("t1") is None


def test_transport_vrs_and_local_endpoints() -> None:
    red = VirtualRouter("red", local_endpoints=(LocalEndpoint("10.0.0.1", "default"),))
    config = RunningConfig().with_virtual_router(red)
    config = config.with_tunnel(TunnelInterface("t", transport_vr="green"))
    assert config.transport_vrs() == ("default", "green")
    assert config.local_endpoints_in("default") == ("10.0.0.1",)
    assert config.local_endpoints_in("green") == ()


def test_secrets_are_not_in_repr() -> None:
    key = PreSharedKey("10.0.0.2", "hunter2")
    assert "hunter2" not in repr(key)
    assert "hunter2" not in repr(RunningConfig().with_pre_shared_key(key))


@given(printable)
def test_masked_key_round_trip(secret: str) -> None:
    masked = mask_secret(secret)
    assert unmask_secret(masked) == secret
    assert " " not in masked and masked.isascii()
    if len(secret) >= 4:
        assert secret not in masked


@pytest.mark.parametrize("bad", ["", "not base64!", "AAAA", mask_secret("abc")[:-4] + "AAAA"])
def test_masked_key_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        unmask_secret(bad)


@given(printable)
def test_quote_round_trips_through_tokenize(value: str) -> None:
    line = f"cmd {quote(value)} tail"
    assert [t.text for t in tokenize(line)] == ["cmd", value, "tail"]


def test_tokenize_positions_and_errors() -> None:
    tokens = tokenize('  tunnel  local-identity asn1-dn "C=US, O=Ex"')
    assert [(t.text, t.start) for t in tokens] == [
        ("tunnel", 2),
        ("local-identity", 10),
        ("asn1-dn", 25),
        ("C=US, O=Ex", 33),
    ]
    with pytest.raises(TokenizeError) as exc:
        tokenize('key "open')
    assert exc.value.column == 4
    with pytest.raises(TokenizeError):
        tokenize('key "a"b')


def test_save_atomic_writes_private_file(tmp_path: Path) -> None:
    path = tmp_path / "startup.conf"
    save_atomic(path, "hostname a\n")
    save_atomic(path, "hostname b\n")
    assert path.read_text() == "hostname b\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["startup.conf"]


def test_save_atomic_through_a_symlink_replaces_its_target(tmp_path: Path) -> None:
    """issue 13, item 10: the link stays a link; its target gets the new text."""
    (tmp_path / "repo").mkdir()
    target = tmp_path / "repo" / "gw.conf"
    target.write_text("hostname old\n")
    (tmp_path / "etc").mkdir()
    link = tmp_path / "etc" / "startup.conf"
    link.symlink_to("../repo/gw.conf")
    chained = tmp_path / "etc" / "ipsecgw.conf"
    chained.symlink_to("startup.conf")
    save_atomic(chained, "hostname new\n")
    assert chained.is_symlink() and link.is_symlink()
    assert target.read_text() == "hostname new\n"
    assert sorted(os.listdir(tmp_path / "repo")) == ["gw.conf"]
    assert sorted(os.listdir(tmp_path / "etc")) == ["ipsecgw.conf", "startup.conf"]


def test_save_atomic_crash_leaves_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "startup.conf"
    path.write_text("hostname old\n")

    def crash(src: str, dst: str) -> None:
        raise OSError(5, "simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_atomic(path, "hostname new\n" * 1000)
    assert path.read_text() == "hostname old\n"
    assert os.listdir(tmp_path) == ["startup.conf"], "no temporary file left behind"


def test_save_atomic_crash_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "startup.conf"
    path.write_text("hostname old\n")

    def crash(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        save_atomic(path, "hostname new\n")
    assert path.read_text() == "hostname old\n"
    assert os.listdir(tmp_path) == ["startup.conf"]
