"""Golden transcripts: tests/golden/*.txt are terminal sessions, replayed and compared.

A line that starts with a prompt (`host1#`, `host1:vr2(config-if)#`, ...) is
input; everything else is the expected output. A line ending in `?` asks for
help instead of executing. To (re)write a transcript after a deliberate change
of output, run with IPSECGW_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from test_cli_clear_sa import up

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session, format_error, format_help
from ipsecgw.status import DpdStatus, TunnelState

GOLDEN = Path(__file__).parent.parent / "golden"
PROMPT = re.compile(
    r"(?P<prompt>[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)?(?:>|#|\([a-z-]+\)#))(?P<line>.*)\Z"
)
NOW = 1_000_000.0


def plain(gateway: FakeGateway) -> None:
    """No status beyond what the configuration says."""


def two_sites(gateway: FakeGateway) -> None:
    """boston up for an hour, ottawa negotiating; counters in two VRs."""
    boston = up("boston")
    gateway.status["boston"] = replace(
        boston, up_since=NOW - 3725, backup="192.0.2.3", switchovers=2,
        last_switchover=(NOW - 3730, "phase 1 failed: no answer from the peer"),
        dpd=DpdStatus("peer alive", NOW - 4, NOW - 154, NOW + 141),
        ipsec_sas=tuple(replace(sa, remaining_kilobytes=101376, inbound_bytes=1048576,
                                inbound_packets=1024, outbound_bytes=524288,
                                outbound_packets=512) for sa in boston.ipsec_sas))
    gateway.status["ottawa"] = replace(
        up("ottawa"),
        state=TunnelState.NEGOTIATING,
        up_since=None,
        peer="198.51.100.7",
        transform="ts-legacy",
        last_failure="NO-PROPOSAL-CHOSEN from 198.51.100.7",
        last_failure_at=NOW - 42,
        dpd=DpdStatus("no phase 1"),
        ike_sas=(),
        ipsec_sas=(),
    )
    gateway.counters = {
        "default": {
            "messages_received": 42,
            "messages_sent": 40,
            "retransmits": 2,
            "invalid_cookie_sent": 0,
            "invalid_cookie_suppressed": 0,
            "invalid_cookie_received": 1,
            "dpd_sent": 3,
            "peers_dead": 0,
            "dropped_malformed": 5,
            "some_new_counter": 9,
        },
        "vr2": {
            "messages_received": 7,
            "invalid_cookies_sent": 3,
            "invalid_cookies_suppressed": 12,
        },
    }


def chapter(gateway: FakeGateway) -> None:
    """An endpoint in a VR whose namespace does not exist."""
    gateway.endpoints_down[("vr3", "10.96.0.1")] = "no network namespace 'vr3'"


SETUP: dict[str, Callable[[FakeGateway], None]] = {"status.txt": two_sites, "chapter.txt": chapter}


def replay(session: Session, commands: list[str]) -> str:
    out: list[str] = []
    for line in commands:
        prompt = session.prompt
        out.append(prompt + line)
        if line.endswith("?"):
            help_ = session.help(line[:-1])
            if help_.error:
                out.append(
                    format_error(help_.error, help_.caret, prompt=prompt, line=line, echo=False)
                )
            else:
                out.append(format_help(help_.items))
            continue
        result = session.execute(line)
        if result.output:
            out.append(result.output)
        if not result.ok:
            out.append(
                format_error(result.error, result.caret, prompt=prompt, line=line, echo=False)
            )
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.txt")), ids=lambda p: p.name)
def test_golden_transcript(path: Path) -> None:
    expected = path.read_text()
    commands = [m["line"] for line in expected.splitlines() if (m := PROMPT.match(line))]
    assert commands, f"{path.name} has no commands"
    gateway = FakeGateway(startup_path=Path("/tmp/ipsecgw-golden-unused.conf"))
    session = Session(gateway, clock=lambda: NOW)
    SETUP.get(path.name, plain)(gateway)
    actual = replay(session, commands)
    if os.environ.get("IPSECGW_UPDATE_GOLDEN") == "1":
        path.write_text(actual)
    assert actual == expected


def test_every_state_appears_in_the_status_transcript() -> None:
    text = (GOLDEN / "status.txt").read_text()
    for state in TunnelState:
        assert f"state {state.value}" in text
