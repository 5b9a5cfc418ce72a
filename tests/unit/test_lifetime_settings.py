"""`ipsec lifetime` and `tunnel lifetime` reach the engine's Quick Mode (issue 15 item 4).

The global lifetime applies to every tunnel without its own; `tunnel
lifetime` overrides what it gives and keeps the rest.  The engine tests
(test_engine.py) check that the offer carries the tunnel's lifetime and
that the responder's shorter one wins.
"""

from __future__ import annotations

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session
from ipsecgw.config.model import Lifetime
from ipsecgw.daemon.translate import engine_policies


def lifetimes(session: Session) -> dict[str, tuple[int, int]]:
    policy = engine_policies(session.gateway.config, lambda name: name)["default"]
    return {t.name: (t.lifetime_seconds, t.lifetime_kilobytes) for t in policy.tunnels}


def test_defaults_are_the_guides() -> None:
    assert Lifetime() == Lifetime(8 * 3600, 100 * 1024)  # 8 hours, 100 MB


def test_global_and_per_tunnel_lifetimes_reach_the_engine() -> None:
    s = Session(FakeGateway())
    lines = ["configure terminal", "ipsec transform-set ts esp-aes128-hmac-sha"]
    for name, address in (("a", "10.0.0.2"), ("b", "10.0.0.3")):
        lines += [f"interface tunnel ipsec:{name}", "tunnel source 10.0.0.1",
                  f"tunnel destination {address}", "tunnel transform-set ts", "exit"]
    for line in lines:
        assert s.execute(line).ok, line
    assert lifetimes(s) == {"a": (28800, 102400), "b": (28800, 102400)}
    assert s.execute("ipsec lifetime seconds 3600 kilobytes 5000").ok
    assert lifetimes(s) == {"a": (3600, 5000), "b": (3600, 5000)}
    for line in ("interface tunnel ipsec:b", "tunnel lifetime seconds 600"):
        assert s.execute(line).ok
    assert lifetimes(s) == {"a": (3600, 5000), "b": (600, 5000)}
    assert s.execute("ipsec lifetime kilobytes 7000").ok  # b keeps what it was given
    assert lifetimes(s) == {"a": (3600, 7000), "b": (600, 5000)}
    assert s.execute("interface tunnel ipsec:b").ok and s.execute("no tunnel lifetime").ok
    assert lifetimes(s) == {"a": (3600, 7000), "b": (3600, 7000)}
