"""Thousands of tunnels at once: DPD spread, liveness, the initiator's half-open cap.

docs/BENCHMARKS.md ("Thousands of tunnels"): at 10,000 tunnels synchronised
DPD probes and retransmissions collapsed into a re-negotiation storm.  These
tests hold the engine to the measures taken against that.
"""

from __future__ import annotations

import gc
from collections import Counter
from dataclasses import replace
from typing import Any

from engine_helpers import A_IP, PSK, Pair, make_pair, many_tunnels, peer_address, tunnel

from ipsecgw.isakmp.dpd import DPD_JITTER, DPD_TICK
from ipsecgw.isakmp.events import IpsecSaDeleted, IpsecSaEstablished
from ipsecgw.isakmp.policy import DpdPolicy, EnginePolicy, IkeRule, TunnelPolicy

IDLE = 100.0
PROBING = DpdPolicy(idle=IDLE, silence=50.0, retry=5.0)
QUIET = DpdPolicy(enabled=False)


def _tunnels(count: int, peers: int | None = None, *, seed: int = 1,
             a: dict[str, Any] | None = None, b: dict[str, Any] | None = None) -> Pair:
    """A with `count` tunnels to `peers` addresses of B (tunnel i to the (i mod
    peers)-th; default one each, so each tunnel owns its phase 1).  B answers but
    never initiates, as a concentrator would: A alone brings the tunnels up."""
    peers = peers or count
    tunnels_a, tunnels_b = [], []
    for index in range(count):
        peer = peer_address(index % peers)
        a_net = f"10.{101 + index // 65536}.{index // 256 % 256}.{index % 256}/32"
        b_net = f"10.{111 + index // 65536}.{index // 256 % 256}.{index % 256}/32"
        tunnels_a.append(tunnel(f"t{index}", A_IP, peer, local_network=a_net,
                                remote_network=b_net))
        tunnels_b.append(tunnel(f"t{index}", peer, A_IP, local_network=b_net,
                                remote_network=a_net, initiate=False))
    rules = (IkeRule(group=19),)
    policy_a = EnginePolicy(vr="a", local_addresses=(A_IP,), ike_rules=rules,
                            preshared_keys={"0.0.0.0": PSK}, tunnels=tuple(tunnels_a))
    policy_b = EnginePolicy(vr="b", local_addresses=tuple(sorted({t.local_address
                                                                  for t in tunnels_b})),
                            ike_rules=rules, preshared_keys={A_IP: PSK},
                            tunnels=tuple(tunnels_b))
    return make_pair(replace(policy_a, **(a or {})), replace(policy_b, **(b or {})), seed=seed)


def _up_together(count: int, seed: int = 1) -> Pair:
    """`count` tunnels, each with its own phase 1, all established at time 0.
    Only A probes (B answers R-U-THERE but sends none of its own)."""
    pair = _tunnels(count, seed=seed, a={"dpd": PROBING}, b={"dpd": QUIET})
    pair.start()
    pair.advance(0)
    assert pair.now == 0.0
    assert {s.state for s in pair.a.tunnel_status(pair.now)} == {"up"}
    return pair


def _probe_times(pair: Pair, until: float) -> list[float]:
    """When A sends each R-U-THERE from now until `until`."""
    times: list[float] = []
    seen = {"sent": pair.a.statistics()["dpd_sent"]}

    def watch(p: Pair) -> None:
        sent = p.a.statistics()["dpd_sent"]
        times.extend([p.now] * (sent - seen["sent"]))
        seen["sent"] = sent

    pair.observer = watch
    pair.advance(until - pair.now)
    pair.observer = None
    return times


def test_dpd_probes_of_peers_that_came_up_together_are_spread() -> None:
    count = 1000
    pair = _up_together(count)
    times = _probe_times(pair, IDLE)
    # One probe per peer, each after the idle time less up to 20 %.
    assert len(times) == count
    assert min(times) >= IDLE * 0.8 and max(times) <= IDLE
    assert max(times) - min(times) >= IDLE * 0.15
    # Spread over the window: probes fall on DPD_TICK boundaries (peers due
    # within one tick share a wakeup), no tick carries much more than its
    # share, and no second more than a tenth of them (1,000 in one instant
    # without jitter).
    assert all(t / DPD_TICK == int(t / DPD_TICK) for t in times)
    ticks = IDLE * DPD_JITTER / DPD_TICK
    assert max(Counter(times).values()) <= 3 * count / ticks
    per_second = Counter(int(t) for t in times)
    assert len(per_second) >= 15 and max(per_second.values()) <= count // 10
    # Every probe was answered, and the peers stay up.
    assert pair.a.statistics()["dpd_ack_received"] == count
    assert {s.state for s in pair.a.tunnel_status(pair.now)} == {"up"}


def test_dpd_spread_follows_the_injected_random_source() -> None:
    first = _probe_times(_up_together(20, seed=5), IDLE)
    again = _probe_times(_up_together(20, seed=5), IDLE)
    other = _probe_times(_up_together(20, seed=6), IDLE)
    assert len(first) == 20 and first == again and first != other


def _watch_initiations(pair: Pair) -> tuple[list[str], list[int]]:
    """The tunnels A starts a phase 1 for, in order, and how many of A's phase 1
    attempts were in flight just before each (checked at the only place the
    number grows)."""
    started: list[str] = []
    in_flight: list[int] = []
    initiate = pair.a.initiate_phase1

    def watched(tunnel: TunnelPolicy, now: float, **kwargs: Any) -> Any:
        in_flight.append(pair.a._sas.initiating_count())
        started.append(tunnel.name)
        return initiate(tunnel, now, **kwargs)

    pair.a.initiate_phase1 = watched  # type: ignore[method-assign]
    return started, in_flight


def _count_fired(pair: Pair) -> Counter[str]:
    """What A's timers fire, by kind."""
    fired: Counter[str] = Counter()
    fire = pair.a._fire

    def counted(item: Any, now: float) -> None:
        fired[type(item).__name__] += 1
        fire(item, now)

    pair.a._fire = counted  # type: ignore[method-assign]
    return fired


def test_ten_thousand_tunnels_come_up_through_the_initiator_half_open_limit() -> None:
    """10,000 tunnels to 2,500 peers (four each: 2,500 phase 1s, 10,000 Quick
    Modes, in about 15 s; one phase 1 per tunnel would take twice that)."""
    count, peers = 10_000, 2_500
    pair = _tunnels(count, peers)
    limit = pair.a.policy.initiator_half_open_limit
    assert limit == 64
    started, in_flight = _watch_initiations(pair)
    fired = _count_fired(pair)
    gc.disable()  # a full collection among 10,000 tunnels' objects costs more than they do
    try:
        pair.start()
        pair.advance(0)
    finally:
        gc.enable()
    assert {s.state for s in pair.a.tunnel_status(pair.now)} == {"up"}
    assert {s.state for s in pair.b.tunnel_status(pair.now)} == {"up"}
    assert pair.now == 0.0  # no retransmission, no failure: nobody was overrun
    # Never more than the limit in flight; one phase 1 per peer, started in
    # configuration order by its first tunnel (the others use it).
    assert max(in_flight) == limit - 1
    assert started == [f"t{index}" for index in range(peers)]
    assert pair.a.statistics()["phase1_established"] == peers
    assert pair.a.statistics()["phase2_established"] == count
    assert pair.a.statistics()["retransmits"] == 0
    assert pair.b.statistics()["dropped_half_open_limit"] == 0
    # Waiting is free: each tunnel's timer fired once (to start or to queue);
    # the queue's own deadline once per round of freed slots, not per tunnel.
    assert fired["TunnelRuntime"] == count
    assert fired["Admission"] <= 2 * peers // limit


def test_timeouts_under_load_do_not_retry_in_lockstep() -> None:
    """B does not answer (overloaded, or gone): A's attempts time out, fail and
    start again, never more than the limit at once, and spread out in time."""
    count = 200
    pair = _tunnels(count)
    started, in_flight = _watch_initiations(pair)
    sent: list[float] = []

    def lost(direction: str, datagram: Any, index: int) -> int:
        if direction == "ab":
            sent.append(pair.now)
        return 0

    pair.filter = lost
    pair.start()
    pair.advance(300)
    assert max(in_flight) == 64 - 1
    # Every tunnel had its turn, first in configuration order, then again as
    # slots came free.
    assert started[:count] == [f"t{index}" for index in range(count)]
    assert len(started) > count
    assert pair.a.statistics()["phase1_failed"] == len(started) - pair.a._sas.initiating_count()
    # The first messages of the first 64 leave together; after that no
    # instant carries more than a few messages (without jitter, each round of
    # 64 retransmissions and then each round of 64 new attempts would).
    assert Counter(sent)[0.0] == 64
    assert max(Counter(t for t in sent if t > 0).values()) <= 3


def test_a_tunnel_waiting_for_a_slot_takes_the_peers_phase1_instead() -> None:
    pair = many_tunnels(3, a={"initiator_half_open_limit": 1})
    policy = pair.b.policy
    pair.b.update_policy(replace(policy, tunnels=tuple(
        replace(t, initiate=t.name == "t2") for t in policy.tunnels)), pair.now)
    started, _ = _watch_initiations(pair)
    pair.start()
    pair.advance(5)
    assert {s.state for s in pair.a.tunnel_status(pair.now)} == {"up"}
    assert started == ["t0", "t1"]  # t2 came up on B's phase 1 while it waited


def test_raising_the_limit_admits_the_waiting_tunnels() -> None:
    pair = _tunnels(5, a={"initiator_half_open_limit": 1})
    started, in_flight = _watch_initiations(pair)
    pair.filter = lambda direction, datagram, index: 0
    pair.start()
    pair.advance(1)
    assert started == ["t0"]
    pair.a.update_policy(replace(pair.a.policy, initiator_half_open_limit=3), pair.now)
    pair.advance(0)
    assert started == ["t0", "t1", "t2"] and max(in_flight) == 2
    pair.filter = None
    pair.advance(60)
    assert {s.state for s in pair.a.tunnel_status(pair.now)} == {"up"}
    assert started == ["t0", "t1", "t2", "t3", "t4"]


def test_a_phase1_rekey_waits_for_a_slot() -> None:
    """One slot, held by t2, whose peer never answers: t0's and t1's phase 1
    reach their soft lifetime meanwhile; each rekey waits its turn, then renews
    the phase 1 and moves the tunnel's IPsec SA to it."""
    rules = (IkeRule(group=19, lifetime_seconds=400),)
    pair = _tunnels(3, a={"initiator_half_open_limit": 1, "ike_rules": rules},
                    b={"ike_rules": rules})
    silent = peer_address(2)
    pair.filter = lambda direction, datagram, index: 0 if silent in (
        datagram.local[0], datagram.remote[0]) else 1
    started, in_flight = _watch_initiations(pair)
    pair.start()
    pair.advance(10)
    up = {s.name for s in pair.a.tunnel_status(pair.now) if s.state == "up"}
    assert up == {"t0", "t1"} and started[:3] == ["t0", "t1", "t2"]
    pair.advance(600)
    assert max(in_flight) == 0
    assert started.count("t2") >= 6  # t2 kept retrying, in its turn
    # Both phase 1 SAs were renewed once (soft lifetime 340-360 s) and the old
    # ones deleted once the IPsec SAs had moved; nothing went down.
    for index in (0, 1):
        key = (A_IP, peer_address(index))
        assert len(pair.a._sas.ike_of_peer(key)) == 1
    renewed = [e for e in pair.events("a", IpsecSaEstablished) if e.rekey_of is not None]
    assert {e.tunnel for e in renewed} == {"t0", "t1"}
    assert pair.a.statistics()["phase1_established"] == 4
    assert not [e for e in pair.events("a", IpsecSaDeleted) if e.reason != "rekeyed"]
