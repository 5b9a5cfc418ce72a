"""`?` help and Tab completion come from the same tree as execution."""

from __future__ import annotations

import pytest

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session, format_help
from ipsecgw.cli.tree import TREE, Mode


def session(*lines: str) -> Session:
    s = Session(FakeGateway())
    for line in lines:
        assert s.execute(line).ok, line
    return s


def words(s: Session, line: str) -> list[str]:
    help_ = s.help(line)
    assert not help_.error, (line, help_)
    return [w for w, _ in help_.items]


def test_question_mark_lists_next_words() -> None:
    s = session()
    assert words(s, "") == [
        "configure",
        "copy",
        "disable",
        "exit",
        "ipsec",
        "show",
        "terminal",
        "virtual-router",
        "write",
    ]
    assert words(s, "show ") == [
        "configuration", "ip", "ipsec", "running-configuration", "subscribers", "version"]
    assert words(s, "show ipsec ") == [
        "ike-policy-rule",
        "ike-sa",
        "lifetime",
        "local-endpoint",
        "option",
        "sa",
        "statistics",
        "transform-set",
        "tunnel",
        "tunnel-profile",
    ]
    assert words(s, "ipsec clear sa ") == ["all", "state", "tunnel"]
    assert words(s, "ipsec clear sa all ") == ["phase", "<cr>"]
    assert words(s, "ipsec clear sa state ") == ["disabled", "down", "negotiating", "up"]
    assert words(s, "ipsec clear sa all phase ") == ["1", "2"]


def test_question_mark_after_a_partial_word_lists_its_completions() -> None:
    s = session()
    assert words(s, "sh") == ["show"]
    assert words(s, "show ipsec i") == ["ike-policy-rule", "ike-sa"]
    assert words(s, "show ipsec tunnel ") == [
        "detail", "profile", "state", "summary", "ipsec:NAME", "|", "<cr>"
    ]


def test_help_shows_placeholders_ranges_and_existing_names() -> None:
    s = session("conf t", "ipsec transform-set ts1 ah-hmac-md5", "interface tunnel ipsec:a")
    assert words(s, "tunnel transform-set ") == ["ts1", "NAME"]
    assert words(s, "tunnel mtu ") == ["<576-9216>"]
    assert words(s, "tunnel source ") == ["A.B.C.D"]
    assert words(s, "tunnel destination ") == ["A.B.C.D", "FQDN"]
    assert words(s, "exit") == ["exit"]
    items = dict(s.help("tunnel ").items)
    assert items["pfs"] == "Perfect forward secrecy"


def test_interface_mode_offers_its_own_global_and_show_commands() -> None:
    s = session("conf t", "interface tunnel ipsec:a")
    offered = words(s, "")
    for word in [
        "tunnel",
        "ip",
        "shutdown",
        "no",
        "exit",
        "end",
        "show",
        "do",
        "hostname",
        "ipsec",
    ]:
        assert word in offered


def test_errors_in_help() -> None:
    s = session()
    help_ = s.help("show foo ")
    assert help_.error.startswith("% Invalid input") and help_.caret == 5
    assert s.help("xyz").error == "% Unrecognized command"


def test_hidden_commands_are_not_offered() -> None:
    s = session("conf t")
    assert "clear" not in words(s, "no ipsec ")
    assert s.complete("no ipsec cl") == []


def test_tab_completion() -> None:
    s = session()
    assert [w for w, _ in s.complete("conf")] == ["configure"]
    assert [w for w, _ in s.complete("sh ip tu")] == ["tunnel", "tunnel-profile"]
    assert [w for w, _ in s.complete("show ipsec ")][:2] == ["ike-policy-rule", "ike-sa"]
    assert s.complete("show ipsec tunnel ") == [
        ("detail", "Detailed information"),
        ("profile", "Remote-access tunnel profiles"),
        ("state", "Only tunnels in a state"),
        ("summary", "How many tunnels are in each state"),
    ], "no placeholders"
    s = session(
        "conf t", "interface tunnel ipsec:alpha", "exit", "interface tunnel ipsec:beta", "end"
    )
    assert [w for w, _ in s.complete("ipsec clear sa tunnel ")] == ["ipsec:alpha", "ipsec:beta"]
    assert [w for w, _ in s.complete("ipsec clear sa tunnel ipsec:a")] == ["ipsec:alpha"]
    assert s.complete("nonsense ") == []


def test_completion_through_do() -> None:
    s = session("conf t")
    assert [w for w, _ in s.complete("do sh")] == ["show"]
    assert [w for w, _ in s.complete("do show ipsec t")] == [
        "transform-set", "tunnel", "tunnel-profile"]


def test_format_help() -> None:
    assert format_help([("show", "Show things"), ("<cr>", "")]) == "  show  Show things\n  <cr>"


@pytest.mark.parametrize("mode", list(Mode))
def test_every_keyword_has_help(mode: Mode) -> None:
    for command in TREE.in_mode(mode):
        for moves in command.automaton.moves:
            for terminal, _ in moves:
                text = terminal.help or (terminal.type.help if terminal.type else "")
                assert text, (command.syntax, terminal.keyword or terminal.arg)
                assert command.handler.__doc__, command.syntax
