#!/usr/bin/env python3
"""Codec benchmark: decode + encode of a Main Mode first message, per second.

    python3 bench/codec.py [--proposals N] [--seconds S]

The message is what an initiator with a broad policy sends first: one SA
whose ISAKMP proposal offers N transforms (each with seven attributes, the
life duration in TLV form), plus the NAT-T and DPD vendor IDs.  Not a test:
it prints numbers and never fails on them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ipsecgw.isakmp import (  # noqa: E402
    Attribute,
    ExchangeType,
    IkeAttribute,
    Message,
    Proposal,
    ProtocolId,
    SecurityAssociation,
    Transform,
    VendorId,
)
from ipsecgw.isakmp import constants as c  # noqa: E402


def first_message(transforms: int) -> Message:
    suites = [
        (c.IkeEncryption.AES_CBC, 256, c.IkeHash.SHA2_256, 14),
        (c.IkeEncryption.AES_CBC, 128, c.IkeHash.SHA, 14),
        (c.IkeEncryption.AES_CBC, 256, c.IkeHash.SHA2_512, 20),
        (c.IkeEncryption.TRIPLE_DES_CBC, 0, c.IkeHash.SHA, 5),
    ]
    offers = []
    for number in range(1, transforms + 1):
        encryption, key_length, hash_algorithm, group = suites[(number - 1) % len(suites)]
        attributes = [Attribute.make(IkeAttribute.ENCRYPTION_ALGORITHM, encryption)]
        if key_length:
            attributes.append(Attribute.make(IkeAttribute.KEY_LENGTH, key_length))
        attributes += [
            Attribute.make(IkeAttribute.HASH_ALGORITHM, hash_algorithm),
            Attribute.make(IkeAttribute.AUTHENTICATION_METHOD, c.AuthMethod.PRE_SHARED_KEY),
            Attribute.make(IkeAttribute.GROUP_DESCRIPTION, group),
            Attribute.make(IkeAttribute.LIFE_TYPE, c.LifeType.SECONDS),
            Attribute(IkeAttribute.LIFE_DURATION, (86400).to_bytes(4, "big"), False),
        ]
        offers.append(Transform(number, c.IsakmpTransform.KEY_IKE, tuple(attributes)))
    sa = SecurityAssociation(proposals=(Proposal(1, ProtocolId.ISAKMP, b"", tuple(offers)),))
    vendor_ids = (c.VENDOR_ID_NAT_T_RFC3947, c.VENDOR_ID_NAT_T_DRAFT_02_N, c.VENDOR_ID_DPD)
    return Message(
        bytes.fromhex("0123456789abcdef"),
        bytes(8),
        ExchangeType.IDENTITY_PROTECTION,
        payloads=(sa, *(VendorId(v) for v in vendor_ids)),
    )


def rate(operation: object, seconds: float) -> float:
    """Calls per second of a zero-argument callable, over about `seconds`."""
    assert callable(operation)
    calls, batch = 0, 64
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            operation()
        calls += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=8, help="transforms offered (default 8)")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    message = first_message(args.proposals)
    data = message.encode()
    assert Message.decode(data) == message

    decode = rate(lambda: Message.decode(data), args.seconds)
    encode = rate(message.encode, args.seconds)
    both = rate(lambda: Message.decode(data).encode(), args.seconds)
    print(f"Main Mode message 1: {len(data)} octets, {args.proposals} transforms, 3 vendor IDs")
    print(f"  decode          {decode:10,.0f} /s")
    print(f"  encode          {encode:10,.0f} /s")
    print(f"  decode+encode   {both:10,.0f} /s  ({1e6 / both:.1f} us each)")


if __name__ == "__main__":
    main()
