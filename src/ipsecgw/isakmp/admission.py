"""Admission of our own phase 1 attempts: at most `initiator_half_open_limit` in flight.

A tunnel that needs a phase 1 while the limit is reached, or while others
already wait, joins a queue in the order it became due; it has no deadline
of its own while it waits, so that thousands of waiting tunnels cost nothing.
The queue itself has one deadline in the engine's heap (this object is its
key): "now", whenever it is not empty and a slot is free; the engine then
admits tunnels from its head.
"""

from __future__ import annotations

from .registry import Registry
from .tunnel_table import TunnelRuntime


class Admission:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._queue: dict[TunnelRuntime, None] = {}

    def __contains__(self, runtime: object) -> bool:
        return runtime in self._queue

    def __bool__(self) -> bool:
        return bool(self._queue)

    def slot_free(self, sas: Registry) -> bool:
        return sas.initiating_count() < self.limit

    def must_wait(self, sas: Registry) -> bool:
        """Whether a tunnel that is not being admitted has to queue."""
        return bool(self._queue) or not self.slot_free(sas)

    def join(self, runtime: TunnelRuntime) -> bool:
        """Queue `runtime` at the tail; False if it already waits."""
        if runtime in self._queue:
            return False
        self._queue[runtime] = None
        return True

    def leave(self, runtime: TunnelRuntime) -> bool:
        """Take `runtime` out of the queue; False if it did not wait."""
        if runtime not in self._queue:
            return False
        del self._queue[runtime]
        return True

    def head(self) -> TunnelRuntime:
        return next(iter(self._queue))
