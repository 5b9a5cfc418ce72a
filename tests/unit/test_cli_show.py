"""Show renderers: formats scripts rely on, VR scope, no secrets."""

from __future__ import annotations

from dataclasses import replace

from test_cli_clear_sa import up

from ipsecgw.cli import show
from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session
from ipsecgw.status import TunnelState, VrStatistics


def test_duration() -> None:
    assert show.duration(0) == "0:00:00"
    assert show.duration(3725.9) == "1:02:05"
    assert show.duration(90061) == "1d 01:01:01"
    assert show.duration(-5) == "0:00:00"


def test_tunnel_rows_have_the_state_second() -> None:
    """Scripts (and the interop tests) read the state as the second word of a row."""
    rows = show.tunnels(
        [up("a"), replace(up("b"), state=TunnelState.DOWN, up_since=None)], now=1060.0
    )
    lines = rows.splitlines()
    assert lines[2].split()[:2] == ["ipsec:a", "up"] and lines[2].split()[-1] == "0:01:00"
    assert lines[3].split()[:2] == ["ipsec:b", "down"]
    assert "up" not in "\n".join([lines[0], lines[1], lines[3]]).split()


def test_several_transport_vrs_get_a_column() -> None:
    text = show.tunnels([up("a"), up("b", vr="vr2")], now=1000.0)
    assert text.splitlines()[0].endswith("Transport VR")
    assert text.splitlines()[3].endswith("vr2")


def test_statistics_known_counters_first_then_the_rest() -> None:
    stats = [VrStatistics("default", {"zeta": 1, "invalid_cookie_sent": 2, "messages_received": 3})]
    lines = show.statistics(stats).splitlines()
    assert lines[0] == "Virtual router default"
    assert [line.split()[0] for line in lines[1:]] == ["Messages", "Invalid", "Zeta"]
    assert show.statistics([]) == "No statistics"


def test_scope() -> None:
    assert show.in_scope("default", "vr2") and show.in_scope("vr2", "vr2")
    assert not show.in_scope("vr2", "default")


def test_no_show_command_prints_a_secret() -> None:
    gateway = FakeGateway()
    gateway.counters = {"default": {"messages_received": 1}}
    s = Session(gateway)
    for line in [
        "configure terminal",
        "ipsec key manual pre-share 10.0.0.2",
        "key TopSecretPSK",
        "interface tunnel ipsec:a",
        "tunnel destination 10.0.0.2",
        "end",
    ]:
        assert s.execute(line).ok
    gateway.status["a"] = up("a")
    shows = [h for h, _ in s.help("show ipsec ").items] + ["configuration"]
    for what in shows:
        prefix = "show ipsec " if what != "configuration" else "show "
        result = s.execute(prefix + what)
        assert result.ok, what
        assert "TopSecretPSK" not in result.output
    assert "TopSecretPSK" not in s.execute("show ipsec tunnel ipsec:a detail").output


def configured(*lines: str) -> tuple[FakeGateway, Session]:
    """A session on a fake gateway after `lines`, each of which must succeed."""
    gateway = FakeGateway()
    s = Session(gateway)
    for line in lines:
        assert s.execute(line).ok, line
    return gateway, s


def test_show_in_a_vr_context_sees_only_that_vr() -> None:
    gateway, s = configured(
        "conf t",
        "interface tunnel ipsec:a",
        "exit",
        "virtual-router vr2",
        "interface tunnel ipsec:b",
        "end",
    )
    gateway.status = {"a": up("a"), "b": up("b", vr="vr2")}
    gateway.counters = {"default": {"messages_received": 1}, "vr2": {"messages_received": 2}}
    assert "ipsec:a" not in s.execute("show ipsec tunnel").output
    assert "Virtual router default" not in s.execute("show ipsec statistics").output
    assert [sa.tunnel for sa in gateway.ike_sas()] == ["a", "b"]
    assert "ipsec:a" not in s.execute("show ipsec ike-sa").output
    assert "ipsec:b" in s.execute("show ipsec sa").output
    assert s.execute("show ipsec tunnel ipsec:a").ok, "a named tunnel is shown from any context"
    s.execute("virtual-router default")
    both = s.execute("show ipsec tunnel").output
    assert "ipsec:a" in both and "ipsec:b" in both


def test_tunnel_summary_counts_each_state_in_scope() -> None:
    gateway, s = configured(
        "conf t",
        "interface tunnel ipsec:a",
        "exit",
        "interface tunnel ipsec:summary",  # a tunnel may be called that: ipsec:summary
        "exit",
        "interface tunnel ipsec:off",
        "shutdown",
        "exit",
        "virtual-router vr2",
        "interface tunnel ipsec:b",
        "end",
    )
    gateway.status = {
        "a": up("a"),
        "summary": replace(up("summary"), state=TunnelState.NEGOTIATING),
        "b": up("b", vr="vr2"),
    }
    # The session is in VR vr2's context: only its tunnel counts.
    assert s.execute("show ipsec tunnel summary").output.splitlines()[0] == "IPsec tunnels: 1"
    s.execute("virtual-router default")
    out = s.execute("show ipsec tunnel summary").output.splitlines()
    assert out[0] == "IPsec tunnels: 4"
    counts = {line.split()[0]: int(line.split()[1]) for line in out[1:]}
    # "off" is not reported by the gateway: the configuration says disabled.
    assert counts == {"up": 2, "negotiating": 1, "down": 0, "disabled": 1}
    assert s.execute("show ipsec tunnel ipsec:summary").output.splitlines()[2].split()[1] == (
        "negotiating"
    )
