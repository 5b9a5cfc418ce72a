"""A captured exchange sent again, within and past the reply cache (issue 13's
fault suite; the interop suite replays within the cache and to a restarted
daemon, this covers the cache's 120 s without waiting for them)."""

from __future__ import annotations

import pytest
from engine_helpers import make_pair

from ipsecgw.isakmp.events import IpsecSaEstablished, Phase1Established

# Where a replayed message can end up: answered again from the reply cache,
# or dropped (past the cache, CBC under the current IV garbles an old
# message's first block, so it fails to parse).
DROP_COUNTERS = ("retransmits", "dropped_duplicate", "dropped_unexpected", "unknown_cookie",
                 "dropped_malformed", "dropped_decrypt_failed", "dropped_hash_mismatch")


@pytest.mark.parametrize("later", [2.0, 125.0])
def test_replayed_exchange_changes_nothing(later: float) -> None:
    pair = make_pair()
    pair.start()
    pair.advance(5)
    assert pair.consistent()
    exchange = list(pair.wire)
    sas = (pair.live_sas("a"), pair.live_sas("b"))
    events = (len(pair.events_a), len(pair.events_b))
    pair.advance(later)
    stats = (pair.a.statistics(), pair.b.statistics())
    for direction, datagram in exchange:  # each side gets its peer's messages again
        (pair.b if direction == "ab" else pair.a).receive_datagram(
            datagram.data, datagram.remote, datagram.local, pair.now)
    pair.pump()
    pair.advance(10)
    assert (pair.live_sas("a"), pair.live_sas("b")) == sas
    for side, since in zip("ab", events, strict=True):
        assert not pair.events(side, Phase1Established, since)
        assert not pair.events(side, IpsecSaEstablished, since)
    seen = sum(after[k] - before[k] for before, after in zip(
        stats, (pair.a.statistics(), pair.b.statistics()), strict=True) for k in DROP_COUNTERS)
    assert seen >= len(exchange), (stats, pair.a.statistics(), pair.b.statistics())
