"""Both ends initiate: simultaneous and staggered starts, loss, restarts (collisions.py).

Site-to-site tunnels run ipsecgw at both ends, both configured to initiate.
Whatever the start order, the two gateways must converge to one IPsec SA pair
per tunnel with the same SPIs on both sides and one ISAKMP SA, and then stay
there: no deletes or negotiations until the normal rekey, and traffic never
stops (`traffic_flows` with neither side tied, checked after every step).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from engine_helpers import (
    A_IP,
    B_IP,
    Datagram,
    Pair,
    lossy,
    make_pair,
    policies,
    staggered,
    traffic_flows,
)

from ipsecgw.isakmp import collisions
from ipsecgw.isakmp.codec import Message
from ipsecgw.isakmp.events import (
    IpsecSaDeleted,
    IpsecSaEstablished,
    Phase1Deleted,
    Phase1Established,
)
from ipsecgw.isakmp.policy import EnginePolicy, IkeRule
from ipsecgw.isakmp.registry import Registry
from ipsecgw.isakmp.sa import IkeSa, IpsecSa, P1State, QuickMode, Role

STEADY = 600.0  # ten virtual minutes
OFFSETS = (0.0, 0.5, 3.0, 10.0)


def _short_lifetimes() -> tuple[EnginePolicy, EnginePolicy]:
    return policies(rules=(IkeRule(group=19, lifetime_seconds=400),),
                    a_tunnel={"lifetime_seconds": 300}, b_tunnel={"lifetime_seconds": 300})


def _single(pair: Pair) -> bool:
    """One IPsec SA pair with mirrored SPIs and one established ISAKMP SA on each
    side, and nothing being negotiated."""
    a, b = pair.live_sas("a"), pair.live_sas("b")
    if len(a) != 1 or {(o, i) for i, o in a} != b:
        return False
    for engine in (pair.a, pair.b):
        if [s.state for s in engine.ike_sa_status(pair.now)] != ["established"]:
            return False
        if [t.state for t in engine.tunnel_status(pair.now)] != ["up"]:
            return False
    return True


def _converge(pair: Pair, within: float) -> float:
    """Advance second by second until `_single`; how long that took."""
    start = pair.now
    while not _single(pair):
        assert pair.now - start < within, (
            f"not converged after {within} s: A {pair.live_sas('a')} "
            f"{pair.a.ike_sa_status(pair.now)} B {pair.live_sas('b')}")
        pair.advance(1)
    return pair.now - start


class Steady:
    """From its creation on: the moments traffic would stop, and what each side did."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.since = {side: len(pair.sink(side)) for side in "ab"}
        self.broken: list[float] = []
        pair.observer = self._check

    def _check(self, pair: Pair) -> None:
        if not traffic_flows(pair, tied=None):
            self.broken.append(pair.now)

    def events(self, side: str, kind: type) -> list:
        return self.pair.events(side, kind, self.since[side])

    def assert_quiet(self) -> None:
        """Nothing installed or deleted, no phase 1 came or went, traffic always flowed."""
        assert self.broken == []
        for side in "ab":
            for kind in (IpsecSaEstablished, IpsecSaDeleted, Phase1Established, Phase1Deleted):
                assert self.events(side, kind) == [], (side, kind.__name__)
        assert _single(self.pair)

    def assert_only_rekeys(self, duration: float) -> None:
        """Traffic always flowed, and every new pair renewed the one before it: no
        more of them than the lifetimes allow (IPsec 300 s and phase 1 400 s, each
        renewed at 85 % at the earliest)."""
        assert self.broken == []
        for side in "ab":
            renewed = self.events(side, IpsecSaEstablished)
            assert renewed and all(e.rekey_of is not None for e in renewed), side
            assert len(renewed) <= duration / 255 + duration / 340 + 2, (side, len(renewed))
            reasons = {e.reason for e in self.events(side, IpsecSaDeleted)}
            assert reasons <= {"rekeyed", "deleted by peer"}, (side, reasons)


def _no_sa_deleted_but_by_rekey(pair: Pair) -> None:
    for side in "ab":
        assert {e.reason for e in pair.events(side, IpsecSaDeleted)} <= {"rekeyed"}, side


@pytest.mark.parametrize("seed", [1, 2])  # the cookies drawn favour B with 1, A with 2
@pytest.mark.parametrize("first", ["a", "b"])
@pytest.mark.parametrize("offset", OFFSETS)
def test_start_at_once_or_seconds_apart_converges_to_one_pair_and_stays(
        offset: float, first: str, seed: int) -> None:
    pair = staggered(offset=offset, first=first, seed=seed)
    assert _converge(pair, within=5) <= 3
    # Straight to one pair: nothing negotiated twice, nothing fresh deleted.
    for side in "ab":
        assert len(pair.events(side, IpsecSaEstablished)) == 1, side
        assert len(pair.events(side, Phase1Established)) == 1, side
        assert not pair.events(side, IpsecSaDeleted), side
    steady = Steady(pair)
    pair.advance(STEADY)
    steady.assert_quiet()


@pytest.mark.parametrize("seed", [1, 2])
def test_phase1_collision_the_lower_initiator_cookie_goes_on(seed: int) -> None:
    pair = staggered(offset=0.0, seed=seed)
    first_messages = {direction: Message.decode(datagram.data).initiator_cookie
                      for direction, datagram in reversed(pair.wire)
                      if Message.decode(datagram.data).responder_cookie == bytes(8)}
    _converge(pair, within=5)
    assert pair.a.statistics()["phase1_collisions"] == 1
    assert pair.b.statistics()["phase1_collisions"] == 1
    survivor = pair.a.ike_sa_status(pair.now)[0].initiator_cookie
    assert survivor == min(first_messages.values())
    winner = "a" if first_messages["ab"] == survivor else "b"
    assert pair.events(winner, Phase1Established)[0].role == "initiator"


@pytest.mark.parametrize("seed", [1, 2])
def test_duplicated_first_messages_do_not_unsettle_the_collision(seed: int) -> None:
    pair = make_pair(seed=seed)
    pair.filter = lambda direction, datagram, index: \
        2 if Message.decode(datagram.data).responder_cookie == bytes(8) else 1
    pair.a.handle_timer(pair.now)
    pair.b.handle_timer(pair.now)
    pair.pump()
    assert _converge(pair, within=5) == 0
    assert len(pair.events("a", Phase1Established)) == 1


@pytest.mark.parametrize("seed", range(1, 5))
def test_behind_a_nat_both_initiating_the_unreachable_attempt_gives_way(seed: int) -> None:
    # B's first message to A's public address never gets through the NAT (it maps
    # A's port 500 to another).  Should B's attempt win the comparison, it gives
    # way when A's first message comes again.
    pair = make_pair(*policies(nat=True), nat=True, seed=seed)
    pair.a.handle_timer(pair.now)
    pair.b.handle_timer(pair.now)
    pair.pump()
    assert _converge(pair, within=5) <= 2
    assert pair.events("a", Phase1Established)[0].role == "initiator"
    steady = Steady(pair)
    pair.advance(STEADY)
    steady.assert_quiet()


def _quick_modes_in_flight(pair: Pair, side: str) -> list[QuickMode]:
    return [qm for qm, _ in pair.engine(side)._sas.quick_modes_of_tunnel("gw")]


def test_quick_mode_collision_the_lower_nonce_goes_on() -> None:
    pair = make_pair()
    pair.start()
    pair.a.clear_sa(None, 2, pair.now)
    pair.b.clear_sa(None, 2, pair.now)
    [ours_a], [ours_b] = _quick_modes_in_flight(pair, "a"), _quick_modes_in_flight(pair, "b")
    pair.pump()
    assert pair.a.statistics()["phase2_collisions"] == 1
    assert pair.b.statistics()["phase2_collisions"] == 1
    winner = ours_a if ours_a.ni < ours_b.ni else ours_b
    [(inbound_a, outbound_a)] = pair.live_sas("a")
    assert winner.inbound_spi in (inbound_a, outbound_a)
    assert len(pair.events("a", IpsecSaEstablished)) == 2  # the first pair, then this one
    steady = Steady(pair)
    pair.advance(STEADY)
    steady.assert_quiet()


def _first_messages_then_silence(pair: Pair, until: float) -> Callable[..., int]:
    """Let both first messages (and resends) through, then lose everything the side
    whose attempt goes on sends, until `until`: its attempt fails after the other
    side gave way."""
    cookies: dict[str, bytes] = {}

    def decide(direction: str, datagram: Datagram, index: int) -> int:
        message = Message.decode(datagram.data)
        if message.responder_cookie == bytes(8):
            cookies.setdefault(direction, message.initiator_cookie)
            return 1
        if len(cookies) < 2 or pair.now >= until:
            return 1
        return 0 if cookies[direction] == min(cookies.values()) else 1

    return decide


def test_phase1_collision_recovers_when_the_attempt_that_went_on_fails() -> None:
    pair = make_pair()
    pair.filter = _first_messages_then_silence(pair, until=100)
    pair.a.handle_timer(pair.now)
    pair.b.handle_timer(pair.now)
    pair.pump()
    assert not pair.events("a", Phase1Established) and not pair.events("b", Phase1Established)
    pair.advance(100)
    _converge(pair, within=60)
    steady = Steady(pair)
    pair.advance(STEADY)
    steady.assert_quiet()


def test_quick_mode_collision_recovers_when_the_exchange_that_went_on_fails() -> None:
    pair = make_pair()
    pair.start()
    pair.a.clear_sa(None, 2, pair.now)
    pair.b.clear_sa(None, 2, pair.now)
    [ours_a], [ours_b] = _quick_modes_in_flight(pair, "a"), _quick_modes_in_flight(pair, "b")
    winner = "ab" if ours_a.ni < ours_b.ni else "ba"
    # The winner's Delete and QM1 get through (the other side gives way and
    # answers), then nothing more from it for 100 s: its QM3 never arrives.
    until, first = pair.now + 100, pair.counts[winner]
    pair.filter = lambda direction, datagram, index: \
        0 if direction == winner and index >= first + 2 and pair.now < until else 1
    pair.pump()
    assert sum(s["phase2_collisions"] for s in (pair.a.statistics(), pair.b.statistics())) == 2
    loser = pair.b if winner == "ab" else pair.a
    assert not loser.tunnel_status(pair.now)[0].ipsec_sas  # gave way, waits for QM3
    pair.advance(100)
    _converge(pair, within=120)
    steady = Steady(pair)
    pair.advance(STEADY)
    steady.assert_quiet()


@pytest.mark.parametrize("first", ["a", "b"])
@pytest.mark.parametrize("offset", OFFSETS)
def test_start_then_rekeys_with_short_lifetimes(offset: float, first: str) -> None:
    pair = staggered(*_short_lifetimes(), offset=offset, first=first)
    _converge(pair, within=5)
    steady = Steady(pair)
    pair.advance(900)
    steady.assert_only_rekeys(900)
    _converge(pair, within=60)
    _no_sa_deleted_but_by_rekey(pair)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("offset", (0.0, 3.0))
def test_message_loss_during_the_collision(offset: float, seed: int) -> None:
    pair = staggered(offset=offset, first="ab"[seed % 2], seed=seed)
    pair.filter = lossy(0.3, pair.now + 30, seed, pair)
    pair.advance(30)
    pair.filter = None
    _converge(pair, within=200)
    steady = Steady(pair)
    pair.advance(STEADY)
    steady.assert_quiet()


@pytest.mark.parametrize("seed", range(6))
def test_message_loss_during_the_collision_then_rekeys(seed: int) -> None:
    pair = staggered(*_short_lifetimes(), offset=0.0, seed=seed)
    pair.filter = lossy(0.3, pair.now + 20, seed, pair)
    pair.advance(20)
    pair.filter = None
    _converge(pair, within=200)
    steady = Steady(pair)
    pair.advance(900)
    steady.assert_only_rekeys(900)


@pytest.mark.parametrize("downtime", (0.0, 5.0, 200.0))
@pytest.mark.parametrize("side", ["a", "b"])
def test_restarted_gateway_while_the_other_holds_sas(side: str, downtime: float) -> None:
    # After 200 s down, DPD has declared the gateway dead: the other one deleted
    # its SAs and keeps initiating, so the restarted one meets its attempt.
    pair = make_pair()
    pair.start()
    _converge(pair, within=5)
    pair.advance(100)
    stale = pair.live_sas("a")
    pair.stop(side)
    pair.advance(downtime)
    pair.boot(side, seed=77)
    assert _converge(pair, within=5) <= 3
    assert not stale & pair.live_sas("a")
    other = "b" if side == "a" else "a"
    # INITIAL-CONTACT cleared the survivor's stale SAs at once (unless DPD had),
    # and only those.
    reason = "dead peer" if downtime > 150 else "initial contact"
    assert [e.reason for e in pair.events(other, IpsecSaDeleted)] == [reason]
    assert len(pair.events(side, IpsecSaEstablished, pair.booted[side])) == 1
    steady = Steady(pair)
    pair.advance(STEADY)
    steady.assert_quiet()


@pytest.mark.parametrize("restart_at", (100.0, 250.0, 262.0, 270.0, 345.0, 360.0))
@pytest.mark.parametrize("side", ["a", "b"])
def test_restart_around_rekeys(side: str, restart_at: float) -> None:
    pair = make_pair(*_short_lifetimes())
    pair.start()
    pair.advance(restart_at)
    pair.stop(side)
    pair.advance(2)
    pair.boot(side, seed=77)
    _converge(pair, within=60)
    steady = Steady(pair)
    pair.advance(900)
    steady.assert_only_rekeys(900)


def test_simultaneous_clear_on_both_sides_converges() -> None:
    pair = make_pair()
    pair.start()
    for phase in (2, 1, None):
        pair.a.clear_sa(None, phase, pair.now)
        pair.b.clear_sa(None, phase, pair.now)
        pair.pump()
        _converge(pair, within=40)
        steady = Steady(pair)
        pair.advance(STEADY)
        steady.assert_quiet()


def _phase1(cookie: bytes, created_at: float, established_at: float | None) -> IkeSa:
    ike = IkeSa(cookie, bytes(7) + b"\x01", Role.INITIATOR, "main", P1State.MM_I1,
                (A_IP, 500), (B_IP, 500), created_at)
    if established_at is not None:
        ike.state, ike.established_at = P1State.ESTABLISHED, established_at
    return ike


def _child(ike: IkeSa, spi: bytes, created_at: float) -> IpsecSa:
    return IpsecSa(
        tunnel="gw", ike_cookies=ike.cookies, role=Role.INITIATOR, protocol="esp",
        transform="esp-aes256-hmac-sha256", inbound_spi=spi, outbound_spi=spi[::-1],
        local=(A_IP, 500), peer=(B_IP, 500), encapsulation="tunnel",
        local_network="10.98.1.0/24", remote_network="10.98.2.0/24", pfs_group=None,
        lifetime_seconds=3600, lifetime_kilobytes=0, created_at=created_at,
        soft_at=created_at + 3000, expires_at=created_at + 3600, soft_kilobytes=0,
        inbound_at_start=0, outbound_at_start=0)


def test_initial_contact_removes_only_what_is_older_than_its_first_message() -> None:
    # The phase 1 carrying the notify sent its first message at 10.
    sas = Registry()
    old = _phase1(b"old-p1-1", 0, 1)  # established before: stale
    racing = _phase1(b"racing-1", 5, 12)  # in progress at 10, established after
    carrier = _phase1(b"carrier1", 10, 14)
    for ike in (old, racing, carrier):
        sas.add_ike(ike)
    stale = _child(old, b"\x00\x00\x01\x00", 2)
    fresh = _child(racing, b"\x00\x00\x02\x00", 12.5)
    for child in (stale, fresh):
        sas.add_child(child)
    assert collisions.initial_contact_victims(sas, carrier) == ([stale], [old])


def test_initial_contact_is_claimed_only_by_the_only_sa_with_the_peer() -> None:
    sas = Registry()
    carrier = _phase1(b"carrier1", 10, None)
    sas.add_ike(carrier)
    assert collisions.may_claim_initial_contact(sas, carrier)
    other = _phase1(b"other-p1", 11, None)  # the peer's own phase 1, or another of ours
    sas.add_ike(other)
    assert not collisions.may_claim_initial_contact(sas, carrier)
    sas.remove_ike(other)
    sas.add_child(_child(other, b"\x00\x00\x03\x00", 12))  # an SA outliving its phase 1
    assert not collisions.may_claim_initial_contact(sas, carrier)
