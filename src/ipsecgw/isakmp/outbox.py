"""What the engine hands back to its runtime: datagrams to send, events, counters.

Every part of the engine that speaks to the outside (the message handlers,
dead peer detection, collision handling) gets this one small object instead
of reaching into the engine: it can send a datagram, emit an event and count
something, nothing else.  The runtime drains it through the engine's
`datagrams_to_send()`, `next_event()` and `statistics()`.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

from .events import Event
from .policy import Address

STATISTICS = (
    "messages_received", "messages_sent", "retransmits", "invalid_cookie_sent",
    "invalid_cookie_suppressed", "invalid_cookie_received", "dpd_sent", "dpd_ack_received",
    "peers_dead", "phase1_established", "phase1_failed", "phase2_established",
    "phase2_failed", "unknown_cookie", "dropped_malformed", "dropped_decrypt_failed",
    "dropped_hash_mismatch", "dropped_unexpected", "dropped_duplicate",
    "dropped_half_open_limit", "dropped_unknown_peer", "dropped_unprotected", "dropped_internal_error",
    "phase1_collisions", "phase2_collisions",
    # dynamic subscribers (subscribers.py)
    "xauth_succeeded", "xauth_failed", "subscribers_refused_max",
    "subscribers_refused_identity", "mode_config_unanswered",
)


@dataclass(frozen=True)
class Datagram:
    """A bare ISAKMP message to send from `local` to `remote`."""

    data: bytes
    local: Address
    remote: Address


class Outbox:
    def __init__(self) -> None:
        self.datagrams: list[Datagram] = []
        self.events: deque[Event] = deque()
        self.stats: Counter[str] = Counter({key: 0 for key in STATISTICS})

    def send(self, data: bytes, local: Address, remote: Address) -> None:
        self.stats["messages_sent"] += 1
        self.datagrams.append(Datagram(data, local, remote))

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def count(self, key: str) -> None:
        self.stats[key] += 1

    def take_datagrams(self) -> list[Datagram]:
        out, self.datagrams = self.datagrams, []
        return out
