"""XAUTH (draft-beaulieu-ike-xauth-02), the server's messages: pure functions.

After phase 1 the gateway (the edge device) asks for credentials and tells
the result, each in a Transaction exchange (transaction.py):

    gateway -> client  REQUEST  XAUTH-TYPE=generic, XAUTH-USER-NAME, XAUTH-USER-PASSWORD
    client  -> gateway REPLY    XAUTH-TYPE, XAUTH-USER-NAME=..., XAUTH-USER-PASSWORD=...
    gateway -> client  SET      XAUTH-STATUS=1 (OK) | 0 (FAIL)
    client  -> gateway ACK      (XAUTH-STATUS)

vpnc refuses a REQUEST with attributes it does not know and an XAUTH-TYPE
that is not the TV form of "generic", and expects the SET to carry
XAUTH-STATUS alone (vpnc.c do_phase2_xauth): so that is all we send.
"""

from __future__ import annotations

from .codec import Attribute, AttributePayload
from .constants import CfgType, ConfigAttribute, XauthType
from .errors import MessageRejected


def request(identifier: int) -> AttributePayload:
    """Ask for a user name and password (empty TLV attributes: "send me this")."""
    return AttributePayload(CfgType.REQUEST, identifier, (
        Attribute(ConfigAttribute.XAUTH_TYPE, XauthType.GENERIC, True),
        Attribute(ConfigAttribute.XAUTH_USER_NAME, b"", False),
        Attribute(ConfigAttribute.XAUTH_USER_PASSWORD, b"", False),
    ))


def status(identifier: int, ok: bool) -> AttributePayload:
    return AttributePayload(CfgType.SET, identifier, (
        Attribute(ConfigAttribute.XAUTH_STATUS, 1 if ok else 0, True),))


def credentials(reply: AttributePayload) -> tuple[str, str]:
    """(user name, password) of a REPLY; MessageRejected when it has none usable."""
    if reply.cfg_type != CfgType.REPLY:
        raise MessageRejected("unexpected", f"XAUTH: expected a REPLY, got type {reply.cfg_type}")
    xauth_type = reply.find(ConfigAttribute.XAUTH_TYPE)
    if xauth_type is not None and xauth_type.as_int() != XauthType.GENERIC:
        raise MessageRejected("malformed", f"XAUTH: type {xauth_type.as_int()} is not generic")
    values = []
    for kind in (ConfigAttribute.XAUTH_USER_NAME, ConfigAttribute.XAUTH_USER_PASSWORD):
        attribute = reply.find(kind)
        if attribute is None or not isinstance(attribute.value, bytes):
            raise MessageRejected("malformed", f"XAUTH: REPLY without {kind.name}")
        try:
            values.append(attribute.value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise MessageRejected("malformed", f"XAUTH: {kind.name} is not UTF-8") from exc
    if not values[0]:
        raise MessageRejected("malformed", "XAUTH: empty user name")
    return values[0], values[1]
