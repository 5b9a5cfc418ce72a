"""The daemon's subscriber manager against a real FreeRADIUS (issue 16): an
XAUTH login is checked by the server and gets its Framed-IP-Address, and the
subscriber's Accounting Start and Stop (with the interface's counters and
the cause) land in the server's detail log. The engine's events are stood in
for (their classes come with the engine's side of the issue); everything
after them is the daemon's real code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import require_interop

from ipsecgw.aaa.radius import RadiusClient
from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session
from ipsecgw.daemon.subscribers import Grant, Refusal, SubscriberManager
from ipsecgw.dataplane.base import TunnelCounters
from ipsecgw.dataplane.memory import MemoryDataPlane
from ipsecgw.tools import testbed as tb
from ipsecgw.tools import testbed_remote as tr

SECRET = "acct-s3cret"
PEER = ("192.0.2.9", 4500)


@dataclass(frozen=True)
class LoginRequested:
    subscriber: int
    profile: str
    peer: tuple[str, int]
    local: tuple[str, int]
    identity: str
    username: str | None
    password: str | None


@dataclass(frozen=True)
class Up:
    subscriber: int
    tunnel: str
    profile: str
    peer: tuple[str, int]
    local: tuple[str, int]
    identity: str
    username: str | None
    address: str


@dataclass(frozen=True)
class Down:
    subscriber: int
    tunnel: str
    profile: str
    address: str | None
    reason: str


class CountingDataPlane(MemoryDataPlane):
    """The memory data plane, with the counters a subscriber's traffic left."""

    def counters(self, tunnel: str) -> TunnelCounters:
        super().counters(tunnel)  # UnknownTunnel for a tunnel that is not there
        return TunnelCounters(inbound_bytes=4321, inbound_packets=7, outbound_bytes=8765,
                              outbound_packets=9)


@pytest.fixture
def radius() -> Iterator[tuple[tb.TwoSites, tr.FreeRadius]]:
    require_interop(("ip", tr.FREERADIUS))
    with tb.TwoSites("igwq") as sites, tr.FreeRadius(
        sites.b, clients={tb.SITE_A_OUTER: SECRET},
        users=[tr.RadiusUser("alice", "wonderland", "10.200.0.77")],
    ) as server:
        server.start()
        yield sites, server


def test_login_accounting_start_and_stop_with_counters(
        radius: tuple[tb.TwoSites, tr.FreeRadius]) -> None:
    sites, server = radius
    session = Session(FakeGateway())
    for line in ["conf t", "aaa authentication xauth radius",
                 f"radius authentication server {tb.SITE_B_OUTER}", f"key {SECRET}", "exit",
                 f"radius accounting server {tb.SITE_B_OUTER}", f"key {SECRET}", "exit",
                 "ipsec tunnel-profile remote", "local-endpoint 10.99.0.1"]:
        assert session.execute(line).ok, line

    async def run() -> list[tuple[str, int, Grant | Refusal]]:
        answers: list[tuple[str, int, Grant | Refusal]] = []
        dataplane = CountingDataPlane()
        manager = SubscriberManager(dataplane, lambda *a: answers.append(a),
                                    radius=RadiusClient(vr=sites.a.name))
        manager.configure(session.gateway.config)
        local = ("10.99.0.1", 4500)
        manager.login_requested("default", LoginRequested(
            1, "remote", PEER, local, "vpngroup", "alice", "wonderland"))
        manager.login_requested("default", LoginRequested(
            2, "remote", PEER, local, "vpngroup", "alice", "wrong"))
        deadline = time.monotonic() + 10
        while len(answers) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        manager.up("default", Up(1, "remote:1", "remote", PEER, local, "vpngroup", "alice",
                                 "10.200.0.77"))
        await manager.finish_accounting()  # Start answered before Stop goes (as in life)
        manager.down("default", Down(1, "remote:1", "remote", "10.200.0.77", "peer dead (DPD)"))
        await manager.finish_accounting()
        return answers

    answers = dict((n, a) for _, n, a in asyncio.run(run()))
    assert isinstance(answers[1], Grant) and answers[1].address == "10.200.0.77"
    assert isinstance(answers[2], Refusal)
    assert answers[2].reason.startswith(f"rejected by RADIUS server {tb.SITE_B_OUTER}")
    records = server.detail_records()
    assert [r["Acct-Status-Type"] for r in records] == ["Start", "Stop"]
    start, stop = records
    assert start["Acct-Session-Id"] == stop["Acct-Session-Id"]
    assert start["Calling-Station-Id"] == "192.0.2.9:4500"
    assert stop["Framed-IP-Address"] == "10.200.0.77" and stop["User-Name"] == "alice"
    assert (stop["Acct-Input-Octets"], stop["Acct-Output-Octets"]) == ("4321", "8765")
    assert (stop["Acct-Input-Packets"], stop["Acct-Output-Packets"]) == ("7", "9")
    assert stop["Acct-Terminate-Cause"] == "Lost-Carrier"
    assert stop["Acct-Authentic"] == "RADIUS"
