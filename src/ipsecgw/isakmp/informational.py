"""Informational exchanges (RFC 2408 4.8, RFC 2409 5.7): Notify, Delete, DPD, INVALID-COOKIE.

A protected Informational is HASH(1), N/D encrypted under the ISAKMP SA with
its own IV (hash of the last phase 1 CBC block and the message ID).  It is a
one-way message: nothing answers it, except an R-U-THERE, whose answer is an
R-U-THERE-ACK (RFC 3706 5).

INVALID-COOKIE (SPEC 1.2): when a message names a cookie pair we do not know,
an unprotected Informational with Notify INVALID-COOKIE (SPI = the cookie
pair) may be sent back; `InvalidCookieLimiter` bounds those replies per peer
and overall with token buckets and never lets a peer get more bytes back
than it sent in unknown-cookie messages.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from . import keymat
from .codec import Delete, Hash, Message, Notification, Payload
from .constants import Doi, ExchangeType, NotifyType, ProtocolId
from .errors import MessageRejected
from .policy import EnginePolicy
from .sa import IkeSa, chain_bytes, hashed_payloads

Rng = Callable[[int], bytes]


def random_message_id(rng: Rng) -> int:
    message_id = 0
    while message_id == 0:
        message_id = int.from_bytes(rng(4), "big")
    return message_id


def protect(ike: IkeSa, payloads: list[Payload], rng: Rng) -> bytes:
    """A protected Informational carrying `payloads` (RFC 2409 5.7)."""
    suite, keys = ike.require_suite(), ike.require_keys()
    message_id = random_message_id(rng)
    hash1 = keymat.info_hash(suite.prf, keys.skeyid_a, message_id, chain_bytes(payloads))
    datagram, _ = ike.encrypt(ExchangeType.INFORMATIONAL, message_id, [Hash(hash1), *payloads],
                              ike.exchange_iv(message_id))
    return datagram


def unprotected(ike: IkeSa, notify_type: int, rng: Rng) -> bytes:
    """An error Notify sent before phase 1 keys exist (RFC 2408 5)."""
    notify = Notification(Doi.IPSEC, ProtocolId.ISAKMP, notify_type, ike.cookies)
    return Message(ike.cookie_i, ike.cookie_r, ExchangeType.INFORMATIONAL, 0,
                   random_message_id(rng), (notify,)).encode()


def open_protected(ike: IkeSa, message: Message) -> tuple[Payload, ...]:
    """Decrypt and check HASH(1); returns the Notify/Delete payloads."""
    suite, keys = ike.require_suite(), ike.require_keys()
    payloads, _ = ike.decrypt(message, ike.exchange_iv(message.message_id))
    hash1, rest = hashed_payloads(payloads)
    expected = keymat.info_hash(suite.prf, keys.skeyid_a, message.message_id, chain_bytes(rest))
    if not hmac.compare_digest(hash1, expected):
        raise MessageRejected("hash_mismatch", "Informational HASH(1) mismatch")
    return rest


def ike_notify(ike: IkeSa, notify_type: int, data: bytes = b"") -> Notification:
    return Notification(Doi.IPSEC, ProtocolId.ISAKMP, notify_type, ike.cookies, data)


def delete_ike(ike: IkeSa) -> Delete:
    return Delete(Doi.IPSEC, ProtocolId.ISAKMP, 16, (ike.cookies,))


def delete_ipsec(protocol: str, spis: tuple[bytes, ...]) -> Delete:
    protocol_id = ProtocolId.IPSEC_ESP if protocol == "esp" else ProtocolId.IPSEC_AH
    return Delete(Doi.IPSEC, protocol_id, 4, spis)


def dpd_notify(ike: IkeSa, ack: bool, sequence: int) -> Notification:
    """RFC 3706 5: R-U-THERE / R-U-THERE-ACK, SPI = cookies, data = sequence number."""
    notify_type = NotifyType.R_U_THERE_ACK if ack else NotifyType.R_U_THERE
    return ike_notify(ike, notify_type, sequence.to_bytes(4, "big"))


def invalid_cookie_reply(message: Message, rng: Rng) -> bytes:
    """SPEC 1.2: unprotected Informational, Notify INVALID-COOKIE, SPI = the cookie pair."""
    cookies = message.initiator_cookie + message.responder_cookie
    notify = Notification(Doi.IPSEC, ProtocolId.ISAKMP, NotifyType.INVALID_COOKIE, cookies)
    return Message(message.initiator_cookie, message.responder_cookie,
                   ExchangeType.INFORMATIONAL, 0, random_message_id(rng), (notify,)).encode()


#: Every INVALID-COOKIE reply is this long: the rate limit is checked before one
#: is built (most replies to a flood are suppressed).
INVALID_COOKIE_REPLY_LENGTH = len(invalid_cookie_reply(
    Message(bytes(8), bytes(8), ExchangeType.QUICK_MODE, 0, 1), lambda size: bytes([1] * size)))


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _PeerAllowance:
    bucket: TokenBucket
    byte_credit: int = 0


class InvalidCookieLimiter:
    """Rate limit for INVALID-COOKIE replies (SPEC 1.2: not a reflector).

    A reply needs a token from the peer's bucket, one from the overall bucket,
    and as many bytes of credit as it is long; credit is what the peer sent
    in unknown-cookie datagrams.  At most `max_peers` peers are remembered.
    """

    def __init__(self, policy: EnginePolicy, max_peers: int = 4096) -> None:
        self._policy = policy
        self._max_peers = max_peers
        self._peers: OrderedDict[str, _PeerAllowance] = OrderedDict()
        self._total = TokenBucket(policy.invalid_cookie_total_rate,
                                  policy.invalid_cookie_total_burst,
                                  policy.invalid_cookie_total_burst, 0.0)

    def allow(self, peer: str, received: int, reply: int, now: float) -> bool:
        allowance = self._peers.pop(peer, None)
        if allowance is None:
            allowance = _PeerAllowance(TokenBucket(
                self._policy.invalid_cookie_rate, self._policy.invalid_cookie_burst,
                self._policy.invalid_cookie_burst, now))
        self._peers[peer] = allowance
        while len(self._peers) > self._max_peers:
            self._peers.popitem(last=False)
        allowance.byte_credit = min(allowance.byte_credit + received, 1 << 20)
        if allowance.byte_credit < reply:
            return False
        if not allowance.bucket.take(now) or not self._total.take(now):
            return False
        allowance.byte_credit -= reply
        return True
