"""Many identities behind one address: the responder's work per new tunnel stays flat.

A carrier NAT with road warriors (or the load generator's identities at one
address) puts thousands of phase 1 and IPsec SAs under one peer address.  Each
road warrior starts fresh, so each phase 1 carries INITIAL-CONTACT, which must
remove only that identity's older SAs; and no lookup made per message may scan
the address's SAs (registry.py).  The work is counted as the Python lines the
responder executes per tunnel (a line trace: deterministic, unlike a clock),
for a sample of tunnels early and late in the run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from engine_helpers import A_IP, B_IP, NAT_IP, PSK, check_registry, rng, tunnel

from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.events import (
    Event,
    IpsecSaDeleted,
    IpsecSaEstablished,
    Phase1Deleted,
    Phase1Established,
)
from ipsecgw.isakmp.policy import Address, EnginePolicy, Identity, IkeRule
from ipsecgw.isakmp.registry import Registry, peer_entity
from ipsecgw.isakmp.sa import IkeSa, P1State, Role
from ipsecgw.status import TunnelState

RULES = (IkeRule(group=19),)
COUNT = 2000
SAMPLE = 20  # tunnels traced early (from EARLY on) and at the end of the run
EARLY = 200
B_NETWORK = "10.98.2.0/24"


def _network(index: int) -> str:
    return f"10.{101 + index // 65536}.{index // 256 % 256}.{index % 256}/32"


def _road_warrior(index: int, seed: int) -> Engine:
    policy = EnginePolicy(
        vr=f"rw{index}", local_addresses=(A_IP,), ike_rules=RULES, preshared_keys={B_IP: PSK},
        tunnels=(tunnel("gw", A_IP, B_IP, local_network=_network(index),
                        remote_network=B_NETWORK,
                        local_identity=Identity("domain-name", f"rw{index}.example")),))
    return Engine(policy, rng=rng(seed))


def _concentrator(count: int) -> Engine:
    tunnels = tuple(tunnel(f"rw{index}", B_IP, NAT_IP, local_network=B_NETWORK,
                           remote_network=_network(index), initiate=False)
                    for index in range(count))
    return Engine(EnginePolicy(vr="b", local_addresses=(B_IP,), ike_rules=RULES,
                               preshared_keys={NAT_IP: PSK}, tunnels=tunnels), rng=rng(7))


class LineCounter:
    """Counts the Python lines executed while active (loop iterations included:
    a jump back to a line is a new line event)."""

    def __init__(self) -> None:
        self.lines = 0

    def _local(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event == "line":
            self.lines += 1
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        return self._local

    def run(self, call: Callable[[], None]) -> None:
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            call()
        finally:
            sys.settrace(previous)


class OneAddress:
    """Road warriors booted one after another behind NAT_IP, each on its own ports;
    only the one booting talks (the others are idle and are let go)."""

    def __init__(self, count: int) -> None:
        self.b = _concentrator(count)
        self.events: list[Event] = []
        self.now = 0.0

    def _drain(self, engine: Engine, sink: list[Event]) -> None:
        while (event := engine.next_event()) is not None:
            sink.append(event)

    def bring_up(self, index: int, seed: int, counter: LineCounter | None = None) -> list[Event]:
        """Boot road warrior `index` and exchange messages until quiet; its events."""
        self.now += 0.01  # every first message strictly later than the last
        host, host_events = _road_warrior(index, seed), []
        ports = {500: 20000 + 2 * index, 4500: 20001 + 2 * index}
        inside = {port: local for local, port in ports.items()}
        host.handle_timer(self.now)
        for _ in range(50):
            outgoing = host.datagrams_to_send(self.now)
            if not outgoing:
                break
            for datagram in outgoing:
                source: Address = (NAT_IP, ports[datagram.local[1]])
                replies: list[Any] = []

                def responder(data: bytes = datagram.data, local: Address = datagram.remote,
                              remote: Address = source, replies: list[Any] = replies) -> None:
                    self.b.receive_datagram(data, local, remote, self.now)
                    replies.extend(self.b.datagrams_to_send(self.now))

                if counter is None:
                    responder()
                else:
                    counter.run(responder)
                for reply in replies:
                    assert reply.remote[0] == NAT_IP
                    host.receive_datagram(reply.data, (A_IP, inside[reply.remote[1]]),
                                          reply.local, self.now)
        self._drain(host, host_events)
        self._drain(self.b, self.events)
        return host_events


def _established(events: list[Event]) -> tuple[int, int]:
    return (sum(isinstance(e, Phase1Established) for e in events),
            sum(isinstance(e, IpsecSaEstablished) for e in events))


def test_thousands_of_identities_behind_one_address() -> None:
    net = OneAddress(COUNT)
    early, late = LineCounter(), LineCounter()
    for index in range(COUNT):
        counter = early if EARLY <= index < EARLY + SAMPLE else \
            late if index >= COUNT - SAMPLE else None
        assert _established(net.bring_up(index, seed=index + 1, counter=counter)) == (1, 1)
    assert _established(net.events) == (COUNT, COUNT)
    assert not [e for e in net.events if isinstance(e, (IpsecSaDeleted, Phase1Deleted))]
    assert set(net.b.tunnel_states().values()) == {TunnelState.UP}
    sas = net.b._sas
    assert len(sas.ike_of_peer((B_IP, NAT_IP))) == COUNT
    assert len(sas.children_of_peer((B_IP, NAT_IP))) == COUNT
    # A tunnel set up with ~2,000 SAs at the address costs what one with ~200 did
    # (a scan of the address's SAs per tunnel, as INITIAL-CONTACT's used to be,
    # made the late ones cost several times the early ones).
    assert early.lines > 0 and late.lines < 1.3 * early.lines, (early.lines, late.lines)
    # One of them restarts: its INITIAL-CONTACT removes its own old SAs only.
    before = len(net.events)
    old = {child.inbound_spi for child in sas.children_of_tunnel("rw7")}
    assert _established(net.bring_up(7, seed=99_999)) == (1, 1)
    removed = net.events[before:]
    assert [e.reason for e in removed if isinstance(e, Phase1Deleted)] == ["initial contact"]
    assert {e.inbound_spi for e in removed if isinstance(e, IpsecSaDeleted)} == old
    assert len(sas.ike_of_peer((B_IP, NAT_IP))) == COUNT
    assert set(net.b.tunnel_states().values()) == {TunnelState.UP}
    newest = sas.ike_of_peer((B_IP, NAT_IP))[-1]  # rw7's new phase 1, its entity's only one
    assert sas.ike_of_entity((B_IP, NAT_IP), peer_entity(newest.peer_id)) == [newest]


def _phase1(cookie: bytes, role: Role, established_at: float | None) -> IkeSa:
    ike = IkeSa(cookie, bytes(7) + b"\x01", role, "main", P1State.MM_I1, (B_IP, 500),
                (NAT_IP, 500), 0.0)
    if established_at is not None:
        ike.state, ike.established_at = P1State.ESTABLISHED, established_at
    return ike


def _registry(*ikes: IkeSa) -> Registry:
    sas = Registry()
    for ike in ikes:
        sas.add_ike(ike)
    return sas


def test_newest_phase1_ties_and_replacement() -> None:
    key = (B_IP, NAT_IP)
    first = _phase1(b"first-p1", Role.RESPONDER, 5.0)
    tied = _phase1(b"tied--p1", Role.RESPONDER, 5.0)  # established at the same moment
    older = _phase1(b"older-p1", Role.INITIATOR, 3.0)
    pending = _phase1(b"pendingX", Role.INITIATOR, None)
    sas = _registry(first, tied, older, pending)
    assert sas.newest_ike(key, replaced=False) is first  # the first added among equals
    assert sas.initiating_of_peer(key) == [pending] and sas.phase1_in_progress(key)
    sas.rekeyed(first)
    assert sas.newest_ike(key, replaced=False) is tied
    assert sas.newest_ike(key, replaced=True) is first
    sas.rekeyed(older)
    assert sas.replaced_ike(key) == [first, older]
    pending.state, pending.established_at = P1State.ESTABLISHED, 9.0
    sas.established(pending)
    assert sas.newest_ike(key, replaced=False) is pending and not sas.phase1_in_progress(key)
    check_registry(sas)
    for ike in (pending, tied, first):
        sas.remove_ike(ike)
        check_registry(sas)
    assert sas.newest_ike(key, replaced=False) is None
    assert sas.newest_ike(key, replaced=True) is older
    # Churn under a long-lived newest member keeps the heap compact.
    for step in range(500):
        ike = _phase1(step.to_bytes(8, "big"), Role.RESPONDER, 1.0)
        sas.add_ike(ike)
        sas.rekeyed(ike)
        sas.remove_ike(ike)
    assert len(sas._replaced_by_peer[key]._heap) < 50
    check_registry(sas)


def test_one_wide_responder_tunnel_keeps_an_sa_per_road_warrior() -> None:
    """One responder-only tunnel whose remote network covers every road warrior's
    /32: each Quick Mode brings its own selectors, and a new SA replaces only the
    SAs for the same selectors (a rekey), never another road warrior's."""
    count = 50
    net = OneAddress(0)
    net.b = Engine(EnginePolicy(
        vr="b", local_addresses=(B_IP,), ike_rules=RULES, preshared_keys={NAT_IP: PSK},
        tunnels=(tunnel("wide", B_IP, NAT_IP, local_network=B_NETWORK,
                        remote_network="10.101.0.0/16", initiate=False),)), rng=rng(7))
    for index in range(count):
        assert _established(net.bring_up(index, seed=index + 1)) == (1, 1)
    children = net.b._sas.children_of_tunnel("wide")
    assert len(children) == count and not [c for c in children if c.superseded]
    assert {c.remote_network for c in children} == {_network(i) for i in range(count)}
    # Well past the rekey grace nothing has been deleted.
    net.b.handle_timer(net.now + 120)
    net._drain(net.b, net.events)
    assert not [e for e in net.events if isinstance(e, IpsecSaDeleted)]
    assert len(net.b._sas.children_of_tunnel("wide")) == count
