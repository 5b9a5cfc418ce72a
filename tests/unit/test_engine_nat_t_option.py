"""`no ipsec option nat-t` (EnginePolicy.nat_t False): no NAT-T at all.

No NAT-T vendor IDs, no NAT-D payloads, no float to port 4500, ESP not
UDP-encapsulated, even where a NAT is in the path and the peer has NAT-T
on (RFC 3947 2: NAT-T is used only when both announce it).
"""

from __future__ import annotations

import pytest
from engine_helpers import make_pair, policies

from ipsecgw.isakmp.codec import Message, NatD, VendorId
from ipsecgw.isakmp.constants import (
    VENDOR_ID_NAT_T_DRAFT_02_N,
    VENDOR_ID_NAT_T_DRAFT_03,
    VENDOR_ID_NAT_T_RFC3947,
)
from ipsecgw.isakmp.events import IpsecSaEstablished

NAT_T_IDS = {VENDOR_ID_NAT_T_RFC3947, VENDOR_ID_NAT_T_DRAFT_03, VENDOR_ID_NAT_T_DRAFT_02_N}


def clear_payloads(pair) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """(direction, payload) of every unencrypted message on the wire."""
    found = []
    for direction, datagram in pair.wire:
        message = Message.decode(datagram.data)
        found += [(direction, p) for p in message.payloads]
    return found


@pytest.mark.parametrize("off", ["a", "b", "both"])
def test_nat_t_off_on_either_side_means_none(off: str) -> None:
    a, b = policies(nat=True, a={"nat_t": off == "b"}, b={"nat_t": off == "a"})
    pair = make_pair(a, b, nat=True)
    pair.start()
    off_sides = {"a": ("ab",), "b": ("ba",), "both": ("ab", "ba")}[off]
    payloads = clear_payloads(pair)
    assert not any(isinstance(p, NatD) for _, p in payloads)
    assert not any(isinstance(p, VendorId) and p.data in NAT_T_IDS
                   for direction, p in payloads if direction in off_sides)
    # Never port 4500 (B answers the NAT's mapping of A's port 500).
    assert all(d.local[1] == 500 for _, d in pair.wire)
    assert all(d.remote[1] == 500 for direction, d in pair.wire if direction == "ab")
    established = pair.events("a", IpsecSaEstablished)
    assert established and established[0].encapsulation == "tunnel"


def test_nat_t_on_both_sides_uses_it() -> None:
    """The reference: the same pair with the option on floats and encapsulates."""
    pair = make_pair(nat=True)
    pair.start()
    assert any(isinstance(p, NatD) for _, p in clear_payloads(pair))
    assert pair.events("a", IpsecSaEstablished)[0].encapsulation == "udp-tunnel"
