"""Settings declared once (issue 12 item 5): the set form, the `no` form, the defaults.

Every row of the settings table is exercised: set it, then `no` with the
same words, with only a first part of them and with nothing after the
keywords; `no` with another value is refused and changes nothing
(issue 15 item 6: `no tunnel source 10.99.0.11`, `no tunnel pfs group 5`).
"""

from __future__ import annotations

import dataclasses

import pytest

from ipsecgw.cli.commands_remote import AAA
from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session
from ipsecgw.cli.settings import TABLE, Setting, optional_prefixes
from ipsecgw.cli.tree import Mode
from ipsecgw.config.model import IkePolicyRule, RunningConfig, TunnelInterface
from ipsecgw.config.remote_access import RadiusServerConfig, RemoteAccess, TunnelProfile

#: For each setting: the value words of a set form, and other words for a refused `no`.
EXAMPLES: dict[str, tuple[str, str]] = {
    "hostname": ("gw7", "gw8"),
    "ipsec lifetime": ("seconds 3600 kilobytes 2000", "seconds 3600 kilobytes 2001"),
    "tunnel source": ("10.99.0.11", "10.99.0.12"),
    "tunnel transform-set": ("ts", "ts2"),
    "tunnel pfs": ("group 5", "group 14"),
    "tunnel lifetime": ("seconds 600", "kilobytes 100"),
    "tunnel local-identity": ("domain-name a.example.com", "address 10.0.0.1"),
    "tunnel peer-identity": ('asn1-dn "C=US, CN=b"', 'asn1-dn "C=US, CN=c"'),
    "tunnel local-network": ("10.1.0.0/24", "10.1.0.0/25"),
    "tunnel remote-network": ("10.2.0.0/24", "10.3.0.0/24"),
    "tunnel mtu": ("1300", "1400"),  # interface and tunnel profile (whose default is 1400)
    "ip address": ("10.0.0.1 255.255.255.252", "10.0.0.1/31"),
    "tunnel responder-only": ("", ""),
    "description": ('"Link to Ottawa" office', "Link to Boston"),
    "shutdown": ("", ""),
    "authentication": ("rsa-sig", "pre-share"),
    "encryption": ("aes128", "3des"),
    "hash": ("sha", "md5"),
    "group": ("5", "2"),
    "lifetime": ("seconds 600", "seconds 601"),
    "aggressive-mode": ("required", "none"),  # IKE policy rule and tunnel profile
    # RADIUS server mode (issue 16)
    "udp-port": ("1645", "1646"),
    "timeout": ("5", "6"),
    "retransmit": ("1", "2"),
    # Tunnel profile mode (issue 16)
    "ike peer-identity": ("key-id vpn*", "key-id vpn"),
    "ike local-identity": ("ip address 10.99.0.1", "domain-name gw.example.com"),
    "transform": ("esp-3des-hmac-md5 esp-aes128-hmac-sha", "esp-3des-hmac-md5"),
    "pfs group": ("2", "5"),
    "lifetime seconds": ("3600", "3601"),
    "lifetime kilobytes": ("1000", "1001"),
    "ip pool": ("pool1", "pool2"),
    "dns primary": ("10.98.1.53", "10.98.1.54"),
    "dns secondary": ("10.98.1.53", "10.98.1.54"),
    "wins primary": ("10.98.1.53", "10.98.1.54"),
    "wins secondary": ("10.98.1.53", "10.98.1.54"),
    "domain-suffix": ("example.net", "example.org"),
    "xauth": ("none", "required"),
    "max-interfaces": ("10", "11"),
    "mode-config": ("push", "pull"),
    # Global (issue 16)
    "aaa user accounting interval": ("15", "16"),
}

#: Settings whose value starts with a keyword: `no` may stop after it.
FIRST_PART = {"tunnel pfs": "group", "lifetime": "seconds"}

SETUP = {
    Mode.CONFIG: ["configure terminal", "ipsec transform-set ts esp-aes128-hmac-sha",
                  "ipsec transform-set ts2 esp-aes256-hmac-sha256"],
}
SETUP[Mode.CONFIG_IF] = [*SETUP[Mode.CONFIG], "interface tunnel ipsec:t1"]
SETUP[Mode.CONFIG_IKE_POLICY] = [*SETUP[Mode.CONFIG], "ipsec ike-policy-rule 1"]
SETUP[Mode.CONFIG_TUNNEL_PROFILE] = [*SETUP[Mode.CONFIG], "ip local pool pool1 10.0.0.1 10.0.0.9",
                                     "ip local pool pool2 10.0.1.1 10.0.1.9",
                                     "ipsec tunnel-profile p1"]
SETUP[Mode.CONFIG_RADIUS] = [*SETUP[Mode.CONFIG], "radius authentication server 10.0.0.5"]


def session_in(mode: Mode) -> Session:
    session = Session(FakeGateway())
    for line in SETUP[mode]:
        assert session.execute(line).ok, line
    return session


def rows() -> list[tuple[Mode, Setting]]:
    return [(next(iter(modes)), row) for _, modes, row in TABLE]


#: The global settings of remote access live in `RunningConfig.remote_access`.
IN_REMOTE_ACCESS = {row.words for place, _, row in TABLE if place is AAA}


def test_every_setting_has_an_example() -> None:
    assert {row.words for _, row in rows()} == set(EXAMPLES)


def test_the_table_defaults_are_the_model_defaults() -> None:
    for mode, row in rows():
        model: object = {
            Mode.CONFIG: RemoteAccess() if row.words in IN_REMOTE_ACCESS else RunningConfig(),
            Mode.CONFIG_IF: TunnelInterface("t"),
            Mode.CONFIG_IKE_POLICY: IkePolicyRule(1),
            Mode.CONFIG_TUNNEL_PROFILE: TunnelProfile("p"),
            Mode.CONFIG_RADIUS: RadiusServerConfig("authentication", "10.0.0.5"),
        }[mode]
        assert getattr(model, row.field) == row.default, row.words


def field_value(session: Session, mode: Mode, row: Setting) -> object:
    config = session.gateway.config
    holder: object = {
        Mode.CONFIG: config.remote_access if row.words in IN_REMOTE_ACCESS else config,
        Mode.CONFIG_IF: config.tunnel("t1"),
        Mode.CONFIG_IKE_POLICY: config.ike_policy_rule(1),
        Mode.CONFIG_TUNNEL_PROFILE: config.remote_access.profile("p1"),
        Mode.CONFIG_RADIUS: config.remote_access.radius_server("authentication", "10.0.0.5"),
    }[mode]
    return getattr(holder, row.field)


@pytest.mark.parametrize(("mode", "row"), rows(), ids=lambda x: getattr(x, "words", ""))
def test_no_accepts_the_words_of_the_set_form(mode: Mode, row: Setting) -> None:
    value, _ = EXAMPLES[row.words]
    # `no` + all the value, + its leading keyword, + none of it
    for tail in {value, FIRST_PART.get(row.words, ""), ""}:
        session = session_in(mode)
        assert session.execute(f"{row.words} {value}".strip()).ok
        assert field_value(session, mode, row) != row.default
        line = f"no {row.words} {tail}".strip()
        result = session.execute(line)
        assert result.ok, (line, result.error)
        assert field_value(session, mode, row) == row.default, line


@pytest.mark.parametrize(("mode", "row"), rows(), ids=lambda x: getattr(x, "words", ""))
def test_no_with_another_value_is_refused(mode: Mode, row: Setting) -> None:
    value, other = EXAMPLES[row.words]
    if not other:
        return  # an on/off flag has no value to differ
    session = session_in(mode)
    assert session.execute(f"{row.words} {value}").ok
    before = session.gateway.config
    result = session.execute(f"no {row.words} {other}")
    assert not result.ok
    assert result.error.startswith(f"% The configured {row.words} is not ")
    assert session.gateway.config == before


def test_the_examples_of_the_issue() -> None:
    session = session_in(Mode.CONFIG_IF)
    for line in ["tunnel source 10.99.0.11", "no tunnel source 10.99.0.11",
                 "tunnel pfs group 5", "no tunnel pfs group 5"]:
        assert session.execute(line).ok, line
    tunnel = session.gateway.config.tunnel("t1")
    assert tunnel == dataclasses.replace(tunnel, source=None, pfs_group=None)
    assert tunnel is not None and tunnel.source is None and tunnel.pfs_group is None


def test_optional_prefixes() -> None:
    assert optional_prefixes("") == ""
    assert optional_prefixes("group {1|2}=group") == "[group [{1|2}=group]]"
    assert optional_prefixes("{a b|c} [d]") == "[{a b|c} [[d]]]"
