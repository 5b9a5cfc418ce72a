"""Loading a startup file: bad lines reported by number, the rest applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.loader import (
    MAX_FILE_SIZE,
    ConfigFileError,
    load_config_bytes,
    load_config_text,
    read_config_file,
)
from ipsecgw.cli.session import Session
from ipsecgw.config.model import Identity, RunningConfig
from ipsecgw.config.render import render
from ipsecgw.config.tokens import MAX_LINE_LENGTH

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


# -- damaged files (issue 13, items 3-5): the loader keeps its place --------------------------

TUNNEL_B = [
    "interface tunnel ipsec:good",
    " tunnel destination 10.0.0.9",
    " exit",
]


def test_a_line_that_is_not_utf8_is_reported_and_the_rest_loads() -> None:
    data = b"! caf\xe9\nhostname after\n" + "\n".join(TUNNEL_B).encode()
    config, errors = load_config_bytes(data)
    assert errors == [(1, "Not UTF-8 text (byte 6), not read")]
    assert config.hostname == "after" and config.tunnel("good") is not None


def test_a_huge_line_is_refused_by_number_without_being_echoed() -> None:
    data = b"hostname before\nhostname " + b"x" * 50_000 + b"\nhostname after\n"
    config, errors = load_config_bytes(data)
    assert errors == [(2, f"Line longer than {MAX_LINE_LENGTH} characters, not read")]
    assert config.hostname == "after"


def test_a_file_over_the_size_limit_is_refused_as_a_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.conf"
    with path.open("wb") as file:
        file.write(b"hostname big\n")
        file.truncate(MAX_FILE_SIZE + 1)
    with pytest.raises(ConfigFileError, match=f"larger than {MAX_FILE_SIZE} bytes"):
        read_config_file(path)


def test_read_config_file(tmp_path: Path) -> None:
    assert read_config_file(tmp_path / "missing.conf") == (RunningConfig(), [])
    path = tmp_path / "ok.conf"
    path.write_bytes(b"hostname fromfile\r\n! caf\xe9\n")
    config, errors = read_config_file(path)
    assert errors == [(2, "Not UTF-8 text (byte 6), not read")]
    assert config.hostname == "fromfile"


def test_a_failed_mode_line_skips_its_block_and_the_rest_of_the_file_loads() -> None:
    text = "\n".join(
        [
            "interface tunnel ipsec:bad name",
            " tunnel destination 10.0.0.8",
            " ! a comment in the block",
            " exit",
            *TUNNEL_B,
            "exit",
            "hostname last",
        ]
    )
    config, errors = load_config_text(text)
    assert [n for n, _ in errors] == [1, 2, 4]
    assert errors[1:] == [
        (2, "Skipped: under line 1, which failed"),
        (4, "Skipped: under line 1, which failed"),
    ]
    tunnel = config.tunnel("good")
    assert tunnel is not None and tunnel.destination == "10.0.0.9"
    assert config.hostname == "last", "a top-level exit does not leave configuration mode"


def test_end_in_a_file_does_not_stop_the_loading() -> None:
    config, errors = load_config_text("end\nhostname after-end\n")
    assert errors == [] and config.hostname == "after-end"


def test_a_truncated_file_loads_what_it_holds() -> None:
    saved = render(load_config_text(SITE)[0])
    cut = saved[: saved.index(" tunnel remote-network") + len(" tunnel remote-network 10.2.")]
    assert not cut.endswith("\n")
    config, errors = load_config_text(cut)
    assert [message.split(" in: ")[-1] for _, message in errors] == [
        "tunnel remote-network 10.2."
    ]
    tunnel = config.tunnel("siteB")
    assert tunnel is not None and tunnel.local_network == "10.1.0.0/24"
    # a block without its exit, then a global line: it still applies globally
    config, errors = load_config_text("interface tunnel ipsec:a\n tunnel mtu 1400\nhostname h\n")
    assert errors == [] and config.hostname == "h"


def test_a_typed_line_over_the_limit_is_refused_without_reading_it() -> None:
    result = Session(FakeGateway()).execute("show " + "x" * 5000)
    assert (result.ok, result.error, result.caret) == (
        False,
        f"% Line longer than {MAX_LINE_LENGTH} characters",
        None,
    )


_LINES = st.sampled_from(
    [
        b"hostname gw", b"interface tunnel ipsec:a", b" tunnel mtu 1400", b" exit", b"exit",
        b"end", b"interface tunnel ipsec:bad name", b"ipsec key manual pre-share 10.0.0.2",
        b' key "unterminated', b"virtual-router v2", b"! comment", b"", b"\t", b"\xff\xfe",
        b"x" * (MAX_LINE_LENGTH + 1), b"show ipsec tunnel", b" tunnel destination 10.0.0.9",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINES | st.binary(max_size=40), max_size=30), st.booleans())
def test_any_file_loads_without_an_exception_and_reports_lines_by_number(
    lines: list[bytes], final_newline: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    config, errors = load_config_bytes(data)
    count = len(data.split(b"\n")) - (1 if data.endswith(b"\n") else 0)
    numbers = [n for n, _ in errors]
    assert numbers == sorted(set(numbers)) and all(1 <= n <= count for n in numbers)
    assert all(len(message) < 2 * MAX_LINE_LENGTH // 3 for _, message in errors)
    assert load_config_text(render(config))[0] == config, "what loaded saves and loads back"
