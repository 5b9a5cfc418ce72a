"""The reply cache: a retransmitted request gets the same answer (RFC 2408 5, DESIGN 6).

Keyed by the SHA-256 of the whole request datagram; an entry holds our
replies to it (none for a request we dropped after processing), until when it
is valid, and the request's cookie pair, so that the demultiplexer can tell a
cookie pair that only the cache knows from one nobody knows.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict

from .outbox import Datagram

REPLY_CACHE_SIZE = 4096
REPLY_CACHE_TTL = 120.0


class ReplyCache:
    def __init__(self, size: int = REPLY_CACHE_SIZE, ttl: float = REPLY_CACHE_TTL) -> None:
        self._size = size
        self._ttl = ttl
        # SHA-256 of a request -> (our replies, until when, the request's cookie pair)
        self._replies: OrderedDict[bytes, tuple[tuple[Datagram, ...], float, bytes]] = \
            OrderedDict()
        self._cookies: Counter[bytes] = Counter()  # cookie pairs in `_replies`

    def get(self, request: bytes, now: float) -> tuple[Datagram, ...] | None:
        """Our replies to `request` if it was seen and is still remembered."""
        cached = self._replies.get(hashlib.sha256(request).digest())
        if cached is None or cached[1] <= now:
            return None
        return cached[0]

    def remember(self, request: bytes, replies: tuple[Datagram, ...], now: float) -> None:
        key = hashlib.sha256(request).digest()
        cookies = request[:16]
        if key not in self._replies:
            self._cookies[cookies] += 1
        self._replies[key] = (replies, now + self._ttl, cookies)
        self._replies.move_to_end(key)
        while len(self._replies) > self._size:
            _, (_, _, evicted) = self._replies.popitem(last=False)
            self._cookies[evicted] -= 1
            if not self._cookies[evicted]:
                del self._cookies[evicted]

    def knows_cookies(self, cookies: bytes) -> bool:
        return cookies in self._cookies
