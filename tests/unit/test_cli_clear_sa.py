"""`ipsec clear sa` (SPEC 1.1) and the per-VR `ipsec option tx-invalid-cookie` (SPEC 1.2)."""

from __future__ import annotations

import pytest

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session
from ipsecgw.status import IkeSaStatus, IpsecSaStatus, TunnelState, TunnelStatus

CONFIG = [
    "configure terminal",
    "interface tunnel ipsec:Aottawa2boca",
    "tunnel destination 192.0.2.2",
    "exit",
    "interface tunnel ipsec:montreal",
    "tunnel destination 192.0.2.3",
    "exit",
    "virtual-router vr2",
    "interface tunnel ipsec:far",
    "end",
]


def ike(vr: str, tunnel: str) -> IkeSaStatus:
    return IkeSaStatus(
        vr=vr,
        local="192.0.2.1",
        remote="192.0.2.2",
        local_port=500,
        remote_port=500,
        initiator_cookie=bytes(range(8)),
        responder_cookie=bytes(range(8, 16)),
        role="initiator",
        state="established",
        exchange="main",
        authentication="pre-share",
        encryption="aes256",
        hash="sha256",
        group=14,
        lifetime_seconds=28800,
        remaining_seconds=28000,
        tunnel=tunnel,
    )


def ipsec(vr: str, tunnel: str) -> IpsecSaStatus:
    return IpsecSaStatus(
        vr=vr,
        tunnel=tunnel,
        inbound_spi=b"\xc1\xd2\xe3\xf4",
        outbound_spi=b"\x01\x02\x03\x04",
        protocol="esp",
        transform="esp-aes256-hmac-sha256",
        local_network="10.1.0.0/24",
        remote_network="10.2.0.0/24",
        encapsulation="tunnel",
        pfs_group=14,
        lifetime_seconds=3600,
        lifetime_kilobytes=102400,
        remaining_seconds=3000,
    )


def up(name: str, vr: str = "default") -> TunnelStatus:
    return TunnelStatus(
        name=name,
        vr=vr,
        state=TunnelState.UP,
        local="192.0.2.1",
        peer="192.0.2.2",
        transform="esp-aes256-hmac-sha256",
        up_since=1000.0,
        ike_sas=(ike(vr, name),),
        ipsec_sas=(ipsec(vr, name),),
    )


@pytest.fixture
def gateway() -> FakeGateway:
    gateway = FakeGateway()
    s = Session(gateway)
    for line in CONFIG:
        assert s.execute(line).ok, line
    gateway.status = {"Aottawa2boca": up("Aottawa2boca"), "far": up("far", "vr2")}
    return gateway


def run(gateway: FakeGateway, *lines: str) -> list[str]:
    s = Session(gateway)
    out = []
    for line in lines:
        result = s.execute(line)
        out.append(result.output if result.ok else result.error)
    return out


@pytest.mark.parametrize("prefix", [[], ["configure terminal"]])
def test_guide_examples_in_config_and_privileged_exec(
    gateway: FakeGateway, prefix: list[str]
) -> None:
    out = run(
        gateway,
        *prefix,
        "ipsec clear sa tunnel ipsec:Aottawa2boca phase 2",
        "ipsec clear sa all phase 2",
    )
    assert out[len(prefix) :] == ["1 SA cleared", "1 SA cleared"]
    assert gateway.cleared == [
        ("default", ("tunnel", "Aottawa2boca"), 2),
        (None, "all", 2),
    ]


@pytest.mark.parametrize(
    ("line", "call", "count"),
    [
        ("ipsec clear sa all", (None, "all", None), 4),
        ("ipsec clear sa all phase 1", (None, "all", 1), 2),
        ("ipsec clear sa tunnel ipsec:far", ("vr2", ("tunnel", "far"), None), 2),
        ("ipsec clear sa state up phase 1", (None, ("state", TunnelState.UP), 1), 2),
        ("ipsec clear sa state neg", (None, ("state", TunnelState.NEGOTIATING), None), 0),
        ("ipsec clear sa state down", (None, ("state", TunnelState.DOWN), None), 0),
        ("ipsec clear sa state disabled phase 2", (None, ("state", TunnelState.DISABLED), 2), 0),
        ("ip cl sa a p 1", (None, "all", 1), 2),
    ],
)
def test_every_form(gateway: FakeGateway, line: str, call: tuple[object, ...], count: int) -> None:
    (out,) = run(gateway, line)
    assert out == f"{count} SA{'' if count == 1 else 's'} cleared"
    assert gateway.cleared == [call]


def test_cleared_sas_are_renegotiated(gateway: FakeGateway) -> None:
    run(gateway, "ipsec clear sa tunnel ipsec:Aottawa2boca")
    status = {t.name: t for t in gateway.tunnels()}["Aottawa2boca"]
    assert status.state == TunnelState.NEGOTIATING and not status.ike_sas and not status.ipsec_sas
    assert run(gateway, "ipsec clear sa tunnel ipsec:Aottawa2boca") == ["0 SAs cleared"]


def test_in_a_virtual_router_context_only_that_vr_is_cleared(gateway: FakeGateway) -> None:
    assert run(gateway, "virtual-router vr2", "ipsec clear sa all")[1] == "2 SAs cleared"
    assert gateway.cleared == [("vr2", "all", None)]
    assert {t.name: t.state for t in gateway.tunnels()}["Aottawa2boca"] == TunnelState.UP


@pytest.mark.parametrize(
    "line",
    [
        "no ipsec clear sa all",
        "no ipsec clear sa tunnel ipsec:Aottawa2boca phase 2",
        "ipsec clear sa tunnel ipsec:nosuch",
        "ipsec clear sa state bogus",
        "ipsec clear sa state",
        "ipsec clear sa all phase 3",
        "ipsec clear sa",
    ],
)
def test_errors_clear_nothing(gateway: FakeGateway, line: str) -> None:
    s = Session(gateway)
    for prefix in ([], ["configure terminal"]):
        for setup in prefix:
            assert s.execute(setup).ok
        result = s.execute(line)
        assert not result.ok and result.error.startswith("%")
        assert "cleared" not in result.output
    assert gateway.cleared == []


def test_user_exec_cannot_clear(gateway: FakeGateway) -> None:
    assert run(gateway, "disable", "ipsec clear sa all")[1].startswith("% Invalid input")
    assert gateway.cleared == []


def test_tx_invalid_cookie_follows_the_vr_context(gateway: FakeGateway) -> None:
    run(gateway, "conf t", "virtual-router vr2", "ipsec option tx-invalid-cookie")
    assert gateway.config.options("vr2").tx_invalid_cookie
    assert not gateway.config.options("default").tx_invalid_cookie
    run(gateway, "conf t", "virtual-router vr2", "no ipsec option tx-invalid-cookie")
    assert not gateway.config.options("vr2").tx_invalid_cookie
