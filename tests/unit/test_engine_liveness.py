"""What postpones DPD (RFC 3706): every message authenticated under an ISAKMP SA
with the peer, whatever becomes of it, and inbound ESP; nothing unauthenticated.

A probes after 16-20 s of silence (idle 20 s less its jitter); B sends no
R-U-THERE of its own, so A hears from B only through what each test makes B
send every few seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from engine_helpers import A_IP, B_IP, Pair, make_pair, policies, tunnel

from ipsecgw.isakmp import informational
from ipsecgw.isakmp.constants import HEADER_LENGTH, NotifyType
from ipsecgw.isakmp.policy import DpdPolicy

FAST = DpdPolicy(idle=20.0, silence=10.0, retry=2.0, retries=3)
QUIET = DpdPolicy(enabled=False)
DURATION = 120.0
STEP = 8.0


def _up(pair: Pair) -> Pair:
    pair.start()
    assert pair.consistent()
    return pair


def _pair() -> Pair:
    return _up(make_pair(*policies(a={"dpd": FAST}, b={"dpd": QUIET})))


def _with_stray_tunnel() -> Pair:
    """B also has a tunnel A knows nothing of: A refuses each of its Quick Modes
    (INVALID-ID-INFORMATION), and B tries again every few seconds."""
    policy_a, policy_b = policies(a={"dpd": FAST}, b={"dpd": QUIET})
    stray = tunnel("stray", B_IP, A_IP, local_network="10.98.4.0/24",
                   remote_network="10.98.3.0/24")
    policy_b = replace(policy_b, tunnels=(*policy_b.tunnels, stray), reinit_backoff_maximum=4.0)
    return _up(make_pair(policy_a, policy_b))


def _b_phase1(pair: Pair):
    ike = pair.b._sas.best_ike((B_IP, A_IP))
    assert ike is not None
    return ike


def _nothing(pair: Pair) -> None:
    pass


def _informational(pair: Pair) -> None:
    ike = _b_phase1(pair)
    notify = informational.ike_notify(ike, NotifyType.CONNECTED)
    pair.b._send(informational.protect(ike, [notify], pair.b._rng), ike.local, ike.remote)


def _quick_mode(pair: Pair) -> None:
    pair.b.initiate_quick_mode(_b_phase1(pair), pair.b.policy.tunnels[0], pair.now, None)


def _phase1(pair: Pair) -> None:
    pair.b.initiate_phase1(pair.b.policy.tunnels[0], pair.now, rekey=True)


def _tampered_informational(pair: Pair) -> None:
    """A protected Informational under B's ISAKMP SA with an octet of its first
    cipher block changed: it does not verify.  (The last block would not do:
    CBC confines the change to it, and it may hold only padding, which no HASH
    covers.)"""
    ike = _b_phase1(pair)
    notify = informational.ike_notify(ike, NotifyType.CONNECTED)
    data = bytearray(informational.protect(ike, [notify], pair.b._rng))
    data[HEADER_LENGTH + 2] ^= 0x01
    pair.b._send(bytes(data), ike.local, ike.remote)


def _run(pair: Pair, action: Callable[[Pair], None]) -> int:
    """B does `action` every STEP seconds for DURATION seconds; A's R-U-THEREs sent."""
    while pair.now < DURATION:
        pair.advance(STEP)
        action(pair)
        pair.pump()
    return pair.a.statistics()["dpd_sent"]


@pytest.mark.parametrize("action", [_informational, _quick_mode, _phase1],
                         ids=["informational", "quick-mode", "phase1"])
def test_authenticated_messages_postpone_dpd(action: Callable[[Pair], None]) -> None:
    pair = _pair()
    assert _run(pair, action) == 0
    assert pair.a.tunnel_status(pair.now)[0].state == "up"


def test_a_quick_mode_we_refuse_still_proves_the_peer_alive() -> None:
    pair = _with_stray_tunnel()
    assert _run(pair, _nothing) == 0
    assert pair.a.statistics()["phase2_failed"] >= DURATION / 8  # refused all along
    assert pair.b.statistics()["phase2_failed"] >= DURATION / 8


@pytest.mark.parametrize("action", [_nothing, _tampered_informational],
                         ids=["silence", "tampered"])
def test_without_authenticated_messages_the_peer_is_probed(
        action: Callable[[Pair], None]) -> None:
    pair = _pair()
    # The peer answers every probe: one each 16-20 s.
    assert _run(pair, action) >= DURATION // 20
    assert pair.a.statistics()["dpd_ack_received"] == pair.a.statistics()["dpd_sent"]
    if action is _tampered_informational:
        assert pair.a.statistics()["dropped_hash_mismatch"] + \
            pair.a.statistics()["dropped_decrypt_failed"] + \
            pair.a.statistics()["dropped_malformed"] >= DURATION // STEP - 1


def test_inbound_esp_postpones_dpd() -> None:
    pair = _pair()
    received = {"bytes": 0}

    def esp(p: Pair) -> None:
        received["bytes"] += 1000
        p.a.traffic("gw", received["bytes"], 0, p.now)

    assert _run(pair, esp) == 0
