"""A subscriber whose login has no result yet is half-open (issue 16 item 6).

A client that completes phase 1 and then never answers XAUTH, or whose
login waits for a RADIUS answer, holds a phase 1 as much as one that never
finishes phase 1: it counts against the half-open limits (per source
address and per VR) until the login result, so that such clients cannot
take the table from everyone else.
"""

from __future__ import annotations

from engine_helpers import rng
from subscriber_helpers import (
    Aaa,
    Client,
    Crowd,
    client_policy,
    crowd_pair,
    gateway_policy,
    login,
    subscriber_pair,
)

from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.events import SubscriberUp
from ipsecgw.isakmp.subscribers import XAUTH_TIMEOUT


def test_clients_that_never_answer_xauth_count_against_the_per_source_limit() -> None:
    pair = subscriber_pair(gateway=gateway_policy(half_open_per_source_limit=2))
    for n in range(3):  # three clients from one address, none answering XAUTH
        pair.a = Engine(client_policy(), rng=rng(300 + n))
        pair.client = Client(answer_xauth=False)
        pair.connect()
    assert [s.state for s in pair.b.subscriber_status(pair.now)] == ["xauth", "xauth"]
    assert len(pair.b._sas.ike) == 2
    assert pair.b.statistics()["dropped_half_open_limit"] >= 1
    # Their XAUTH times out: the phase 1s go, and the source may try again.
    pair.advance(XAUTH_TIMEOUT + 1)
    assert pair.b.subscriber_status(pair.now) == [] and not pair.b._sas.ike
    pair.a = Engine(client_policy(), rng=rng(310))
    pair.client = Client(answer_xauth=False)
    pair.connect()
    assert [s.state for s in pair.b.subscriber_status(pair.now)] == ["xauth"]


def test_logged_in_subscribers_no_longer_count_as_half_open() -> None:
    users = {f"user{n}": "secret" for n in range(4)}
    pair, aaa = subscriber_pair(gateway=gateway_policy(half_open_per_source_limit=2)), \
        Aaa(users=users)
    for n in range(4):
        pair.a = Engine(client_policy(), rng=rng(320 + n))
        pair.client = Client(username=f"user{n}", password="secret")
        login(pair, aaa)
    assert len(pair.events("b", SubscriberUp)) == 4
    assert pair.b.statistics()["dropped_half_open_limit"] == 0


def test_logins_waiting_for_aaa_count_against_the_global_limit() -> None:
    """Three clients from three addresses; AAA does not answer yet (RADIUS
    slow): two are admitted to the login, the third client's phase 1 waits
    (its first message dropped) until a login result frees a place."""
    users = ["ann", "ben", "cat"]
    pair = crowd_pair(Crowd.of(users, "secret"), gateway_policy(half_open_limit=2), nat=False)
    aaa = Aaa(users=dict.fromkeys(users, "secret"), answer=False)
    pair.start()
    pair.advance(10)  # the third client's first message, sent again at 2 and 6 s
    assert [s.state for s in pair.b.subscriber_status(pair.now)] == \
        ["authenticating", "authenticating"]
    assert pair.b.statistics()["dropped_half_open_limit"] >= 3
    aaa.answer = True
    aaa.serve(pair)
    pair.advance(20)  # the third client's first message (or its next attempt) gets in
    aaa.serve(pair)
    pair.advance(5)
    assert sorted(e.username for e in pair.events("b", SubscriberUp)) == users
