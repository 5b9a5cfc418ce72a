"""Thousands of tunnels at once: DPD spread, liveness, the initiator's half-open cap.

docs/BENCHMARKS.md ("Thousands of tunnels"): at 10,000 tunnels synchronised
DPD probes and retransmissions collapsed into a re-negotiation storm.  These
tests hold the engine to the measures taken against that.
"""

from __future__ import annotations

from collections import Counter

from engine_helpers import Pair, many_tunnels

from ipsecgw.isakmp.policy import DpdPolicy

IDLE = 100.0
PROBING = DpdPolicy(idle=IDLE, silence=50.0, retry=5.0)
QUIET = DpdPolicy(enabled=False)


def _up_together(count: int, seed: int = 1) -> Pair:
    """`count` tunnels, each with its own phase 1, all established at time 0.
    Only A probes (B answers R-U-THERE but sends none of its own)."""
    pair = many_tunnels(count, seed=seed, a={"dpd": PROBING}, b={"dpd": QUIET})
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
    # Spread over the window: no instant carries more than a few probes, and
    # no second more than a tenth of them (1,000 in one instant without jitter).
    assert max(Counter(times).values()) <= 5
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
