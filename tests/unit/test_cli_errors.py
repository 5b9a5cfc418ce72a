"""Errors point at the word: caret position, range, did-you-mean, ambiguity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session, format_error
from ipsecgw.cli.tree import TREE, Mode


def config_session() -> Session:
    s = Session(FakeGateway())
    assert s.execute("configure terminal").ok
    return s


@pytest.mark.parametrize(
    ("line", "word", "messages"),
    [
        (
            "ipsec ike-policy-rule 11",
            "11",
            ["% Invalid input detected at '^' marker.", "% Value out of range: <1-10>"],
        ),
        (
            "ipsec ike-policy-rule x",
            "x",
            ["% Invalid input detected at '^' marker.", "% Expected a number <1-10>"],
        ),
        (
            "show ipsec tunnle",
            "tunnle",
            ["% Invalid input detected at '^' marker.", '% Did you mean "tunnel"?'],
        ),
        (
            "ipsec optoin nat-t",
            "optoin",
            ["% Invalid input detected at '^' marker.", '% Did you mean "option"?'],
        ),
        (
            "hostnme gw",
            "hostnme",
            ["% Invalid input detected at '^' marker.", '% Did you mean "hostname"?'],
        ),
        (
            "ipsec local-endpoint 10.0.0.256",
            "10.0.0.256",
            ["% Invalid input detected at '^' marker.", '% Invalid IPv4 address "10.0.0.256"'],
        ),
        (
            "ipsec clear sa state bogus",
            "bogus",
            [
                "% Invalid input detected at '^' marker.",
                "% Expected one of: disabled, down, negotiating, up",
            ],
        ),
        (
            "ipsec clear sa all phase 3",
            "3",
            ["% Invalid input detected at '^' marker.", "% Expected one of: 1, 2"],
        ),
        (
            "ipsec clear sa tunnel Aottawa2boca",
            "Aottawa2boca",
            [
                "% Invalid input detected at '^' marker.",
                '% Tunnel interfaces are named ipsec:NAME, not "Aottawa2boca"',
            ],
        ),
        (
            "ipsec clear sa tunnel ipsec:nosuch",
            "ipsec:nosuch",
            ["% Unknown tunnel interface ipsec:nosuch"],
        ),
        (
            "interface tunnel ipsec:a transport-virtual-router bad/name",
            "bad/name",
            [
                "% Invalid input detected at '^' marker.",
                "% Invalid virtual router name \"bad/name\" (letters, digits, '_', '.', '-')",
            ],
        ),
        ("sh ip t", "t", ['% Ambiguous command: "sh ip t"', "% Could be: transform-set, tunnel"]),
        ('ipsec key manual pre-share "10.0.0.2', '"10.0.0.2', ["% Unterminated quoted string"]),
    ],
)
def test_error_points_at_the_word(line: str, word: str, messages: list[str]) -> None:
    s = config_session()
    before = s.gateway.config
    result = s.execute(line)
    assert not result.ok
    assert result.error.splitlines() == messages
    assert result.caret == line.index(word)
    assert s.gateway.config == before


def test_incomplete_command() -> None:
    s = config_session()
    for line in ["ipsec", "ipsec clear sa", "ipsec transform-set ts", "interface tunnel"]:
        result = s.execute(line)
        assert (result.ok, result.error, result.caret) == (False, "% Incomplete command.", None), (
            line
        )


def test_unknown_first_word() -> None:
    result = config_session().execute("  frobnicate now")
    assert result.error == "% Invalid input detected at '^' marker."
    assert result.caret == 2


def test_ambiguous_first_word_lists_the_candidates() -> None:
    result = config_session().execute("i")
    assert result.error.splitlines() == ['% Ambiguous command: "i"', "% Could be: interface, ip, ipsec"]


def test_trailing_garbage_after_a_complete_command() -> None:
    result = config_session().execute("ipsec option nat-t now")
    assert result.caret == len("ipsec option nat-t ")


def test_format_error_like_a_terminal() -> None:
    s = config_session()
    line = "ipsec ike-policy-rule 11"
    result = s.execute(line)
    text = format_error(result.error, result.caret, prompt=s.prompt, line=line, echo=True)
    assert text == (
        "host1(config)#ipsec ike-policy-rule 11\n"
        "                                    ^\n"
        "% Invalid input detected at '^' marker.\n"
        "% Value out of range: <1-10>"
    )
    assert format_error("% Incomplete command.", None, prompt="p#", line="x", echo=False) == (
        "% Incomplete command."
    )


def test_no_form_of_clear_is_rejected_everywhere() -> None:
    gateway = FakeGateway()
    for setup in ([], ["configure terminal"]):
        s = Session(gateway)
        for line in setup:
            assert s.execute(line).ok
        for line in [
            "no ipsec clear sa all",
            "no ipsec clear sa tunnel ipsec:a phase 1",
            "no ipsec clear",
        ]:
            result = s.execute(line)
            assert not result.ok, line
            assert result.error == "% There is no 'no' form of 'ipsec clear sa'", line
    assert gateway.cleared == []


def test_nothing_a_user_types_raises() -> None:
    s = config_session()
    nasty = [
        '"',
        '""',
        "\\",
        "!",
        "no",
        "no no no",
        "\x00",
        "ipsec key manual pre-share \x00",
        "interface tunnel ipsec:",
        "ipsec:x",
        "do",
        "do do show",
        "? ?",
        "tunnel mtu 99999999999999999999",
        "ipsec transform-set " + "a" * 500 + " ah-hmac-md5",
        "ip address 1.2.3.4/0",
        "\t\t",
    ]
    for line in nasty:
        s.execute(line)
        s.help(line)
        s.complete(line)


def _vocabulary() -> list[str]:
    words = {t.keyword for c in TREE.commands for m in c.automaton.moves for t, _ in m if t.keyword}
    return sorted(words) + [
        "10.0.0.1",
        "10.0.0.0/24",
        "ipsec:a",
        "a",
        "1",
        "99",
        '"x y"',
        "?",
        "-",
        "",
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_vocabulary()), max_size=8).map(" ".join), max_size=12))
def test_random_lines_never_raise(lines: list[str]) -> None:
    s = Session(FakeGateway(), mode=Mode.CONFIG)
    for line in lines:
        result = s.execute(line)
        assert result.ok or result.error.startswith("%"), (line, result)
        s.help(line)
        s.complete(line)
        if s.closed:
            break
