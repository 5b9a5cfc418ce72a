"""The CLI habits of a JUNOSe/IOS engineer (issue 15 item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsecgw import __version__
from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.loader import load_config_text
from ipsecgw.cli.session import Session
from ipsecgw.config.render import render


def session(*lines: str, path: Path | None = None) -> Session:
    s = Session(FakeGateway(startup_path=path))
    for line in lines:
        result = s.execute(line)
        assert result.ok, (line, result.error)
    return s


CONFIGURED = (
    "configure terminal",
    "hostname gw",
    "ipsec transform-set ts esp-aes128-hmac-sha",
    "interface tunnel ipsec:boston",
    "tunnel destination 192.0.2.2",
    "tunnel transform-set ts",
    "exit",
    "interface tunnel ipsec:ottawa",
    "tunnel destination 198.51.100.7",
    "end",
)


def out(s: Session, line: str) -> str:
    result = s.execute(line)
    assert result.ok, (line, result.error)
    return result.output


# -- configuration display and saving ------------------------------------------------------


def test_show_running_configuration_and_write_terminal_are_show_configuration() -> None:
    s = session(*CONFIGURED)
    shown = out(s, "show configuration")
    assert out(s, "show running-configuration") == shown
    assert out(s, "sh run") == shown
    assert out(s, "write terminal") == shown
    assert out(s, "configure terminal") == ""
    assert out(s, "interface tunnel ipsec:boston") == ""
    assert out(s, "sh run") == shown, "`sh` is not ambiguous once `run` follows"


def test_show_configuration_of_one_tunnel_interface() -> None:
    s = session(*CONFIGURED)
    assert out(s, "show configuration interface tunnel ipsec:boston") == "\n".join(
        [
            "interface tunnel ipsec:boston transport-virtual-router default",
            " tunnel destination 192.0.2.2",
            " tunnel transform-set ts",
            " exit",
        ]
    )
    assert out(s, "sh run int tun ipsec:ottawa").startswith("interface tunnel ipsec:ottawa ")
    result = s.execute("show configuration interface tunnel ipsec:nowhere")
    assert not result.ok and result.error == "% Unknown tunnel interface ipsec:nowhere"


def test_copy_running_configuration_startup_configuration_saves(tmp_path: Path) -> None:
    path = tmp_path / "startup.conf"
    s = session(*CONFIGURED, path=path)
    assert out(s, "copy running-configuration startup-configuration") == (
        f"Configuration saved to {path}"
    )
    assert path.read_text() == render(s.gateway.config)
    assert out(s, "copy run start") == f"Configuration saved to {path}"


def test_terminal_length_is_accepted_and_never_configures() -> None:
    s = session()
    before = s.gateway.config
    assert out(s, "terminal length 0") == ""
    assert out(s, "terminal length 24") == ""
    assert s.gateway.config == before
    assert not s.execute("terminal length 513").ok
    _, errors = load_config_text("terminal length 0\n")
    assert [n for n, _ in errors] == [1], "an exec command is not configuration"


def test_show_version() -> None:
    assert out(session(), "show version").startswith(f"ipsecgw {__version__}")


def test_show_version_says_where_esp_runs_and_why() -> None:
    gateway = FakeGateway()
    gateway.data_plane = "userspace (the kernel cannot create an XFRM interface; ESP over TUN)"
    text = out(Session(gateway), "show version")
    assert "Data plane: userspace (the kernel cannot create an XFRM interface" in text


# -- output filters ------------------------------------------------------------------------


def test_include_exclude_begin_count() -> None:
    s = session(*CONFIGURED)
    shown = out(s, "show configuration").splitlines()
    assert out(s, "show configuration | include destination").splitlines() == [
        " tunnel destination 192.0.2.2",
        " tunnel destination 198.51.100.7",
    ]
    assert out(s, "show configuration | exclude ^ ").splitlines() == [
        line for line in shown if not line.startswith(" ")
    ]
    begin = out(s, "show configuration | begin ipsec:ottawa")
    assert begin.splitlines() == shown[shown.index(begin.splitlines()[0]) :]
    assert begin.startswith("interface tunnel ipsec:ottawa")
    assert out(s, "show configuration | count") == f"Count: {len(shown)} lines"
    assert out(s, "show ipsec tunnel | i boston|ottawa").count("ipsec:") == 2
    assert out(s, "show ipsec tunnel | e down") == out(s, "show ipsec tunnel | ex down")
    assert out(s, "show configuration | include no such line") == ""
    assert out(s, "show configuration | begin no such line") == ""


def test_a_filter_applies_to_every_show_command_and_do_show() -> None:
    s = session(*CONFIGURED)
    for line in [
        "show ipsec tunnel", "show ipsec tunnel summary", "show ipsec ike-sa", "show ipsec sa",
        "show ipsec option", "show ipsec transform-set", "show ipsec ike-policy-rule",
        "show ipsec local-endpoint", "show ipsec lifetime", "show ipsec statistics",
        "show version", "show configuration", "write terminal",
    ]:
        assert out(s, f"{line} | count").startswith("Count: "), line
    out(s, "configure terminal")
    assert out(s, "do show configuration | include ^hostname") == "hostname gw"


@pytest.mark.parametrize(
    ("line", "error", "caret"),
    [
        ("show configuration | grep x", "% Expected a filter: begin, count, exclude or include", 21),
        ("show configuration |", "% Expected a filter: begin, count, exclude or include", 19),
        ("show configuration | include", "% Expected a regular expression after include", 21),
        ("show configuration | count x", "% count takes no regular expression", 27),
        ("show configuration | include (", "% Invalid regular expression: missing ), "
         "unterminated subpattern", 21),
        ("hostname x | include y", "% Output filters (| include ...) apply to show commands only",
         11),
        ("exit | count", "% Output filters (| include ...) apply to show commands only", 5),
    ],
)
def test_a_wrong_filter_is_refused_and_changes_nothing(line: str, error: str, caret: int) -> None:
    s = session(*CONFIGURED[:-1])
    before = (s.gateway.config, s.prompt)
    result = s.execute(line)
    assert (result.ok, result.error, result.caret) == (False, error, caret)
    assert (s.gateway.config, s.prompt) == before


def test_a_bar_inside_quotes_or_inside_a_word_is_no_filter() -> None:
    s = session("configure terminal", "ipsec key manual pre-share 10.0.0.2")
    assert out(s, 'key "a | b"') == ""
    assert s.gateway.config.pre_shared_key("10.0.0.2").secret == "a | b"  # type: ignore[union-attr]
    assert out(s, "key a|b") == ""
    assert s.gateway.config.pre_shared_key("10.0.0.2").secret == "a|b"  # type: ignore[union-attr]
    result = s.execute("do write memory | count")
    assert not result.ok and "show commands only" in result.error


def test_question_mark_offers_the_bar_after_a_complete_show_command() -> None:
    s = session("configure terminal")
    assert [w for w, _ in s.help("do show ipsec sa ").items][-2:] == ["|", "<cr>"]
    assert [w for w, _ in s.help("do write memory ").items] == ["<cr>"]
    assert [w for w, _ in s.help("hostname gw ").items] == ["<cr>"]
    assert "|" not in [w for w, _ in s.complete("do show ipsec sa ")]


def test_question_mark_after_a_bar() -> None:
    s = session()
    assert [w for w, _ in s.help("show configuration | ").items] == [
        "begin", "count", "exclude", "include"
    ]
    assert [w for w, _ in s.help("show configuration | e").items] == ["exclude"]
    assert [w for w, _ in s.help("show configuration | include ").items] == ["LINE"]
    assert [w for w, _ in s.help("show configuration | count ").items] == ["<cr>"]
    assert [w for w, _ in s.complete("show configuration | e")] == ["exclude"]
    assert [w for w, _ in s.complete("show configuration | ")] == [
        "begin", "count", "exclude", "include"
    ]
    assert s.complete("show configuration | include ") == []


# -- interface settings --------------------------------------------------------------------


def test_description_is_saved_quoted_and_loads_back() -> None:
    s = session("configure terminal", "interface tunnel ipsec:a",
                'description Link to   "the Ottawa  office"')
    tunnel = s.gateway.config.tunnel("a")
    assert tunnel is not None and tunnel.description == "Link to the Ottawa  office"
    shown = out(s, "do show configuration interface tunnel ipsec:a")
    assert ' description "Link to the Ottawa  office"' in shown.splitlines()
    config, errors = load_config_text(render(s.gateway.config))
    assert errors == [] and config == s.gateway.config
    result = s.execute("description " + "x" * 200 + " " + "y" * 40)
    assert not result.ok and result.error == "% A description is at most 240 characters"
    out(s, "no description")
    assert s.gateway.config.tunnel("a").description is None  # type: ignore[union-attr]


def test_networks_take_an_address_and_a_mask() -> None:
    s = session("configure terminal", "interface tunnel ipsec:a",
                "tunnel local-network 10.1.2.3 255.255.255.0",
                "tunnel remote-network 10.2.0.0 255.255.0.0")
    tunnel = s.gateway.config.tunnel("a")
    assert tunnel is not None
    assert (tunnel.local_network, tunnel.remote_network) == ("10.1.2.0/24", "10.2.0.0/16")
    out(s, "no tunnel remote-network 10.2.0.0 255.255.0.0")
    result = s.execute("tunnel local-network 10.1.2.0 255.0.255.0")
    assert not result.ok and result.error.endswith('% Invalid network mask "255.0.255.0"')


# -- errors name what was expected ---------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "line", "detail"),
    [
        ((), "clear ipsec sa all", '% Did you mean "ipsec clear sa"?'),
        ((), "crypto isakmp policy 1", '% Did you mean "ipsec"?'),
        (("configure terminal",), "interface tunnel ipsec:" + "a" * 33,
         "% Tunnel name longer than 32 characters (33)"),
        (("configure terminal",),
         "ipsec transform-set ts esp-aes128-hmac-sha esp-des-hmac-md5 esp-des-hmac-sha "
         "esp-3des-hmac-md5 esp-3des-hmac-sha esp-null-hmac-md5 ah-hmac-md5",
         "% At most 6 transforms"),
        (("configure terminal", "interface tunnel ipsec:a"), "tunnel remote-network 10.0.0.0/33",
         "% Prefix length 33 is over 32 (expected A.B.C.D/M)"),
        (("configure terminal", "interface tunnel ipsec:a"), "ip address 10.0.0.1/40",
         "% Prefix length 40 is over 32 (expected A.B.C.D/M)"),
        (("configure terminal", "ipsec key manual pre-share 10.0.0.2"), "key my secret",
         '% Extra word after the SECRET: if it has blanks, quote it ("...")'),
        (("configure terminal",), 'ipsec certificate ca /etc/my ca.pem',
         '% Extra word after the PATH: if it has blanks, quote it ("...")'),
    ],
)
def test_invalid_input_names_what_was_expected(
    setup: tuple[str, ...], line: str, detail: str
) -> None:
    result = session(*setup).execute(line)
    assert not result.ok
    assert result.error == f"% Invalid input detected at '^' marker.\n{detail}"


# -- `no` + a line of show configuration -------------------------------------------------

RICH = (
    "configure terminal",
    "hostname gw",
    "ipsec lifetime seconds 3600",
    "ipsec transform-set ts esp-aes128-hmac-sha esp-3des-hmac-md5",
    "ipsec ike-policy-rule 2",
    "encryption aes128",
    "lifetime seconds 600",
    "exit",
    "ipsec key manual pre-share 192.0.2.2",
    'key "correct horse"',
    "exit",
    'ipsec certificate local "/etc/gw cert.pem" private-key /etc/gw.key',
    "ipsec certificate ca /etc/ca.pem",
    "ipsec local-endpoint 192.0.2.1",
    "ipsec option tx-invalid-cookie",
    "ipsec option dpd idle 10 silence 10 retry 2 retries 3",
    "interface tunnel ipsec:boston",
    "description to Boston",
    "tunnel destination 192.0.2.2",
    "tunnel transform-set ts",
    "tunnel pfs group 14",
    "tunnel lifetime seconds 900",
    "tunnel local-identity asn1-dn \"C=US, CN=gw\"",
    "tunnel remote-network 10.2.0.0/16",
    "ip address 172.16.0.1/30",
    "tunnel responder-only",
    "shutdown",
    "end",
)


def test_every_line_of_show_configuration_can_be_negated_as_printed() -> None:
    """An engineer copies a line of `show configuration` and puts `no` in front of it."""
    s = session(*RICH)
    shown = out(s, "show configuration").splitlines()
    out(s, "configure terminal")
    block: str | None = None
    refused = []
    for line in shown:
        if line.startswith(("!", "no ")) or line == " exit":
            continue
        if not line.startswith(" "):
            block = line
            continue
        assert block is not None
        out(s, block)
        result = s.execute(f"no {line.strip()}")
        if not result.ok:
            refused.append((block, line, result.error))
        out(s, "exit")
    for line in shown:
        if line.startswith(("!", "no ", " ")):
            continue
        result = s.execute(f"no {line}")
        if not result.ok:
            refused.append((None, line, result.error))
    assert refused == [], "\n".join(map(str, refused))
    left = render(s.gateway.config).splitlines()
    assert left == ["hostname host1", "!", "ipsec option dpd idle 10 silence 10 retry 2",
                    "no ipsec option dpd"], "all back to defaults, DPD off with its timers kept"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("no ipsec transform-set ts esp-3des-hmac-md5",
         "% Transform set ts is esp-aes128-hmac-sha esp-3des-hmac-md5"),
        ("no interface tunnel ipsec:boston transport-virtual-router red",
         "% Interface ipsec:boston has transport virtual router default"),
        ('no ipsec certificate local /other.pem private-key /etc/gw.key',
         "% Not the configured certificate and private key"),
    ],
)
def test_no_with_a_line_that_is_not_the_configured_one_is_refused(line: str, error: str) -> None:
    s = session(*RICH[:-1])
    out(s, "exit")
    before = s.gateway.config
    result = s.execute(line)
    assert (result.ok, result.error) == (False, error)
    assert s.gateway.config == before


def test_no_key_with_another_key_is_refused_without_echoing_either() -> None:
    s = session("configure terminal", "ipsec key manual pre-share 192.0.2.2", "key Tq7right")
    result = s.execute("no key Tq7wrong")
    assert (result.ok, result.error) == (False, "% Not the configured key")
    assert out(s, "no key Tq7right") == ""
    assert s.gateway.config.pre_shared_key("192.0.2.2").secret is None  # type: ignore[union-attr]
