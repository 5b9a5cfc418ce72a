"""Many subscribers behind one NAT address: the gateway's work per login stays flat.

All the subscribers' dynamic tunnels share one peer (local address, NAT
address).  Each is responder-only and belongs to one phase 1, so the per-peer
work meant for configured tunnels (re-arming their deadlines on each phase 1
event, delaying them after a peer's phase 1, choosing a profile for a first
message) must not visit them: it made each login cost O(subscribers) and a
2,000-subscriber benchmark quadratic.  The work is counted, not timed: the
deadlines the gateway re-arms (`Engine._touch`) and the subscriber-owner
lookups it makes, per login, after EARLY and after LATE subscribers are up.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine_helpers import rng
from subscriber_helpers import (
    Aaa,
    Client,
    client_policy,
    gateway_policy,
    login,
    subscriber_pair,
)

from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.events import IpsecSaEstablished, SubscriberUp
from ipsecgw.isakmp.policy import DpdPolicy

EARLY, LATE = 20, 80


def _counting(target: Any, name: str, counts: dict[str, int]) -> None:
    """Count the calls of `target.name` (an instance attribute shadows the method)."""
    original = getattr(target, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return original(*args, **kwargs)

    setattr(target, name, counted)


def test_login_work_does_not_grow_with_the_subscribers_behind_one_address() -> None:
    users = {f"user{n}": "secret" for n in range(LATE + 1)}
    aaa = Aaa(users=users, pool=[f"10.200.{n // 256}.{n % 256}" for n in range(1, LATE + 2)])
    # Each client's engine is dropped when the next one logs in: DPD (per
    # subscriber) would rightly log the early ones out while the later log in.
    pair = subscriber_pair(gateway=gateway_policy(dpd=DpdPolicy(enabled=False)))
    counts = {"_touch": 0, "owner": 0}
    _counting(pair.b, "_touch", counts)
    _counting(pair.b._subscribers, "owner", counts)
    work: dict[int, int] = {}
    for n in range(LATE + 1):
        pair.a = Engine(client_policy(), rng=rng(100 + n))  # another client, same address
        pair.client = Client(username=f"user{n}", password="secret")
        before = sum(counts.values())
        login(pair, aaa)
        work[n] = sum(counts.values()) - before
    assert len(pair.events("b", SubscriberUp)) == LATE + 1
    assert len(pair.b.subscriber_status(pair.now)) == LATE + 1
    # The same steps for the (EARLY+1)th and the (LATE+1)th login.
    assert work[LATE] == work[EARLY], work


def test_subscriber_quick_mode_for_a_narrower_network_finds_its_tunnel() -> None:
    """A split-tunnel client proposes less than 0.0.0.0/0: no exact selector
    match, yet its own tunnel (not indexed by peer) still takes the Quick Mode."""
    pair, aaa = subscriber_pair(), Aaa()
    login(pair, aaa)
    vpn = replace(pair.a.policy.tunnels[0], remote_network="10.1.0.0/16")
    pair.a.update_policy(replace(pair.a.policy, tunnels=(vpn,)), pair.now)
    pair.advance(5)
    narrow = [sa for sa in pair.events("b", IpsecSaEstablished)
              if sa.local_network == "10.1.0.0/16"]
    assert [sa.tunnel for sa in narrow] == ["remote:1"]
