"""The Attribute payload (type 14) and the Transaction exchange (6) of XAUTH and Mode Config."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from payload_factories import attributes

from ipsecgw.isakmp import (
    Attribute,
    AttributePayload,
    CfgType,
    ConfigAttribute,
    DecodeError,
    ExchangeType,
    Hash,
    Message,
    PayloadType,
    decode_payloads,
    encode_payloads,
)
from ipsecgw.isakmp.errors import InvalidMessageId, PayloadMalformed

COOKIES = bytes(range(1, 9)), bytes(range(9, 17))


def xauth_request() -> AttributePayload:
    return AttributePayload(CfgType.REQUEST, 0x1234, (
        Attribute(ConfigAttribute.XAUTH_TYPE, 0, True),
        Attribute(ConfigAttribute.XAUTH_USER_NAME, b"", False),
        Attribute(ConfigAttribute.XAUTH_USER_PASSWORD, b"", False),
    ))


def test_attribute_payload_wire_format() -> None:
    first, body = encode_payloads([xauth_request()])
    assert first == PayloadType.ATTRIBUTE == 14
    # generic header, then type 1, reserved 0, identifier 0x1234, then the attributes:
    # TV XAUTH-TYPE (AF bit | 16520) = 0, TLV USER-NAME and USER-PASSWORD, empty.
    assert body.hex() == ("00000014" "01001234" "c0880000" "40890000" "408a0000")


def test_attribute_payload_round_trip_in_a_transaction_message() -> None:
    reply = AttributePayload(CfgType.REPLY, 20, (
        Attribute(ConfigAttribute.INTERNAL_IP4_ADDRESS, bytes([10, 200, 0, 5]), False),
        Attribute(ConfigAttribute.UNITY_SAVE_PASSWD, 0, True),
    ))
    message = Message(*COOKIES, ExchangeType.TRANSACTION, 0, 0x01020304,
                      (Hash(bytes(20)), reply))
    decoded = Message.decode(message.encode())
    assert decoded == message
    assert decoded.payloads[1].find(ConfigAttribute.INTERNAL_IP4_ADDRESS).value == \
        bytes([10, 200, 0, 5])
    assert decoded.payloads[1].find(ConfigAttribute.INTERNAL_IP4_DNS) is None


def test_transaction_needs_a_message_id() -> None:
    message = Message(*COOKIES, ExchangeType.TRANSACTION, 0, 0, (xauth_request(),))
    with pytest.raises(InvalidMessageId):
        Message.decode(message.encode())


@pytest.mark.parametrize("body", [
    "00000007" "010000",            # shorter than its header
    "00000008" "01010000",          # reserved octet set
    "0000000c" "01000000" "00010008",  # TLV attribute past the end
])
def test_malformed_attribute_payloads_are_rejected(body: str) -> None:
    with pytest.raises(PayloadMalformed):
        decode_payloads(PayloadType.ATTRIBUTE, bytes.fromhex(body))


@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.lists(attributes, max_size=8).map(tuple))
def test_attribute_payload_round_trips(cfg_type: int, identifier: int,
                                       attrs: tuple[Attribute, ...]) -> None:
    payload = AttributePayload(cfg_type, identifier, attrs)
    first, body = encode_payloads([payload])
    assert decode_payloads(first, body) == (payload,)


@given(st.binary(max_size=40))
def test_arbitrary_attribute_bodies_raise_only_decode_error(tail: bytes) -> None:
    body = (4 + len(tail)).to_bytes(4, "big") + tail
    try:
        decode_payloads(PayloadType.ATTRIBUTE, body)
    except DecodeError:
        pass
