"""Delete, clear_sa, DPD, INVALID-COOKIE, INITIAL-CONTACT and rekeying, back to back."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from engine_helpers import A_IP, B_IP, Datagram, make_pair, policies, rng

from ipsecgw.isakmp import engine as engine_module
from ipsecgw.isakmp import replies as replies_module
from ipsecgw.isakmp.codec import Message, Notification
from ipsecgw.isakmp.constants import ExchangeType, NotifyType
from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.events import (
    InvalidCookieReceived,
    InvalidCookieSent,
    IpsecSaDeleted,
    IpsecSaEstablished,
    PeerDead,
    Phase1Deleted,
    Phase1Established,
)
from ipsecgw.isakmp.policy import DpdPolicy


def _up(**kwargs):
    pair = make_pair(*policies(**kwargs)) if kwargs else make_pair()
    pair.start()
    assert pair.consistent()
    return pair


def test_clear_phase2_sends_delete_and_renegotiates_on_same_phase1() -> None:
    pair = _up()
    old = pair.live_sas("a")
    cookies = {s.initiator_cookie for s in pair.a.ike_sa_status(pair.now)}
    assert pair.a.clear_sa(["gw"], 2, pair.now) == 1
    pair.pump()
    assert [e.reason for e in pair.events("a", IpsecSaDeleted)] == ["cleared"]
    assert [e.reason for e in pair.events("b", IpsecSaDeleted)] == ["deleted by peer"]
    assert pair.consistent() and not pair.live_sas("a") & old
    assert {s.initiator_cookie for s in pair.a.ike_sa_status(pair.now)} == cookies


def test_clear_all_from_responder_side() -> None:
    pair = _up()
    old_sas = pair.live_sas("b")
    assert pair.b.clear_sa(None, None, pair.now) == 2
    pair.pump()
    pair.advance(5)
    assert pair.events("a", IpsecSaDeleted)[0].reason == "deleted by peer"
    assert pair.events("a", Phase1Deleted)
    assert pair.consistent() and not pair.live_sas("b") & old_sas
    assert len(pair.events("b", Phase1Established)) == 2


def test_clear_unknown_tunnel_clears_nothing() -> None:
    pair = _up()
    assert pair.a.clear_sa(["nope"], None, pair.now) == 0
    assert pair.a.clear_sa([], None, pair.now) == 0
    assert pair.consistent()


FAST_DPD = DpdPolicy(idle=20.0, silence=10.0, retry=2.0, retries=3)


def test_dpd_keeps_a_live_peer() -> None:
    pair = _up(a={"dpd": FAST_DPD}, b={"dpd": FAST_DPD})
    pair.advance(100)
    # Whichever side's (jittered) idle time is shorter probes; the other hears
    # its R-U-THEREs, which count as liveness, and never needs to.
    a, b = pair.a.statistics(), pair.b.statistics()
    sent, acked = a["dpd_sent"] + b["dpd_sent"], a["dpd_ack_received"] + b["dpd_ack_received"]
    assert sent >= 100 // 20 and acked == sent
    assert not pair.events("a", PeerDead) and pair.consistent()


def test_dpd_declares_a_silent_peer_dead_and_reinitiates_with_backoff() -> None:
    pair = _up(a={"dpd": FAST_DPD}, b={"dpd": FAST_DPD})
    start = pair.now
    pair.filter = lambda direction, datagram, index: 0  # B vanishes
    # The first R-U-THERE comes after the idle time less up to 20 % (jitter).
    pair.advance(20 * 0.8 - 0.01)
    assert pair.a.statistics()["dpd_sent"] == 0
    first = pair.a.get_timer()
    assert first is not None and start + 16 <= first <= start + 20
    pair.advance(first - pair.now)
    assert pair.a.statistics()["dpd_sent"] == 1
    pair.advance(3 * 2 - 0.01)
    assert not pair.events("a", PeerDead)
    assert pair.a.statistics()["dpd_sent"] == 3
    pair.advance(0.01)
    assert pair.events("a", PeerDead) == [PeerDead("gw", (B_IP, 500))]
    assert pair.now == pytest.approx(first + 3 * 2)
    assert [e.reason for e in pair.events("a", IpsecSaDeleted)] == ["dead peer"]
    assert pair.a.ike_sa_status(pair.now) == []
    retry = pair.a.get_timer()  # back-off 1 s less up to 20 %
    assert retry is not None and pair.now + 0.8 <= retry <= pair.now + 1.0
    # The peer comes back (with its state intact): the tunnel returns by itself.
    pair.filter = None
    pair.advance(40)
    assert pair.live_sas("a") and pair.a.tunnel_status(pair.now)[0].state == "up"


def test_dpd_traffic_counts_as_liveness() -> None:
    pair = _up(a={"dpd": FAST_DPD}, b={"dpd": FAST_DPD})
    for step in range(1, 10):
        pair.a.traffic("gw", step * 1000, step * 1000, pair.now)
        pair.advance(5)
    assert pair.a.statistics()["dpd_sent"] == 0


def _unknown(cookie: bytes) -> bytes:
    return Message(cookie, b"\x99" * 8, ExchangeType.QUICK_MODE, 1, 7, (), b"\x00" * 32,
                   8).encode()


def test_invalid_cookie_not_sent_by_default() -> None:
    pair = _up()
    pair.b.receive_datagram(_unknown(b"\x01" * 8), (B_IP, 500), (A_IP, 500), pair.now)
    assert pair.b.datagrams_to_send(pair.now) == []
    assert pair.b.statistics()["unknown_cookie"] == 1


def test_invalid_cookie_sent_with_option_and_rate_limited() -> None:
    pair = _up(b={"tx_invalid_cookie": True})
    received = sent = 0
    replies: list[Datagram] = []
    for n in range(100):
        data = _unknown(n.to_bytes(8, "big"))
        received += len(data)
        pair.b.receive_datagram(data, (B_IP, 500), (A_IP, 500), pair.now + n * 0.01)
        replies += pair.b.datagrams_to_send(pair.now)
    sent = sum(len(d.data) for d in replies)
    stats = pair.b.statistics()
    assert 1 <= len(replies) <= 4 and sent <= received
    assert stats["invalid_cookie_sent"] == len(replies)
    assert stats["invalid_cookie_suppressed"] == 100 - len(replies)
    reply = Message.decode(replies[0].data)
    assert reply.exchange_type == ExchangeType.INFORMATIONAL and not reply.flags
    notify = reply.find(Notification)
    assert notify is not None and notify.notify_type == NotifyType.INVALID_COOKIE
    assert notify.spi == (0).to_bytes(8, "big") + b"\x99" * 8
    pair.pump()
    assert len(pair.events("b", InvalidCookieSent)) == len(replies)


def test_received_invalid_cookie_changes_nothing() -> None:
    pair = _up(a={"tx_invalid_cookie": True})
    before = pair.live_sas("a")
    cookies = pair.events("a", Phase1Established)[0].cookies
    spoof = Message(cookies[:8], cookies[8:], ExchangeType.INFORMATIONAL, 0, 5, (
        Notification(1, 1, NotifyType.INVALID_COOKIE, cookies),)).encode()
    pair.a.receive_datagram(spoof, (A_IP, 500), (B_IP, 500), pair.now)
    assert pair.a.datagrams_to_send(pair.now) == []
    pair.pump()
    assert pair.a.statistics()["invalid_cookie_received"] == 1
    assert pair.events("a", InvalidCookieReceived)[-1] == InvalidCookieReceived((B_IP, 500), False)
    assert pair.live_sas("a") == before
    assert [s.state for s in pair.a.ike_sa_status(pair.now)] == ["established"]


def test_phase2_rekey_keeps_traffic_and_deletes_old_after_grace() -> None:
    pair = _up(a_tunnel={"lifetime_seconds": 100}, b_tunnel={"lifetime_seconds": 100})
    first = pair.live_sas("a")
    pair.advance(90)
    rekeyed = [e for e in pair.events("a", IpsecSaEstablished) if e.rekey_of is not None]
    assert len(rekeyed) == 1 and rekeyed[0].rekey_of == next(iter(first))[0]
    assert first < pair.live_sas("a")  # old still installed during the grace
    pair.advance(10)
    assert not first & pair.live_sas("a") and pair.consistent()
    assert {e.reason for e in pair.events("a", IpsecSaDeleted)} <= {"rekeyed", "expired",
                                                                      "deleted by peer"}


def test_kilobyte_lifetime_triggers_rekey() -> None:
    pair = _up(a_tunnel={"lifetime_kilobytes": 100}, b_tunnel={"lifetime_kilobytes": 100})
    first = pair.live_sas("a")
    pair.a.traffic("gw", 50_000, 95_000, pair.now)
    pair.pump()
    assert any(e.rekey_of for e in pair.events("a", IpsecSaEstablished))
    pair.a.traffic("gw", 60_000, 103_000, pair.now)
    pair.pump()
    assert not first & pair.live_sas("a") and pair.consistent()


def test_restarted_peer_initial_contact_clears_stale_sas() -> None:
    pair = _up()
    stale = pair.live_sas("a")
    policy_b = pair.b.policy
    pair.b = Engine(policy_b, rng=rng(77))
    pair.now += 1
    pair.b.handle_timer(pair.now)
    pair.pump()
    assert [e.reason for e in pair.events("a", IpsecSaDeleted)] == ["initial contact"]
    assert "initial contact" in [e.reason for e in pair.events("a", Phase1Deleted)]
    assert not stale & pair.live_sas("a") and pair.consistent()


def test_update_policy_disabling_a_tunnel_deletes_its_sas() -> None:
    pair = _up()
    policy_a = pair.a.policy
    disabled = replace(policy_a, tunnels=(replace(policy_a.tunnels[0], enabled=False),))
    pair.a.update_policy(disabled, pair.now)
    pair.pump()
    assert [e.reason for e in pair.events("a", IpsecSaDeleted)] == ["policy"]
    assert [e.reason for e in pair.events("b", IpsecSaDeleted)] == ["deleted by peer"]
    assert pair.a.tunnel_status(pair.now)[0].state == "disabled"
    pair.a.update_policy(policy_a, pair.now)
    pair.pump()
    assert pair.consistent()


class _Calls:
    """Counts the calls of a function it wraps."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.function(*args, **kwargs)


def test_unknown_cookie_flood_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _up(b={"tx_invalid_cookie": True})
    decodes, hashes = _Calls(Message.decode), _Calls(replies_module.hashlib.sha256)
    built = _Calls(engine_module.informational.invalid_cookie_reply)
    monkeypatch.setattr(engine_module.Message, "decode", decodes)
    monkeypatch.setattr(replies_module.hashlib, "sha256", hashes)
    monkeypatch.setattr(engine_module.informational, "invalid_cookie_reply", built)
    flood = [_unknown(n.to_bytes(8, "big")) for n in range(1000)]
    flood.append(Message(b"\x07" * 8, b"\x99" * 8, ExchangeType.IDENTITY_PROTECTION, 0, 0,
                         (Notification(1, 1, NotifyType.CONNECTED, b""),)).encode())
    flood.append(Message(b"\x08" * 8, b"\x99" * 8, ExchangeType.INFORMATIONAL, 1, 5, (),
                         b"\x00" * 16, 8).encode())
    for n, data in enumerate(flood):
        pair.b.receive_datagram(data, (B_IP, 500), (A_IP, 500), pair.now + n * 0.001)
    replies = pair.b.datagrams_to_send(pair.now)
    assert decodes.count == 0 and hashes.count == 0  # the header alone decided
    stats = pair.b.statistics()
    assert stats["unknown_cookie"] == len(flood)
    # An encrypted Informational is never answered; the rest as the limits allow.
    assert stats["invalid_cookie_sent"] + stats["invalid_cookie_suppressed"] == len(flood) - 1
    assert stats["invalid_cookie_sent"] == len(replies) >= 1
    assert built.count == len(replies)  # a suppressed reply is never built
    assert {len(d.data) for d in replies} == {engine_module.informational.INVALID_COOKIE_REPLY_LENGTH}
    assert pair.consistent()


def test_fast_path_leaves_the_rest_to_the_full_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _up(b={"tx_invalid_cookie": True})
    decodes = _Calls(Message.decode)
    monkeypatch.setattr(engine_module.Message, "decode", decodes)
    # A clear Informational: its notify may be an INVALID-COOKIE to count.
    clear = Message(b"\x01" * 8, b"\x99" * 8, ExchangeType.INFORMATIONAL, 0, 5, (
        Notification(1, 1, NotifyType.INVALID_COOKIE, b"\x01" * 8 + b"\x99" * 8),)).encode()
    pair.b.receive_datagram(clear, (B_IP, 500), (A_IP, 500), pair.now)
    assert decodes.count == 1 and pair.b.statistics()["invalid_cookie_received"] == 1
    # A runt, a bad header: malformed, as before.
    pair.b.receive_datagram(b"\x01" * 20, (B_IP, 500), (A_IP, 500), pair.now)
    bad_version = bytearray(_unknown(b"\x02" * 8))
    bad_version[17] = 0x20
    pair.b.receive_datagram(bytes(bad_version), (B_IP, 500), (A_IP, 500), pair.now)
    assert pair.b.statistics()["dropped_malformed"] == 2
    # Known cookie pairs go the full way.
    before = decodes.count
    pair.b.clear_sa(None, 2, pair.now)
    pair.pump()
    assert decodes.count > before and pair.consistent()


def test_a_retransmission_for_a_deleted_phase1_still_gets_its_cached_reply() -> None:
    """Cookie pairs with a cached reply are known to the fast path: a peer that
    lost our last phase 1 message gets it again, as before the fast path."""
    pair = _up(b={"tx_invalid_cookie": True})
    mm5 = next(d for direction, d in pair.wire if direction == "ab"
               and Message.decode(d.data).exchange_type == ExchangeType.IDENTITY_PROTECTION
               and Message.decode(d.data).flags & 1)  # MM5, the first encrypted one
    mm6 = next(d for direction, d in pair.wire if direction == "ba"
               and Message.decode(d.data).exchange_type == ExchangeType.IDENTITY_PROTECTION
               and Message.decode(d.data).flags & 1)
    pair.b.update_policy(replace(pair.b.policy, tunnels=()), pair.now)
    pair.b.clear_sa(None, 1, pair.now)
    pair.b.datagrams_to_send(pair.now)
    assert pair.b.ike_sa_status(pair.now) == []
    before = pair.b.statistics()
    pair.b.receive_datagram(mm5.data, mm5.remote, mm5.local, pair.now)
    assert [d.data for d in pair.b.datagrams_to_send(pair.now)] == [mm6.data]
    after = pair.b.statistics()
    assert after["retransmits"] == before["retransmits"] + 1
    assert after["unknown_cookie"] == before["unknown_cookie"]
