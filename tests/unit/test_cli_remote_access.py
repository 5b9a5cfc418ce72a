"""Remote-access configuration at the CLI (issue 16): tunnel profiles, pools,
users, RADIUS servers, `aaa authentication xauth` and the show commands."""

from __future__ import annotations

import time

import pytest

from ipsecgw.cli.gateway import FakeGateway, SubscriberInfo
from ipsecgw.cli.loader import load_config_text
from ipsecgw.cli.redact import redact
from ipsecgw.cli.session import Session
from ipsecgw.config.remote_access import ProfileIdentity, RadiusServerConfig
from ipsecgw.config.render import render

CONFIG = """\
conf t
ip local pool rapool 10.200.0.10 10.200.0.99
username alice password "won der land"
username bob password builder
radius authentication server 10.99.0.5
key radsecret-1
udp-port 1645
timeout 2
exit
radius authentication server 10.99.0.6
key radsecret-2
retransmit 1
radius accounting server 10.99.0.5
key radsecret-1
aaa authentication xauth radius local
aaa user accounting interval 30
ipsec tunnel-profile remote
local-endpoint 10.99.0.1 transport-virtual-router vr9
ike peer-identity key-id "vpn group*"
ike local-identity domain-name gw.example.com
pre-share "group key"
aggressive-mode required
transform esp-aes256-hmac-sha esp-3des-hmac-md5
pfs group 2
lifetime seconds 3600
lifetime kilobytes 50000
local-network 10.98.1.0/24
local-network 10.98.3.0/24
ip pool rapool
dns primary 10.98.1.53
dns secondary 10.98.1.54
wins primary 10.98.1.55
domain-suffix example.net
xauth none
mode-config push
max-interfaces 100
tunnel mtu 1300
"""

SECRETS = ("won der land", "builder", "radsecret-1", "radsecret-2", "group key")


def configured() -> Session:
    session = Session(FakeGateway())
    for line in CONFIG.splitlines():
        result = session.execute(line)
        assert result.ok, (line, result.error)
    return session


def test_every_setting_lands_in_the_model() -> None:
    ra = configured().gateway.config.remote_access
    profile = ra.profile("remote")
    assert profile is not None
    assert (profile.local_address, profile.transport_vr) == ("10.99.0.1", "vr9")
    assert profile.peer_identity == ProfileIdentity("key-id", "vpn group*")
    assert profile.psk == "group key" and profile.aggressive_mode == "required"
    assert profile.transforms == ("esp-aes256-hmac-sha", "esp-3des-hmac-md5")
    assert (profile.pfs_group, profile.lifetime_seconds, profile.lifetime_kilobytes) == (
        2, 3600, 50000)
    assert profile.local_networks == ("10.98.1.0/24", "10.98.3.0/24")
    assert profile.dns == ("10.98.1.53", "10.98.1.54") and profile.wins == ("10.98.1.55",)
    assert (profile.pool, profile.domain_suffix, profile.xauth, profile.max_interfaces,
            profile.mtu) == ("rapool", "example.net", False, 100, 1300)
    assert profile.mode_config == "push"
    assert ra.xauth_methods == ("radius", "local")
    assert ra.accounting_interval == 30
    assert [(s.role, s.address, s.port) for s in ra.radius_servers] == [
        ("authentication", "10.99.0.5", 1645), ("authentication", "10.99.0.6", 1812),
        ("accounting", "10.99.0.5", 1813)]
    assert ra.radius_servers[1] == RadiusServerConfig(
        "authentication", "10.99.0.6", "radsecret-2", retransmit=1)
    assert ra.user("alice") is not None and ra.user("alice").password == "won der land"


def test_show_configuration_round_trips_and_masks_every_secret() -> None:
    session = configured()
    config = session.gateway.config
    text = session.execute("show configuration").output
    assert text == render(config).rstrip("\n")
    assert not any(secret in text for secret in SECRETS)
    assert "username alice masked-password " in text and " masked-key " in text
    loaded, errors = load_config_text(text)
    assert errors == []
    assert loaded == config


def test_no_forms_restore_the_defaults_and_refuse_other_values() -> None:
    session = configured()
    before = session.gateway.config
    for line, error in [
        ("no username alice password wrong", "% Not the configured password"),
        ("no ip local pool rapool", "% Pool rapool is in use by tunnel profile remote"),
        ("no aaa authentication xauth local", "% The configured methods are radius local"),
        ("no radius accounting server 10.99.0.7",
         "% No RADIUS accounting server 10.99.0.7 in virtual router default"),
        ("no ipsec tunnel-profile other", "% Unknown tunnel profile other"),
    ]:
        result = session.execute(line)
        assert not result.ok and result.error.splitlines()[-1] == error, line
        assert session.gateway.config == before
    for line in ["ipsec tunnel-profile remote", "no pre-share", "no local-network 10.98.3.0/24",
                 "no ip pool rapool", "no xauth none", "no dns primary", "exit",
                 "no ip local pool rapool 10.200.0.10 10.200.0.99",
                 "no username alice password \"won der land\"",
                 "no aaa authentication xauth", "radius authentication server 10.99.0.5",
                 "no masked-key", "no udp-port 1645", "exit"]:
        result = session.execute(line)
        assert result.ok, (line, result.error)
    ra = session.gateway.config.remote_access
    profile = ra.profile("remote")
    assert profile is not None and profile.psk is None and profile.pool is None
    assert profile.local_networks == ("10.98.1.0/24",) and profile.xauth
    assert profile.dns == ("10.98.1.54",)
    assert ra.pools == () and ra.user("alice") is None and ra.xauth_methods == ("local",)
    assert ra.radius_servers[0] == RadiusServerConfig("authentication", "10.99.0.5", timeout=2)


@pytest.mark.parametrize(("line", "error"), [
    ("ip local pool p 10.0.0.9 10.0.0.1", "% The first address 10.0.0.9 is above the last 10.0.0.1"),
    ("ip local pool p 10.0.0.0 10.1.0.0", "% A pool holds at most 65536 addresses"),
    ("aaa authentication xauth local local", "% Method local listed twice"),
    ("ipsec tunnel-profile remote", None),
])
def test_bad_input_changes_nothing(line: str, error: str | None) -> None:
    session = configured()
    before = session.gateway.config
    result = session.execute(line)
    if error is None:  # entering a mode: then bad input inside it
        assert result.ok
        for bad, message in [
            ("ip pool nopool", "% Unknown pool nopool (define it with ip local pool)"),
            ("ike local-identity key-id grp*", "% The local identity cannot hold a '*' wildcard"),
            ("ike peer-identity ip address 10.0.0.300", '% Invalid IPv4 address "10.0.0.300"'),
            ("transform esp-3des-hmac-md5 esp-3des-hmac-md5",
             "% Transform esp-3des-hmac-md5 listed more than once"),
            ("no local-network 10.9.0.0/16", "% No local-network 10.9.0.0/16 in this profile"),
            ("no pre-share wrong", "% Not the configured key"),
            ("tunnel mtu 100", "% Value out of range: <576-9216>"),
        ]:
            result = session.execute(bad)
            assert not result.ok and result.error.splitlines()[-1] == message, bad
            assert "wrong" not in result.error
    else:
        assert not result.ok and result.error.splitlines()[-1] == error
    assert session.gateway.config == before


def test_abbreviations_and_help() -> None:
    session = Session(FakeGateway())
    for line in ["conf t", "ip lo po p 10.0.0.1 10.0.0.5", "ipsec tunnel-p remote",
                 "loc 10.99.0.1", "ike peer key-id grp", "ip po p", "xa n", "max 5"]:
        result = session.execute(line)
        assert result.ok, (line, result.error)
    profile = session.gateway.config.remote_access.profile("remote")
    assert profile is not None and profile.pool == "p" and not profile.xauth
    assert profile.max_interfaces == 5 and profile.local_address == "10.99.0.1"
    assert session.prompt == "host1(config-tunnel-profile)#"
    help_words = [word for word, _ in session.help("").items]
    for word in ("local-endpoint", "ike", "pre-share", "transform", "ip", "dns", "wins",
                 "xauth", "max-interfaces", "tunnel", "domain-suffix", "lifetime"):
        assert word in help_words
    # `ip` is a command now, yet `ip cl sa a` still reads as `ipsec clear sa all`
    # and `sh ip tu` as `show ipsec tunnel`, not `show ipsec tunnel-profile`.
    assert session.execute("ip cl sa a").ok
    assert session.execute("sh ip tu").output == "No IPsec tunnels"
    assert session.execute("sh ip tun summ").output.startswith("IPsec tunnels: 0")
    assert [w for w, _ in session.complete("sh ip tu")] == ["tunnel", "tunnel-profile"]
    assert session.execute("sh ip tunnel-p").output.startswith("Tunnel profile remote")
    assert dict(session.help("show ipsec tunnel-profile ").items) == {
        "remote": "Tunnel profile name", "NAME": "Tunnel profile name", "|": "Output filters",
        "<cr>": ""}


def test_secrets_are_hidden_in_every_message() -> None:
    assert redact("username alice password \"won der land\" x") == "username alice password <hidden>"
    assert redact("pre-share \"group key") == "pre-share <hidden>"
    session = configured()
    result = session.execute('username alice password "won der land" extra')
    assert not result.ok and "won der" not in result.error


def test_show_subscribers_pools_and_profiles() -> None:
    session = configured()
    gateway = session.gateway
    assert isinstance(gateway, FakeGateway)
    assert session.execute("show subscribers").output == "No subscribers"
    gateway.subscriber_list = [SubscriberInfo(
        7, "remote", "vr9", "alice", "192.0.2.9:4500", "10.200.0.10", "ipsec:remote:7",
        time.time() - 65, 1234, 5678)]
    gateway.pools_in_use = {"rapool": 1}
    lines = session.execute("show subscribers").output.splitlines()
    assert lines[0].split() == ["User", "Profile", "Peer", "Address", "Interface", "Uptime",
                                "Bytes", "in", "Bytes", "out"]
    assert lines[2].split() == ["alice", "remote", "192.0.2.9:4500", "10.200.0.10",
                                "ipsec:remote:7", "0:01:05", "1234", "5678"]
    pools = session.execute("show ip local pool").output.splitlines()
    assert pools[2].split() == ["rapool", "10.200.0.10", "10.200.0.99", "90", "1", "89"]
    profile = session.execute("show ipsec tunnel-profile remote").output
    assert "Local endpoint: 10.99.0.1 (transport VR vr9)" in profile
    assert "Peer identity: key-id \"vpn group*\"" in profile
    assert "Subscribers: 1 of at most 100" in profile
    assert "Mode Config: push (sent after XAUTH)" in profile
    assert "group key" not in profile
    # The two-word spelling of earlier versions says the same.
    assert session.execute("show ipsec tunnel profile remote").output == profile
    assert session.execute("show ipsec tunnel-profile").output == profile  # the only one
    result = session.execute("show ipsec tunnel-profile nosuch")
    assert not result.ok and "Unknown tunnel profile nosuch" in result.error


def test_radius_servers_belong_to_the_vr_they_are_configured_in() -> None:
    """Asked VR by VR (default first), each in the order configured there;
    `show configuration` lists another VR's in that VR's section, and the
    order survives a reload; `no virtual-router` takes them along."""
    session = Session(FakeGateway())
    for line in ["conf t", "radius authentication server 10.0.0.5", "key a", "exit",
                 "virtual-router vr2", "radius authentication server 10.0.0.5", "key b",
                 "timeout 2", "radius accounting server 10.0.0.6", "key c",
                 "virtual-router default", "radius authentication server 10.0.0.7", "key d"]:
        result = session.execute(line)
        assert result.ok, (line, result.error)
    ra = session.gateway.config.remote_access
    assert [(s.vr, s.role, s.address) for s in ra.servers("authentication")] == [
        ("default", "authentication", "10.0.0.5"), ("default", "authentication", "10.0.0.7"),
        ("vr2", "authentication", "10.0.0.5")]
    text = session.execute("do show configuration").output
    assert "virtual-router vr2\nradius authentication server 10.0.0.5\n" in text
    loaded, errors = load_config_text(text)
    assert errors == [] and loaded == session.gateway.config
    result = session.execute("no radius accounting server 10.0.0.6")
    assert not result.ok and "in virtual router default" in result.error
    assert session.execute("no virtual-router vr2").ok
    assert [s.vr for s in session.gateway.config.remote_access.radius_servers] == \
        ["default", "default"]
