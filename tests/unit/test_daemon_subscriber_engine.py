"""The daemon's seam with the engine's subscriber classes (docs/INTERNALS.md, "Subscribers"):
profiles reach the engine policy, events reach the manager, answers reach
the engine. Needs the engine's side of issue 16 (branch subs-engine)."""

from __future__ import annotations

import asyncio
from typing import Any

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.session import Session
from ipsecgw.config.model import RunningConfig
from ipsecgw.daemon.subscriber_engine import deliver, dispatch
from ipsecgw.daemon.subscribers import Refusal, SubscriberManager
from ipsecgw.daemon.translate import engine_policies
from ipsecgw.dataplane.memory import MemoryDataPlane
from ipsecgw.isakmp import events as ev
from ipsecgw.isakmp.policy import Identity, IdentityPattern


def configured() -> RunningConfig:
    session = Session(FakeGateway())
    for line in ["conf t", "ipsec lifetime seconds 7200", "ip local pool p 10.200.0.1 10.200.0.9",
                 "username alice password pw", "ipsec tunnel-profile remote",
                 "local-endpoint 10.99.0.1 transport-virtual-router vr9",
                 'ike peer-identity key-id "vpn*"', "ike local-identity key-id gw",
                 "pre-share groupkey", "transform esp-3des-hmac-md5", "local-network 10.98.1.0/24",
                 "ip pool p", "dns primary 10.98.1.53", "xauth none", "max-interfaces 3",
                 "mode-config push",
                 "exit", "ipsec tunnel-profile idle"]:
        assert session.execute(line).ok, line
    return session.gateway.config


def test_profiles_with_a_local_endpoint_reach_the_engine_of_their_vr() -> None:
    policies = engine_policies(configured(), lambda name: name)
    assert list(policies) == ["vr9"]  # the profile without an endpoint accepts nothing
    policy = policies["vr9"]
    assert policy.local_addresses == ("10.99.0.1",)
    [profile] = policy.profiles
    assert profile.name == "remote" and profile.local_address == "10.99.0.1"
    assert profile.peer_identity == IdentityPattern("key-id", "vpn*")
    assert profile.local_identity == Identity("key-id", "gw")
    assert profile.psk == b"groupkey" and profile.transforms == ("esp-3des-hmac-md5",)
    assert (profile.lifetime_seconds, profile.lifetime_kilobytes) == (7200, 102400)
    assert profile.local_networks == ("10.98.1.0/24",) and profile.dns == ("10.98.1.53",)
    assert (profile.xauth, profile.max_interfaces, profile.mtu) == (False, 3, 1400)
    assert profile.mode_config == "push"


class FakeEngine:
    def __init__(self) -> None:
        self.results: list[tuple[int, bool, Any, str]] = []

    def subscriber_login_result(self, subscriber: int, now: float, *, accepted: bool,
                                assignment: Any = None, reason: str = "") -> None:
        self.results.append((subscriber, accepted, assignment, reason))


def test_events_reach_the_manager_and_answers_the_engine() -> None:
    async def run() -> None:
        engine = FakeEngine()
        dataplane = MemoryDataPlane()
        manager = SubscriberManager(
            dataplane, lambda vr, n, answer: deliver(engine, n, answer, 1.0))  # type: ignore[arg-type]
        manager.configure(configured())
        peer, local = ("192.0.2.9", 4500), ("10.99.0.1", 4500)
        assert dispatch(manager, "vr9", ev.SubscriberLoginRequested(
            1, "remote", peer, local, "vpngroup", None, None))
        for _ in range(5):
            await asyncio.sleep(0)
        [(subscriber, accepted, assignment, _)] = engine.results
        assert (subscriber, accepted) == (1, True)
        assert assignment == ev.SubscriberAssignment(
            address="10.200.0.1", dns=("10.98.1.53",), split_networks=("10.98.1.0/24",))
        assert dispatch(manager, "vr9", ev.SubscriberUp(
            1, "remote:1", "remote", peer, local, "vpngroup", None, "10.200.0.1"))
        assert "remote:1" in dataplane.tunnels
        assert dispatch(manager, "vr9", ev.SubscriberDown(
            1, "remote:1", "remote", "10.200.0.1", "deleted by peer"))
        assert "remote:1" not in dataplane.tunnels
        assert not dispatch(manager, "vr9", ev.PeerDead("t", peer))
        deliver(engine, 2, Refusal("pool p exhausted"), 1.0)  # type: ignore[arg-type]
        assert engine.results[-1] == (2, False, None, "pool p exhausted")

    asyncio.run(run())
