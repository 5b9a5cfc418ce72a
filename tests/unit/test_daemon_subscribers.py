"""The daemon's side of dynamic subscribers (issue 16, daemon/subscribers.py).

The engine's events are stood in for by dataclasses with the contract's
fields (docs/INTERNALS.md, "Subscribers"); the data plane is the memory one; users
are local, or a RADIUS client whose answers the test gives."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ipsecgw.aaa.radius import AccountingRecord, AuthReply, RadiusClient, RadiusServer
from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session
from ipsecgw.daemon.subscribers import (
    Grant,
    Refusal,
    SubscriberManager,
    interface_name,
)
from ipsecgw.dataplane.memory import MemoryDataPlane

Address = tuple[str, int]
PEER = ("192.0.2.9", 4500)


@dataclass(frozen=True)
class LoginRequested:  # stand-in for isakmp.events.SubscriberLoginRequested
    subscriber: int
    profile: str
    peer: Address
    local: Address
    identity: str
    username: str | None
    password: str | None


@dataclass(frozen=True)
class Up:  # SubscriberUp
    subscriber: int
    tunnel: str
    profile: str
    peer: Address
    local: Address
    identity: str
    username: str | None
    address: str


@dataclass(frozen=True)
class Down:  # SubscriberDown
    subscriber: int
    tunnel: str
    profile: str
    address: str | None
    reason: str


class ScriptedRadius(RadiusClient):
    """RADIUS answers set by the test (the real client is tested against FreeRADIUS)."""

    def __init__(self, reply: AuthReply) -> None:
        super().__init__()
        self.reply = reply

    async def authenticate(self, servers: tuple[RadiusServer, ...], username: str,
                           password: str, *, calling_station: str | None = None) -> AuthReply:
        return self.reply


def config(*extra: str) -> FakeGateway:
    session = Session(FakeGateway())
    for line in ["conf t", "ip local pool p 10.200.0.1 10.200.0.2", "username alice password pw",
                 "username bob password pw2", "username carol password pw3",
                 *extra, "ipsec tunnel-profile remote", "local-endpoint 10.99.0.1",
                 "ip pool p", "dns primary 10.98.1.53", "domain-suffix example.net",
                 "local-network 10.98.1.0/24"]:
        assert session.execute(line).ok, line
    assert isinstance(session.gateway, FakeGateway)
    return session.gateway


class Harness:
    def __init__(self, gateway: FakeGateway, radius: RadiusClient | None = None) -> None:
        self.dataplane = MemoryDataPlane()
        self.answers: list[tuple[str, int, Grant | Refusal]] = []
        self.now = 1000.0  # the manager's monotonic clock, advanced by the test
        self.manager = SubscriberManager(self.dataplane, lambda *a: self.answers.append(a),
                                         radius=radius, clock=lambda: self.now)
        self.manager.configure(gateway.config)

    async def login(self, subscriber: int, user: str | None, password: str | None) -> None:
        self.manager.login_requested("default", LoginRequested(
            subscriber, "remote", PEER, ("10.99.0.1", 4500), "vpngroup", user, password))
        for _ in range(10):
            await asyncio.sleep(0)


def test_a_local_user_gets_a_pool_address_an_interface_and_gives_both_back() -> None:
    async def run() -> None:
        h = Harness(config())
        await h.login(1, "alice", "pw")
        assert h.answers == [("default", 1, Grant("10.200.0.1", dns=("10.98.1.53",),
                                                  domain="example.net",
                                                  split_networks=("10.98.1.0/24",)))]
        h.manager.up("default", Up(1, "remote:1", "remote", PEER, ("10.99.0.1", 4500),
                                   "vpngroup", "alice", "10.200.0.1"))
        spec = h.dataplane.tunnels["remote:1"]
        assert spec.remote_networks == ("10.200.0.1/32",) and spec.ifname == interface_name(1)
        assert spec.mtu == 1400 and spec.transport_vr == "default"
        [info] = h.manager.subscribers()
        assert (info.username, info.address, info.interface, info.peer) == (
            "alice", "10.200.0.1", "ipsec:remote:1", "192.0.2.9:4500")
        assert [p.in_use for p in h.manager.pool_usage()] == [1]
        h.manager.down("default", Down(1, "remote:1", "remote", "10.200.0.1", "deleted by peer"))
        assert "remote:1" not in h.dataplane.tunnels
        assert h.manager.subscribers() == [] and [p.in_use for p in h.manager.pool_usage()] == [0]
        assert h.manager.statistics()["default"]["aaa_logins_accepted"] == 1

    asyncio.run(run())


def test_refusals_wrong_password_no_credentials_and_exhausted_pool() -> None:
    async def run() -> None:
        h = Harness(config())
        await h.login(1, "alice", "wrong")
        await h.login(2, None, None)
        await h.login(3, "alice", "pw")
        await h.login(4, "bob", "pw2")
        await h.login(5, "carol", "pw3")
        reasons = {n: a.reason for _, n, a in h.answers if isinstance(a, Refusal)}
        assert reasons == {1: "wrong user name or password (local)",
                           2: "no XAUTH user name or password",
                           5: "pool p exhausted (2 addresses in use)"}
        stats = h.manager.statistics()["default"]
        assert (stats["aaa_logins_refused"], stats["aaa_logins_accepted"],
                stats["subscriber_logins_refused"]) == (2, 3, 3)

    asyncio.run(run())


def test_radius_framed_address_is_used_and_reserved_in_the_pool() -> None:
    async def run() -> None:
        gateway = config("aaa authentication xauth radius", "radius authentication server 10.0.0.5",
                         "key k", "exit")
        h = Harness(gateway, ScriptedRadius(AuthReply(True, "10.0.0.5", "10.200.0.2")))
        await h.login(1, "dave", "x")
        await h.login(2, "erin", "y")  # RADIUS gives the same address again
        answers = {n: a for _, n, a in h.answers}
        assert isinstance(answers[1], Grant) and answers[1].address == "10.200.0.2"
        assert answers[2] == Refusal("Framed-IP-Address 10.200.0.2 is lent to another subscriber")
        assert [p.in_use for p in h.manager.pool_usage()] == [1]
        # Outside the pool, RADIUS's address is used as given.
        h.manager.radius = ScriptedRadius(AuthReply(True, "10.0.0.5", "172.16.9.9"))
        await h.login(3, "frank", "z")
        assert h.answers[-1] == ("default", 3, Grant("172.16.9.9", dns=("10.98.1.53",),
                                                     domain="example.net",
                                                     split_networks=("10.98.1.0/24",)))

    asyncio.run(run())


def test_a_subscriber_that_goes_during_its_login_holds_nothing() -> None:
    async def run() -> None:
        gateway = config("aaa authentication xauth radius", "radius authentication server 10.0.0.5",
                         "key k", "exit")

        class Slow(RadiusClient):
            async def authenticate(self, *args: object, **kwargs: object) -> AuthReply:
                await asyncio.sleep(3600)
                raise AssertionError("never answered")

        h = Harness(gateway, Slow())
        await h.login(1, "alice", "pw")
        h.manager.down("default", Down(1, "remote:1", "remote", None, "phase 1 deleted"))
        await asyncio.sleep(0)
        assert h.answers == [] and h.manager.subscribers() == []
        assert [p.in_use for p in h.manager.pool_usage()] == [0]

    asyncio.run(run())


class RecordingRadius(RadiusClient):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[AccountingRecord] = []

    async def account(self, servers: tuple[RadiusServer, ...], record: AccountingRecord) -> str:
        self.records.append(record)
        return servers[0].address


def test_interim_updates_and_the_stops_of_a_daemon_that_stops() -> None:
    async def run() -> None:
        radius = RecordingRadius()
        h = Harness(config("radius accounting server 10.0.0.5", "key k", "exit"), radius)
        await h.login(1, "alice", "pw")
        h.manager.up("default", Up(1, "remote:1", "remote", PEER, ("10.99.0.1", 4500),
                                   "vpngroup", "alice", "10.200.0.1"))
        h.manager.send_interims(h.now)  # just started: not yet
        h.now += 601  # the default interval: 10 minutes
        h.manager.send_interims(h.now)
        h.manager.stopping()
        h.manager.down("default", Down(1, "remote:1", "remote", "10.200.0.1", "cleared"))
        await h.manager.finish_accounting()
        assert [(r.status, r.terminate_cause) for r in radius.records] == [
            ("start", None), ("interim", None), ("stop", "nas-reboot")]
        assert len({r.session_id for r in radius.records}) == 1

    asyncio.run(run())


class ScriptedAccountedRadius(ScriptedRadius, RecordingRadius):
    """RADIUS answers set by the test, and the accounting records kept."""


async def _interim_times(h: Harness, radius: RecordingRadius, minutes: int) -> list[int]:
    """Log alice in, let `minutes` pass a minute at a time (the runtime polls
    more often), and return when (seconds into the session) each
    Interim-Update was sent."""
    await h.login(1, "alice", "pw")
    h.manager.up("default", Up(1, "remote:1", "remote", PEER, ("10.99.0.1", 4500),
                               "vpngroup", "alice", "10.200.0.1"))
    for _ in range(minutes):
        h.now += 60
        h.manager.send_interims(h.now)
    await h.manager.finish_accounting()
    return [r.session_time for r in radius.records if r.status == "interim"]


ACCOUNTING = ("radius accounting server 10.0.0.5", "key k", "exit")


def test_interim_updates_follow_aaa_user_accounting_interval() -> None:
    async def run() -> None:
        radius = RecordingRadius()
        h = Harness(config(*ACCOUNTING, "aaa user accounting interval 15"), radius)
        assert await _interim_times(h, radius, 40) == [900, 1800]
        # Back to the default: every 10 minutes.
        radius = RecordingRadius()
        h = Harness(config(*ACCOUNTING, "aaa user accounting interval 15",
                           "no aaa user accounting interval"), radius)
        assert await _interim_times(h, radius, 40) == [600, 1200, 1800, 2400]

    asyncio.run(run())


def test_radius_acct_interim_interval_wins_over_the_configured_one() -> None:
    async def run() -> None:
        gateway = config(*ACCOUNTING, "aaa authentication xauth radius",
                         "radius authentication server 10.0.0.5", "key k", "exit",
                         "aaa user accounting interval 30")
        radius = ScriptedAccountedRadius(AuthReply(True, "10.0.0.5", interim_interval=300))
        h = Harness(gateway, radius)
        assert await _interim_times(h, radius, 16) == [300, 600, 900]

    asyncio.run(run())


def test_radius_requests_go_to_each_server_from_its_vr() -> None:
    async def run() -> None:
        radius = RecordingRadius()
        h = Harness(config("virtual-router vr7", *ACCOUNTING, "virtual-router default"), radius)
        sent: list[tuple[str | None, ...]] = []

        async def account(servers: tuple[RadiusServer, ...], record: AccountingRecord) -> str:
            sent.append(tuple(s.vr for s in servers))
            return servers[0].address

        radius.account = account  # type: ignore[method-assign]
        await _interim_times(h, radius, 0)
        assert sent == [("vr7",)]  # the Start, from VR vr7

    asyncio.run(run())
