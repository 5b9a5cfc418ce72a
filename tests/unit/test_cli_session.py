"""Sessions: modes and prompts, abbreviations, `no` forms, VR context, atomicity."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session
from ipsecgw.cli.tree import Mode
from ipsecgw.config.model import DEFAULT_VR, Dpd, Lifetime, RunningConfig
from ipsecgw.config.render import render


def session(*lines: str, gateway: FakeGateway | None = None) -> Session:
    s = Session(gateway or FakeGateway())
    for line in lines:
        ok(s, line)
    return s


def ok(s: Session, line: str) -> str:
    result = s.execute(line)
    assert result.ok, (line, result)
    return result.output


def test_prompts_follow_modes() -> None:
    s = session()
    assert s.prompt == "host1#"
    steps = [
        ("disable", "host1>"),
        ("enable", "host1#"),
        ("configure terminal", "host1(config)#"),
        ("interface tunnel ipsec:a", "host1(config-if)#"),
        ("exit", "host1(config)#"),
        ("ipsec ike-policy-rule 1", "host1(config-ike-policy)#"),
        ("end", "host1#"),
        ("conf t", "host1(config)#"),
        ("ipsec key manual pre-share 10.0.0.2", "host1(config-manual-key)#"),
        ("exit", "host1(config)#"),
        ("virtual-router vr2", "host1:vr2(config)#"),
        ("hostname edge", "edge:vr2(config)#"),
        ("exit", "edge:vr2#"),
        ("virtual-router default", "edge#"),
    ]
    for line, prompt in steps:
        ok(s, line)
        assert s.prompt == prompt, line


def test_exit_from_exec_closes_the_session() -> None:
    s = session()
    result = s.execute("exit")
    assert result.ok and result.closed and s.closed
    assert not s.execute("show ipsec option").ok


@pytest.mark.parametrize(
    "line",
    ["sh ipsec tun", "sho ips tu", "SHOW IPSEC TUNNEL", "do sh ip tunnel", "do show ipsec option"],
)
def test_show_commands_and_abbreviations_from_interface_mode(line: str) -> None:
    s = session("conf t", "interface tunnel ipsec:a")
    ok(s, line)
    assert s.mode == Mode.CONFIG_IF


def test_sh_alone_in_interface_mode_is_ambiguous_not_shutdown() -> None:
    s = session("conf t", "interface tunnel ipsec:a")
    result = s.execute("sh")
    assert not result.ok and "Ambiguous" in result.error
    tunnel = s.gateway.config.tunnel("a")
    assert tunnel is not None and not tunnel.shutdown
    ok(s, "shut")
    tunnel = s.gateway.config.tunnel("a")
    assert tunnel is not None and tunnel.shutdown


def test_global_command_in_sub_mode_leaves_the_sub_mode() -> None:
    s = session("conf t", "interface tunnel ipsec:a")
    ok(s, "ipsec transform-set ts esp-aes128-hmac-sha")
    assert s.mode == Mode.CONFIG
    ok(s, "interface tunnel ipsec:a")
    ok(s, "interface tunnel ipsec:b")
    assert (s.mode, s.target) == (Mode.CONFIG_IF, "b")


def test_user_exec_cannot_configure_or_see_the_configuration() -> None:
    s = session("disable")
    assert not s.execute("configure terminal").ok
    assert not s.execute("show configuration").ok
    ok(s, "show ipsec lifetime")


# -- configuration commands and their no forms ---------------------------------

SETTINGS = [
    ([], "hostname gw1", "no hostname"),
    ([], "ipsec lifetime seconds 3600 kilobytes 5000", "no ipsec lifetime"),
    ([], "ipsec option tx-invalid-cookie", "no ipsec option tx-invalid-cookie"),
    (
        [],
        "ipsec local-endpoint 10.0.0.1 transport-virtual-router default",
        "no ipsec local-endpoint 10.0.0.1",
    ),
    ([], "ipsec transform-set ts esp-3des-hmac-md5", "no ipsec transform-set ts"),
    ([], "ipsec ike-policy-rule 4", "no ipsec ike-policy-rule 4"),
    (
        [],
        "ipsec key manual pre-share gw.example.com",
        "no ipsec key manual pre-share gw.example.com",
    ),
    ([], "interface tunnel ipsec:x", "no interface tunnel ipsec:x"),
    (["virtual-router v"], "ipsec option tx-invalid-cookie", "no ipsec option tx-invalid-cookie"),
    (["ipsec ike-policy-rule 1"], "authentication rsa-sig", "no authentication"),
    (["ipsec ike-policy-rule 1"], "encryption des", "no encryption"),
    (["ipsec ike-policy-rule 1"], "hash md5", "no hash"),
    (["ipsec ike-policy-rule 1"], "group 2", "no group"),
    (["ipsec ike-policy-rule 1"], "lifetime seconds 600", "no lifetime"),
    (["ipsec ike-policy-rule 1"], "aggressive-mode required", "no aggressive-mode"),
    (["ipsec key manual pre-share 10.0.0.2"], "key abc", "no key"),
    (["ipsec key manual pre-share 10.0.0.2"], "key abc", "no masked-key"),
    (["interface tunnel ipsec:a"], "tunnel source 10.0.0.1", "no tunnel source"),
    (["interface tunnel ipsec:a"], "tunnel destination gw.example.com", "no tunnel destination"),
    (
        ["ipsec transform-set ts ah-hmac-sha", "interface tunnel ipsec:a"],
        "tunnel transform-set ts",
        "no tunnel transform-set",
    ),
    (["interface tunnel ipsec:a"], "tunnel pfs group 5", "no tunnel pfs"),
    (["interface tunnel ipsec:a"], "tunnel pfs group 5", "no tunnel pfs group"),
    (["interface tunnel ipsec:a"], "tunnel lifetime kilobytes 100", "no tunnel lifetime"),
    (
        ["interface tunnel ipsec:a"],
        "tunnel local-identity user-fqdn me@example.com",
        "no tunnel local-identity",
    ),
    (
        ["interface tunnel ipsec:a"],
        'tunnel peer-identity asn1-dn "CN=peer, O=Ex"',
        "no tunnel peer-identity",
    ),
    (["interface tunnel ipsec:a"], "tunnel local-network 10.1.0.0/16", "no tunnel local-network"),
    (["interface tunnel ipsec:a"], "tunnel remote-network 10.2.0.0/16", "no tunnel remote-network"),
    (["interface tunnel ipsec:a"], "tunnel mtu 1300", "no tunnel mtu"),
    (["interface tunnel ipsec:a"], "ip address 192.168.9.1 255.255.255.252", "no ip address"),
    (["interface tunnel ipsec:a"], "shutdown", "no shutdown"),
]


@pytest.mark.parametrize(("setup", "setting", "undo"), SETTINGS)
def test_no_form_restores_the_default(setup: list[str], setting: str, undo: str) -> None:
    s = session("configure terminal", *setup)
    before = s.gateway.config
    ok(s, setting)
    assert s.gateway.config != before, setting
    ok(s, undo)
    assert s.gateway.config == before, undo


def test_lifetime_parts_not_given_are_kept() -> None:
    s = session(
        "conf t", "ipsec lifetime seconds 3600 kilobytes 5000", "ipsec lifetime kilobytes 10"
    )
    assert s.gateway.config.lifetime == Lifetime(3600, 10)
    ok(s, "ipsec lifetime seconds 100")
    assert s.gateway.config.lifetime == Lifetime(100, 10)
    ok(s, "interface tunnel ipsec:a")
    ok(s, "tunnel lifetime seconds 60")
    tunnel = s.gateway.config.tunnel("a")
    assert tunnel is not None and tunnel.lifetime == Lifetime(60, 10)


def test_dpd_option() -> None:
    s = session("conf t", "ipsec option dpd idle 5 retries 2")
    assert s.gateway.config.options(DEFAULT_VR).dpd == Dpd(True, 5, 60, 10, 2)
    ok(s, "no ipsec option dpd")
    assert s.gateway.config.options(DEFAULT_VR).dpd == Dpd(False, 5, 60, 10, 2)
    ok(s, "ipsec option dpd")
    assert s.gateway.config.options(DEFAULT_VR).dpd == Dpd()
    result = s.execute("ipsec option dpd idle 5 idle 6")
    assert not result.ok and "more than once" in result.error
    assert result.caret == len("ipsec option dpd idle 5 idle "), "points at the repeated value"


def test_ip_address_forms() -> None:
    s = session("conf t", "interface tunnel ipsec:a", "ip address 10.9.0.1/30")
    assert s.gateway.config.tunnels[0].ip_address == "10.9.0.1/30"
    ok(s, "ip address 10.9.0.5 255.255.255.0")
    assert s.gateway.config.tunnels[0].ip_address == "10.9.0.5/24"
    assert not s.execute("ip address 10.9.0.5 255.0.255.0").ok


def test_secret_is_only_shown_masked_and_masked_key_loads_back() -> None:
    s = session(
        "conf t", "ipsec key manual pre-share 10.0.0.2", 'key "correct horse battery"', "end"
    )
    text = ok(s, "show configuration")
    assert "correct horse" not in text and "masked-key " in text
    masked = text.split("masked-key ")[1].split()[0]
    t = session("conf t", "ipsec key manual pre-share 10.0.0.2", f"masked-key {masked}")
    assert t.gateway.config.pre_shared_keys[0].secret == "correct horse battery"
    bad = t.execute("masked-key " + masked[:-3] + "AAA")
    assert not bad.ok and "masked key" in bad.error


# -- refusals change nothing ------------------------------------------------------


def test_a_refused_command_changes_nothing() -> None:
    gateway = FakeGateway()
    s = session(
        "conf t",
        "ipsec transform-set ts esp-3des-hmac-md5",
        "interface tunnel ipsec:a",
        "tunnel transform-set ts",
        "exit",
        gateway=gateway,
    )
    before, applied = gateway.config, gateway.applied
    for line in [
        "no ipsec transform-set ts",
        "ipsec transform-set t2 esp-3des-hmac-md5 esp-3des-hmac-md5",
        "ipsec transform-set t3 ah-hmac-md5 ah-hmac-md5 ah-hmac-sha esp-null-hmac-md5 esp-des-hmac-md5 "
        "esp-des-hmac-sha esp-3des-hmac-sha",
        "no ipsec ike-policy-rule 3",
        "no interface tunnel ipsec:zz",
        "no virtual-router default",
        "no virtual-router nosuch",
        "ipsec ike-policy-rule 0",
    ]:
        result = s.execute(line)
        assert not result.ok, line
        assert gateway.config == before and gateway.applied == applied, line
        assert s.mode == Mode.CONFIG
    result = s.execute("no ipsec transform-set ts")
    assert "in use by ipsec:a" in result.error


def test_gateway_refusal_changes_neither_config_nor_mode() -> None:
    gateway = FakeGateway()
    s = session("conf t", gateway=gateway)
    gateway.refuse = "namespace vr9 does not exist"
    result = s.execute("interface tunnel ipsec:a transport-virtual-router vr9")
    assert not result.ok and result.error == "% namespace vr9 does not exist"
    assert s.mode == Mode.CONFIG and gateway.config == RunningConfig()
    ok(s, "interface tunnel ipsec:a transport-virtual-router vr9")
    assert s.mode == Mode.CONFIG_IF


def test_edits_of_a_removed_interface_are_refused() -> None:
    gateway = FakeGateway()
    a = session("conf t", "interface tunnel ipsec:a", gateway=gateway)
    session("conf t", "no interface tunnel ipsec:a", gateway=gateway)
    result = a.execute("tunnel mtu 1400")
    assert not result.ok and "no longer exists" in result.error
    assert gateway.config.tunnel("a") is None


# -- virtual routers --------------------------------------------------------------


def test_options_are_per_virtual_router() -> None:
    s = session(
        "conf t", "virtual-router blue", "ipsec option tx-invalid-cookie", "no ipsec option nat-t"
    )
    config = s.gateway.config
    assert config.options("blue").tx_invalid_cookie and not config.options("blue").nat_t
    assert not config.options(DEFAULT_VR).tx_invalid_cookie and config.options(DEFAULT_VR).nat_t
    assert "tx-invalid-cookie  enabled" in ok(s, "show ipsec option")
    ok(s, "virtual-router default")
    assert "tx-invalid-cookie  disabled" in ok(s, "show ipsec option")


def test_exec_mode_virtual_router_switches_context_without_configuring() -> None:
    s = session("conf t", "ipsec local-endpoint 10.0.0.1 transport-virtual-router green", "end")
    before = s.gateway.config
    ok(s, "virtual-router green")
    assert s.prompt == "host1:green#"
    assert s.gateway.config == before
    assert "Virtual router green" in ok(s, "show ipsec option")


def test_exec_mode_virtual_router_refuses_a_vr_that_does_not_exist() -> None:
    """issue 15 item 6: the prompt does not switch to a VR nothing knows."""
    s = session()
    result = s.execute("virtual-router nowhere")
    assert not result.ok and result.error == (
        "% Unknown virtual router nowhere (create it in configuration mode)"
    )
    assert s.prompt == "host1#"
    ok(s, "virtual-router default")


def test_tunnels_live_in_the_vr_they_were_created_in() -> None:
    s = session(
        "conf t",
        "virtual-router blue",
        "interface tunnel ipsec:a",
        "exit",
        "virtual-router default",
    )
    tunnel = s.gateway.config.tunnel("a")
    assert tunnel is not None and (tunnel.vr, tunnel.transport_vr) == ("blue", "blue")
    result = s.execute("interface tunnel ipsec:a")
    assert not result.ok and "exists in virtual router blue" in result.error
    result = s.execute("no virtual-router blue")
    assert result.ok and s.gateway.config.tunnel("a") is None
    s = session("conf t", "virtual-router blue")
    assert not s.execute("no virtual-router blue").ok


def test_local_endpoint_transport_defaults_to_the_context() -> None:
    s = session("conf t", "virtual-router blue", "ipsec local-endpoint 10.0.0.1")
    endpoints = s.gateway.config.virtual_router("blue").local_endpoints
    assert [(e.address, e.transport_vr) for e in endpoints] == [("10.0.0.1", "blue")]
    ok(s, "ipsec local-endpoint 10.0.0.1 transport-virtual-router default")
    endpoints = s.gateway.config.virtual_router("blue").local_endpoints
    assert [(e.address, e.transport_vr) for e in endpoints] == [("10.0.0.1", "default")]


# -- write memory --------------------------------------------------------------------


def test_write_memory_saves_what_show_configuration_prints(tmp_path: Path) -> None:
    path = tmp_path / "ipsecgw.conf"
    gateway = FakeGateway(startup_path=path)
    s = session("conf t", "hostname edge", "ipsec option tx-invalid-cookie", gateway=gateway)
    assert ok(s, "do write memory") == f"Configuration saved to {path}"
    assert path.read_text() == render(gateway.config)
    assert ok(s, "end") == ""
    assert path.read_text().rstrip("\n") == ok(s, "show configuration")
    ok(s, "wr")


def test_write_memory_errors_are_reported() -> None:
    result = session().execute("write memory")
    assert not result.ok and "no startup configuration file" in result.error
    gateway = FakeGateway(startup_path="/nonexistent-dir/x/ipsecgw.conf")
    result = session(gateway=gateway).execute("write memory")
    assert not result.ok and result.error.startswith("% Cannot save the configuration")


def test_show_option_lists_every_vr_from_the_default_context() -> None:
    """issue 15 item 3: `show ipsec option` lists every option per VR."""
    s = session("conf t", "virtual-router blue", "no ipsec option nat-t", "virtual-router default",
                "interface tunnel ipsec:t transport-virtual-router red", "exit")
    out = ok(s, "show ipsec option")
    blocks = out.split("Virtual router ")[1:]
    assert [b.split()[0] for b in blocks] == [DEFAULT_VR, "blue", "red"]
    assert "nat-t              disabled" in blocks[1] and "nat-t              enabled" in blocks[2]
    ok(s, "virtual-router blue")
    assert ok(s, "show ipsec option").count("Virtual router") == 1
