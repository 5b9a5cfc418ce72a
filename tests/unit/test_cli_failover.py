"""`tunnel destination PRIMARY backup BACKUP` (tunnel failover) at the CLI."""

from __future__ import annotations

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.loader import load_config_text
from ipsecgw.cli.session import Session
from ipsecgw.config.render import render
from ipsecgw.daemon.translate import engine_policies


def tunnel_session() -> Session:
    session = Session(FakeGateway())
    for line in ("configure terminal", "ipsec transform-set ts esp-aes128-hmac-sha",
                 "interface tunnel ipsec:t1", "tunnel source 10.99.0.1",
                 "tunnel transform-set ts"):
        assert session.execute(line).ok, line
    return session


def destinations(session: Session) -> tuple[str | None, str | None]:
    tunnel = session.gateway.config.tunnel("t1")
    assert tunnel is not None
    return tunnel.destination, tunnel.backup_destination


def test_backup_destination_is_set_rendered_loaded_and_translated() -> None:
    s = tunnel_session()
    assert s.execute("tunnel destination 10.99.0.2 backup 10.99.0.3").ok
    assert destinations(s) == ("10.99.0.2", "10.99.0.3")
    text = render(s.gateway.config)
    assert " tunnel destination 10.99.0.2 backup 10.99.0.3" in text.splitlines()
    loaded, errors = load_config_text(text)
    assert not errors and loaded == s.gateway.config
    policy = engine_policies(loaded, lambda name: name)["default"].tunnels[0]
    assert (policy.peer_address, policy.backup_address) == ("10.99.0.2", "10.99.0.3")
    # The plain form still works and drops the backup.
    assert s.execute("tunnel destination 10.99.0.4").ok
    assert destinations(s) == ("10.99.0.4", None)


def test_backup_equal_to_primary_is_refused() -> None:
    s = tunnel_session()
    assert s.execute("tunnel destination 10.99.0.2").ok
    result = s.execute("tunnel destination 10.99.0.5 backup 10.99.0.5")
    assert not result.ok and "must differ" in (result.error or "")
    assert result.caret == len("tunnel destination 10.99.0.5 backup ")
    assert destinations(s) == ("10.99.0.2", None)


def test_no_forms() -> None:
    s = tunnel_session()
    assert s.execute("tunnel destination 10.99.0.2 backup gw3.example.com").ok
    refused = s.execute("no tunnel destination 10.99.0.2 backup 10.99.0.9")
    assert not refused.ok and "backup destination is not 10.99.0.9" in (refused.error or "")
    refused = s.execute("no tunnel destination 10.99.0.7")
    assert not refused.ok and "tunnel destination is not 10.99.0.7" in (refused.error or "")
    assert destinations(s) == ("10.99.0.2", "gw3.example.com")
    assert s.execute("tunnel destination 10.99.0.2").ok  # drops the backup only
    assert destinations(s) == ("10.99.0.2", None)
    assert s.execute("tunnel destination 10.99.0.2 backup 10.99.0.3").ok
    assert s.execute("no tunnel destination 10.99.0.2 backup").ok
    assert destinations(s) == (None, None)
    assert s.execute("tunnel destination 10.99.0.2 backup 10.99.0.3").ok
    assert s.execute("no tunnel destination 10.99.0.2 backup 10.99.0.3").ok
    assert destinations(s) == (None, None)
    assert s.execute("tunnel destination 10.99.0.2 backup 10.99.0.3").ok
    assert s.execute("no tunnel destination").ok
    assert destinations(s) == (None, None)


def test_detail_shows_the_active_destination_and_the_switchovers() -> None:
    from ipsecgw.cli import show
    from ipsecgw.status import TunnelState, TunnelStatus

    s = tunnel_session()
    assert s.execute("tunnel destination 10.99.0.2 backup 10.99.0.3").ok
    status = TunnelStatus(name="t1", vr="default", state=TunnelState.UP, local="10.99.0.1",
                          peer="10.99.0.3", transform="esp-aes256-hmac-sha256", up_since=990.0,
                          backup="10.99.0.2", on_backup=True, switchovers=1,
                          last_switchover=(985.0, "dead peer (DPD)"))
    text = show.tunnel_detail(status, s.gateway.config, 1000.0)
    assert "  Destinations: primary 10.99.0.2, backup 10.99.0.3; active: backup (10.99.0.3)" \
        in text.splitlines()
    assert "  Switchovers: 1, last 0:00:15 ago: dead peer (DPD)" in text.splitlines()
