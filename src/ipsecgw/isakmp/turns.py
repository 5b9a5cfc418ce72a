"""Our Quick Modes on one ISAKMP SA take turns: one at a time.

Each exchange under an ISAKMP SA has its own CBC IV chain (RFC 2409
appendix B), which a peer must keep from one message of the exchange to the
next.  strongSwan keeps the chains of the last three exchanges only
(charon.max_ikev1_exchanges, a most-recently-used list of message IDs): a
fourth exchange that arrives between two messages of a Quick Mode pushes
that Quick Mode's IV out, and its HASH(3) then decrypts to garbage
("invalid HASH_V1 payload length", PAYLOAD-MALFORMED) and the IPsec SA is
never installed on the peer, while we believe it is.  A gateway with several
tunnels to one peer starts a Quick Mode for each of them at once when a new
phase 1 comes up (first contact, phase 1 rekey, `ipsec clear sa ... phase
1`), with a Delete for each replaced SA in between: more than three
exchanges.  So the tunnels to a peer queue here for their turn on the
ISAKMP SA, and the next one starts when the running Quick Mode of ours
ends (answered, failed or abandoned).  The peer's own Quick Modes do not
wait: we answer them as they come.
"""

from __future__ import annotations

from collections import deque


class QuickModeTurns:
    """Tunnels waiting to start a Quick Mode on an ISAKMP SA (by its cookies)."""

    def __init__(self) -> None:
        self._queues: dict[bytes, deque[str]] = {}
        self._waiting: dict[str, bytes] = {}  # tunnel -> the ISAKMP SA it waits on

    def wait(self, cookies: bytes, tunnel: str) -> None:
        """`tunnel` waits for its turn on the ISAKMP SA `cookies` (once)."""
        if self._waiting.get(tunnel) == cookies:
            return
        self.leave(tunnel)
        self._waiting[tunnel] = cookies
        self._queues.setdefault(cookies, deque()).append(tunnel)

    def waiting(self, tunnel: str) -> bool:
        return tunnel in self._waiting

    def has_waiting(self, cookies: bytes) -> bool:
        return cookies in self._queues

    def next(self, cookies: bytes) -> str | None:
        """The tunnel whose turn it is on `cookies` (no longer waiting), or None."""
        queue = self._queues.get(cookies)
        while queue:
            tunnel = queue.popleft()
            if self._waiting.get(tunnel) == cookies:
                del self._waiting[tunnel]
                if not queue:
                    del self._queues[cookies]
                return tunnel
        self._queues.pop(cookies, None)
        return None

    def leave(self, tunnel: str) -> None:
        """`tunnel` waits no more (removed, or served another way); its stale
        queue entry is skipped, and an emptied queue dropped, by `next`."""
        self._waiting.pop(tunnel, None)

    def release(self, cookies: bytes) -> list[str]:
        """The ISAKMP SA went: every tunnel that waited on it, waiting no more."""
        released = [t for t in self._queues.pop(cookies, ()) if self._waiting.get(t) == cookies]
        for tunnel in released:
            del self._waiting[tunnel]
        return released
