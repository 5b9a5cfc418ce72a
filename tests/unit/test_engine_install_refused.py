"""The data plane refuses an SA the engine negotiated (issue 13.6).

A tunnel must not show `up` while nothing carries its traffic: the engine
drops the SA, tells the peer (Delete), shows the reason and tries again
with a growing back-off.
"""

from __future__ import annotations

from engine_helpers import Pair, make_pair

from ipsecgw.isakmp.events import IpsecSaDeleted, IpsecSaEstablished
from ipsecgw.status import TunnelState

REASON = "cannot create TUN device ipsec-gw: File exists"


def _refusing(pair: Pair, times: int) -> list[float]:
    """A's data plane refuses the first `times` SAs A installs; returns when."""
    refused: list[float] = []
    seen = len(pair.events_a)

    def refuse(p: Pair) -> None:
        nonlocal seen
        new, seen = p.events_a[seen:], len(p.events_a)
        for event in new:
            if isinstance(event, IpsecSaEstablished) and len(refused) < times:
                refused.append(p.now)
                p.a.sa_install_failed(event.tunnel, event.inbound.spi, event.outbound.spi,
                                      REASON, p.now)
                p.pump()

    pair.observer = refuse
    return refused


def test_a_refused_sa_is_deleted_on_both_sides_and_the_tunnel_shows_why() -> None:
    pair = make_pair()
    refused = _refusing(pair, times=1)
    pair.start()
    assert refused
    (status,) = pair.a.tunnel_status(pair.now)
    assert status.state is not TunnelState.UP
    assert REASON in status.last_failure and status.ipsec_sas == ()
    assert not pair.live_sas("b")  # the peer got the Delete
    deleted = pair.events("b", IpsecSaDeleted)
    assert [e.reason for e in deleted] == ["deleted by peer"]
    assert not pair.events("a", IpsecSaDeleted)  # the data plane never had it
    pair.advance(5.0)  # the next attempt, which the data plane takes
    assert pair.consistent()
    assert pair.a.tunnel_states() == {"gw": TunnelState.UP}


def test_refusals_in_a_row_back_off() -> None:
    pair = make_pair()
    refused = _refusing(pair, times=4)
    pair.start()
    pair.advance(40.0)
    assert len(refused) == 4
    waits = [b - a for a, b in zip(refused, refused[1:], strict=False)]
    # 1, 2, 4 s (each less up to 20 %), plus the negotiation itself.
    for wait, nominal in zip(waits, [1, 2, 4], strict=True):
        assert nominal * 0.8 <= wait <= nominal + 0.5, waits
    assert pair.consistent()
