"""Loading a startup file: bad lines reported by number, the rest applied."""

from __future__ import annotations

from pathlib import Path

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.loader import load_config_text
from ipsecgw.cli.session import Session
from ipsecgw.config.model import Identity, RunningConfig
from ipsecgw.config.render import render

SITE = """\
hostname siteA
ipsec local-endpoint 10.0.0.1 transport-virtual-router default
ipsec ike-policy-rule 1
 authentication pre-share
 encryption aes128
 hash sha
 group 14
 aggressive-mode requested
 exit
ipsec key manual pre-share 10.0.0.2
 key s3cr3t-test-psk
 exit
ipsec transform-set ts esp-aes128-hmac-sha
ipsec option dpd idle 2 silence 2 retry 1 retries 2
interface tunnel ipsec:siteB transport-virtual-router default
 tunnel source 10.0.0.1
 tunnel destination 10.0.0.2
 tunnel transform-set ts
 tunnel local-network 10.1.0.0/24
 tunnel remote-network 10.2.0.0/24
 tunnel pfs group 14
 tunnel local-identity domain-name a.example.com
 exit
"""


def test_a_site_configuration_loads() -> None:
    config, errors = load_config_text(SITE)
    assert errors == []
    assert config.hostname == "siteA"
    tunnel = config.tunnel("siteB")
    assert tunnel is not None
    assert (tunnel.source, tunnel.destination, tunnel.pfs_group) == ("10.0.0.1", "10.0.0.2", 14)
    assert tunnel.local_identity == Identity("domain-name", "a.example.com")
    assert config.pre_shared_key("10.0.0.2") is not None
    assert config.options("default").dpd.idle == 2
    rule = config.ike_policy_rule(1)
    assert rule is not None and (rule.encryption, rule.aggressive_mode) == ("aes128", "requested")
    assert load_config_text(render(config))[0] == config


def test_bad_lines_are_reported_with_their_number_and_the_rest_applies() -> None:
    text = "\n".join(
        [
            "! a comment",
            "hostname gw",
            "ipsec ike-policy-rule 11",
            "",
            "ipsec transform-set ts esp-aes128-hmac-sha",
            "show ipsec tunnel",
            "ipsec clear sa all",
            "interface tunnel ipsec:a",
            " tunnel mtu 99",
            " tunnel mtu 1400",
            " exit",
        ]
    )
    config, errors = load_config_text(text)
    assert [n for n, _ in errors] == [3, 6, 7, 9]
    assert (
        errors[0][1]
        == 'Invalid input: Value out of range: <1-10> at "11" in: ipsec ike-policy-rule 11'
    )
    assert config.hostname == "gw"
    assert config.transform_set("ts") is not None
    tunnel = config.tunnel("a")
    assert tunnel is not None and tunnel.mtu == 1400


def test_lines_under_a_failed_interface_do_not_edit_the_previous_one() -> None:
    text = "\n".join(
        [
            "interface tunnel ipsec:a",
            " tunnel mtu 1400",
            "interface tunnel ipsec:b transport-virtual-router bad/name",
            " tunnel mtu 1300",
        ]
    )
    config, errors = load_config_text(text)
    assert [n for n, _ in errors] == [3, 4]
    tunnel = config.tunnel("a")
    assert tunnel is not None and tunnel.mtu == 1400
    assert config.tunnel("b") is None


def test_load_on_top_of_a_base_configuration() -> None:
    base = RunningConfig(hostname="base")
    config, errors = load_config_text("ipsec option tx-invalid-cookie\n", base)
    assert (
        errors == [] and config.hostname == "base" and config.options("default").tx_invalid_cookie
    )


def test_restart_from_a_saved_file_gives_the_same_show_configuration(tmp_path: Path) -> None:
    path = tmp_path / "ipsecgw.conf"
    gateway = FakeGateway(startup_path=path)
    s = Session(gateway)
    for line in [
        "configure terminal",
        *SITE.splitlines(),
        "virtual-router v2",
        "ipsec option tx-invalid-cookie",
        "end",
        "write memory",
    ]:
        assert s.execute(line).ok, line
    shown = s.execute("show configuration").output
    config, errors = load_config_text(path.read_text())
    assert errors == []
    restarted = Session(FakeGateway(config))
    assert restarted.execute("show configuration").output == shown
