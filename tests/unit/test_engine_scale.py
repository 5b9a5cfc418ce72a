"""Many tunnels in one engine: correctness at scale, and no per-call scan of all SAs.

Run as a script for the setup-time measurement quoted in the reports:
`python3 tests/unit/test_engine_scale.py 1000 [single]` (single: every tunnel
to one peer address, so one phase 1 carries them all).
"""

from __future__ import annotations

import sys
import time

import pytest
from engine_helpers import A_IP, Pair, many_tunnels, peer_address

from ipsecgw.isakmp.deadlines import Deadlines
from ipsecgw.isakmp.events import IpsecSaEstablished, PeerDead, Phase1Established
from ipsecgw.isakmp.policy import DpdPolicy

COUNT = 300


def _up(count: int, **kwargs) -> Pair:
    pair = many_tunnels(count, **kwargs)
    pair.start()
    pair.advance(3)
    return pair


def _states(pair: Pair, side: str = "a") -> dict[str, int]:
    engine = pair.a if side == "a" else pair.b
    states: dict[str, int] = {}
    for status in engine.tunnel_status(pair.now):
        states[status.state] = states.get(status.state, 0) + 1
    return states


@pytest.fixture(scope="module")
def distinct() -> Pair:
    return _up(COUNT, a={"dpd": DpdPolicy(idle=20.0, silence=10.0, retry=2.0)},
               b={"dpd": DpdPolicy(idle=20.0, silence=10.0, retry=2.0)})


def test_every_tunnel_up_with_its_own_phase1(distinct: Pair) -> None:
    pair = distinct
    assert _states(pair) == {"up": COUNT} and _states(pair, "b") == {"up": COUNT}
    assert pair.consistent()
    assert len(pair.events("a", Phase1Established)) == COUNT
    assert len({e.peer[0] for e in pair.events("a", Phase1Established)}) == COUNT


def test_idle_timer_calls_do_not_scan_the_tunnels(distinct: Pair) -> None:
    pair = distinct
    deadline = pair.a.get_timer()
    assert deadline is not None and deadline > pair.now
    started = time.perf_counter()
    for _ in range(20_000):
        pair.a.get_timer()
        pair.a.handle_timer(pair.now)
    elapsed = time.perf_counter() - started
    # A scan of 300 tunnels and their SAs costs about 2 ms a call; this is ~2 us.
    assert elapsed < 2.0, elapsed
    assert pair.a.datagrams_to_send(pair.now) == []


def test_traffic_reports_touch_one_tunnel(distinct: Pair) -> None:
    pair = distinct
    started = time.perf_counter()
    for round_ in range(1, 21):
        for index in range(COUNT):
            pair.a.traffic(f"t{index}", 1000 * round_, 1000 * round_, pair.now)
    assert time.perf_counter() - started < 2.0
    assert pair.a.datagrams_to_send(pair.now) == []


def test_dpd_and_a_dead_peer_among_hundreds(distinct: Pair) -> None:
    pair = distinct
    def probes() -> tuple[int, int]:
        a, b = pair.a.statistics(), pair.b.statistics()
        return (a["dpd_sent"] + b["dpd_sent"], a["dpd_ack_received"] + b["dpd_ack_received"])

    sent, acked = probes()
    pair.advance(25)
    # Every peer was probed by one side or the other (an R-U-THERE received
    # counts as liveness too, RFC 3706), and every probe was answered.
    assert probes()[0] - sent >= COUNT and probes()[1] - acked == probes()[0] - sent
    # One peer address goes silent: only its tunnel dies.
    dead = peer_address(7)
    pair.filter = lambda direction, datagram, index: 0 if dead in (
        datagram.local[0], datagram.remote[0]) else 1
    pair.advance(30)
    pair.filter = None
    assert [e.tunnel for e in pair.events("a", PeerDead)] == ["t7"]
    pair.advance(40)
    assert _states(pair) == {"up": COUNT} and pair.consistent()


def test_clear_all_phase1_renews_every_tunnel(distinct: Pair) -> None:
    pair = distinct
    before = len([e for e in pair.events("a", IpsecSaEstablished) if e.rekey_of])
    assert pair.a.clear_sa(None, 1, pair.now) >= COUNT  # a DPD race may have left two
    pair.pump()
    pair.advance(0)  # beyond the initiator's half-open limit, tunnels start in turn
    renewed = len([e for e in pair.events("a", IpsecSaEstablished) if e.rekey_of]) - before
    assert renewed == COUNT
    pair.advance(pair.a.policy.rekey_grace + 1)
    assert _states(pair) == {"up": COUNT} and pair.consistent()
    assert len(pair.a.ike_sa_status(pair.now)) == COUNT


def test_many_tunnels_on_one_phase1() -> None:
    pair = _up(COUNT, distinct_peers=False)
    assert _states(pair) == {"up": COUNT} and pair.consistent()
    assert len(pair.a.ike_sa_status(pair.now)) == 1
    assert all(e.peer == (A_IP, 500) for e in pair.events("b", IpsecSaEstablished))


def test_deadlines_queue() -> None:
    queue: Deadlines[str] = Deadlines()
    assert queue.earliest() is None and queue.pop_due(100.0) == []
    queue.schedule("a", 5.0)
    queue.schedule("b", 3.0)
    queue.schedule("c", 9.0)
    queue.schedule("b", 7.0)  # moved later: the 3.0 entry is stale
    queue.schedule("c", None)  # cancelled
    queue.schedule("d", float("inf"))  # never due
    assert len(queue) == 2 and queue.earliest() == 5.0
    assert queue.pop_due(6.0) == ["a"]
    queue.schedule("a", 1.0)
    assert queue.pop_due(10.0) == ["a", "b"]
    assert queue.earliest() is None
    for step in range(1000):  # moving one key again and again stays compact
        queue.schedule("e", float(step))
    assert len(queue._heap) < 200 and queue.pop_due(1e9) == ["e"]


def _measure(count: int, distinct_peers: bool) -> None:
    pair = many_tunnels(count, distinct_peers=distinct_peers)
    started = time.perf_counter()
    pair.start()
    pair.advance(3)
    while _states(pair).get("up", 0) < count and pair.now < 300:
        pair.advance(5)  # beyond the half-open limit, the rest come with retransmissions
    setup = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(1000):
        pair.a.get_timer()
        pair.a.handle_timer(pair.now)
    idle = (time.perf_counter() - started) / 1000
    started = time.perf_counter()
    pair.a.tunnel_status(pair.now)
    status = time.perf_counter() - started
    print(f"{count} tunnels ({'distinct peers' if distinct_peers else 'one peer'}): "
          f"{_states(pair)} after {pair.now:.0f} s of engine time; wall clock: setup "
          f"{setup:.2f} s, idle get_timer+handle_timer {idle * 1e6:.1f} us, "
          f"tunnel_status {status * 1e3:.0f} ms")


if __name__ == "__main__":
    _measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, sys.argv[2:] != ["single"])
