"""No secret in any log line, error message or echo, whatever the error (issue 13, item 2).

Every secret-bearing command (the keywords `cli.redact` finds in the tree:
`key`, `masked-key`) is typed wrong in every way we know — too long,
unterminated quote, a blank, a bad masked form, an unprintable character,
an abbreviation, a line over the length limit, behind `do` or `no` — and
the result is looked for in every channel: the startup-file loader's
messages, the session's errors in every mode, the control protocol's
answers, batch mode's echo and the daemon's log of a failed command.
"""

from __future__ import annotations

import io
import json
import logging
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecgw.cli.batch import run_batch
from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.loader import load_config_text
from ipsecgw.cli.redact import redact, secret_keywords
from ipsecgw.cli.session import Session
from ipsecgw.config.masking import mask_secret
from ipsecgw.daemon.control import respond

# A secret starts with a marker no message contains, so finding the marker is finding a leak.
secrets_ = st.builds(
    lambda body: "Tq7" + body,
    st.text(alphabet=string.ascii_letters + string.digits, min_size=8, max_size=300),
)
keywords = st.sampled_from(["key", "KEY", "ke", "k", "masked-key", "mask", "ma"])
shapes = st.sampled_from(
    [
        "{kw} {s}",
        "{kw} {s}{pad}",
        '{kw} "{s}',
        '{kw} "{s}"x',
        "{kw} {s} and more",
        "{kw} {s}\x01",
        "{kw} {masked}",
        "{kw} {masked}x",
        "{kw} {masked} extra",
        "do {kw} {s}",
        "no {kw} {s}",
        "  {kw} {s}",
        "{kw}   {s}{huge}",
        "{kw} {s} | include x",
        '{kw} "{s} | count',
    ]
)


def bad_line(shape: str, keyword: str, secret: str) -> str:
    return shape.format(
        kw=keyword, s=secret, pad="x" * 300, masked=mask_secret(secret), huge="y" * 5000
    )


def leaks(secret: str, text: str) -> bool:
    return "Tq7" in text or mask_secret(secret)[:12] in text


def test_the_secret_keywords_come_from_the_tree() -> None:
    assert secret_keywords() == {"key", "masked-key", "encryption-key", "authentication-key",
                                 "masked-encryption-key", "masked-authentication-key",
                                 "pre-share", "password", "masked-password"}


def test_redact_hides_everything_after_a_secret_keyword() -> None:
    assert redact('key "my secret') == "key <hidden>"
    assert redact(" ma AQID extra") == " ma <hidden>"
    assert redact("no key") == "no key"
    assert redact("tunnel source 10.0.0.1") == "tunnel source 10.0.0.1"


class LocalClient:
    """The control protocol's answers to one session, without a socket."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def prompt(self) -> str:
        return self.session.prompt

    def execute(self, line: str) -> dict[str, Any]:
        return respond(self.session, json.dumps({"op": "execute", "line": line}).encode())


def sessions() -> list[Session]:
    """A session in each mode a line can be typed in."""
    made = []
    for setup in (
        [],
        ["configure terminal"],
        ["configure terminal", "ipsec key manual pre-share 10.0.0.2"],
        ["configure terminal", "interface tunnel ipsec:t1"],
        ["configure terminal", "ipsec ike-policy-rule 1"],
    ):
        session = Session(FakeGateway())
        for line in setup:
            assert session.execute(line).ok
        made.append(session)
    return made


@settings(max_examples=150, deadline=None)
@given(secret=secrets_, keyword=keywords, shape=shapes)
def test_no_channel_shows_a_refused_secret(secret: str, keyword: str, shape: str) -> None:
    line = bad_line(shape, keyword, secret)
    # the startup-file loader, in and out of the key's block
    for text in (line, f"ipsec key manual pre-share 10.0.0.2\n{line}\n exit"):
        _, errors = load_config_text(text)
        assert not any(leaks(secret, message) for _, message in errors), errors
    for session in sessions():
        client = LocalClient(session)
        result = session.execute(line)
        assert not leaks(secret, result.error + result.output)
        answer = client.execute(line)
        assert not leaks(secret, json.dumps(answer))
        out, err = io.StringIO(), io.StringIO()
        run_batch(client, [line], out, err)  # type: ignore[arg-type]
        assert not leaks(secret, out.getvalue() + err.getvalue())


def test_a_command_that_crashes_is_logged_without_its_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = Session(FakeGateway())
    for line in ["configure terminal", "ipsec key manual pre-share 10.0.0.2"]:
        assert session.execute(line).ok

    def broken(*_: object) -> None:
        raise RuntimeError("bug")

    session.gateway.apply = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        answer = LocalClient(session).execute("key Tq7CrashingSecret")
    assert answer["ok"] is False
    assert "command failed" in caplog.text and "Tq7" not in caplog.text


@pytest.mark.parametrize(
    "line",
    ["key " + "Tq7" + "s" * 300, 'key "Tq7unterminated', "masked-key Tq7notmasked"],
)
def test_the_lines_of_the_issue_are_logged_without_their_secret(line: str) -> None:
    _, errors = load_config_text(f"ipsec key manual pre-share 10.0.0.2\n {line}\n exit\n")
    assert [n for n, _ in errors] == [2]
    assert "Tq7" not in errors[0][1] and "<hidden>" in errors[0][1]
