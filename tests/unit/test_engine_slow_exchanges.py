"""Exchanges that get no answer for long (issue 13.9): a peer-compatible window.

strongSwan forgets a half-open IKE SA after 30 s and ignores later copies of
its first message, so an attempt that repeats the same MM1 for 90 s wastes a
minute; a rekey still retransmitting when the old SA expires must not leave
the tunnel without an SA until its next slow retransmission.
"""

from __future__ import annotations

from engine_helpers import Pair, make_pair, policies

from ipsecgw.isakmp.codec import Message
from ipsecgw.isakmp.constants import ExchangeType
from ipsecgw.isakmp.engine import Datagram
from ipsecgw.isakmp.events import IpsecSaDeleted, IpsecSaEstablished, Phase1Established


def _timeline(pair: Pair) -> list[tuple[float, object]]:
    """(time, event) of A's events from now on, as `advance` produces them."""
    timeline: list[tuple[float, object]] = []
    seen = len(pair.events_a)

    def observe(p: Pair) -> None:
        nonlocal seen
        timeline.extend((p.now, event) for event in p.events_a[seen:])
        seen = len(p.events_a)

    pair.observer = observe
    return timeline


def test_unanswered_phase1_is_abandoned_after_30s_and_restarted_with_fresh_cookies() -> None:
    pair = make_pair(*policies(b_tunnel={"initiate": False}))
    sent: list[tuple[float, bytes]] = []

    def record(direction: str, datagram: Datagram, index: int) -> int:
        header = Message.decode_header(datagram.data)
        if direction == "ab" and header.responder_cookie == bytes(8):
            sent.append((pair.now, header.initiator_cookie))
        return 1

    pair.filter = record
    pair.stop("b")  # the peer is down (or every answer lost) for 35 s
    pair.a.handle_timer(0.0)
    pair.pump()
    pair.advance(35.0)
    pair.boot("b", seed=7)
    pair.advance(10.0)
    first = sent[0][1]
    assert all(when <= 30.0 for when, cookie in sent if cookie == first)
    assert {cookie for _, cookie in sent} - {first}  # a new attempt, new cookies
    established = pair.events("a", Phase1Established)
    assert established and established[0].cookies[:8] != first
    assert pair.consistent()


def test_rekey_still_retransmitting_when_the_old_sa_expires_is_hurried() -> None:
    """The old IPsec SA's hard lifetime ends while its rekey's QM1 is lost: the
    rekey retransmits at once, not 16 s later (a 23 s outage in the field)."""
    pair = make_pair(*policies(a_tunnel={"lifetime_seconds": 120},
                               b_tunnel={"lifetime_seconds": 120, "initiate": False}))
    pair.start()
    assert pair.consistent()
    start = pair.now

    def lose_quick_mode_until_expiry(direction: str, datagram: Datagram, index: int) -> int:
        header = Message.decode_header(datagram.data)
        lossy = start + 100.0 <= pair.now <= start + 120.5
        return 0 if lossy and header.exchange_type == ExchangeType.QUICK_MODE else 1

    pair.filter = lose_quick_mode_until_expiry
    timeline = _timeline(pair)
    pair.advance(140.0)
    expired = [when for when, e in timeline
               if isinstance(e, IpsecSaDeleted) and e.reason == "expired"]
    assert expired, "the rekey must still be in flight when the old SA expires"
    installed = [when for when, e in timeline
                 if isinstance(e, IpsecSaEstablished) and when >= expired[0]]
    assert installed, timeline
    # The outage: from the old SA's expiry to the next SA's installation.
    assert installed[0] - expired[0] <= 3.0, (expired, installed)
    assert pair.consistent()
